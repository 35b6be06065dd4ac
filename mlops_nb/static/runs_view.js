// mlops-nb runs view: one ES module used by the notebook widget (anywidget), the HTML report
// (inlined, with a tiny in-page model) and the JupyterLab panel. No build step, no network, no
// framework: DOM and SVG by hand. Every run-supplied name or value goes in as text
// (textContent / setAttribute on a text attribute), never as markup, and is bidi-isolated.
//
// Host contract (anywidget's front-end API): `export default { render({ model, el }) }` where
// model has get(name), set(name, value), save_changes(), on("change:NAME", cb), off(...),
// send(msg) and on("msg:custom", cb). Traits:
//   payload  (an object, or its JSON text as the notebook widget sends it)
//            {version: 1, n, total, truncated, columns: [{key, label, kind, goal?, hidden?,
//             sources?}], data: {key: [value per run]}, nones: {key: [row indices set to None]},
//             name_auto: [bool], metric, goal, best: [ids], constant: {label: value},
//             folded: {label: value}, title, experiment}
//            kinds: id | name | model | metric | param | info. A null value means "not set";
//            a row listed in nones[key] was set to None. The row form of the contract
//            (rows: [{id, name, model, session, started_at, metrics: {}, params: {}}]) is
//            accepted too.
//   selected [run ids]; sort {key, ascending}; filter "query text"; status "progress/verdict"
// Actions: model.send({action: "export" | "verify" | "diff" | "select_metric", ids, ...});
// replies arrive as msg:custom {type: "diff", ids, code} / {type: "confirm", action, ids, text}
// or as trait changes (status, payload).
//
// The filter language is the twin of mlops_nb/comparison/query.py; both test suites read
// tests/data/query_vectors.json.

export const NONE = Object.freeze({ toString: () => "None" });
const ROW_H = 26;
const OVERSCAN = 12;
const MAX_PLOT_W = 960;
const MIN_GAP = 64; // px between parallel-coordinate axes: fewer axes, never overlapping ones
const MAX_LINES = 3000;
const PLOT_TOP = 30; // px above a plot's area: the metric's name, clear of the top tick and point
const SVGNS = "http://www.w3.org/2000/svg";

// -- data -----------------------------------------------------------------------------------
export function normalize(payload) {
  if (typeof payload === "string") payload = payload ? JSON.parse(payload) : {};
  payload = payload || {};
  let columns = (payload.columns || []).map((c) => ({ ...c }));
  let n = payload.n || 0;
  let data = payload.data;
  let nones = payload.nones || {};
  if (!data && Array.isArray(payload.rows)) {
    ({ columns, data, nones, n } = fromRows(payload.rows, columns));
  }
  data = data || {};
  for (const col of columns) {
    const raw = data[col.key] || [];
    const values = new Array(n);
    for (let i = 0; i < n; i++) values[i] = raw[i] === null ? undefined : raw[i];
    for (const i of nones[col.key] || []) values[i] = NONE;
    col.values = values;
    col.numeric = col.kind === "metric" || (n > 0 && values.every((v) => v === undefined || v === NONE || typeof v === "number"));
    if (col.numeric && col.key !== "duration_s") col.fmt = numberFormat(values);
  }
  const byKey = new Map(columns.map((c) => [c.key, c]));
  return {
    n, columns, byKey,
    metric: payload.metric || null,
    goal: payload.goal || "max",
    best: new Set(payload.best || []),
    constant: payload.constant || {},
    folded: payload.folded || {},
    nameAuto: payload.name_auto || [],
    total: payload.total ?? n,
    truncated: !!payload.truncated,
    title: payload.title || "",
  };
}

function fromRows(rows, columns) {
  const n = rows.length;
  const data = {}; const nones = {};
  const cols = columns.length ? columns : guessColumns(rows);
  for (const col of cols) {
    const vals = new Array(n);
    const [section, name] = col.kind === "param" ? ["params", col.key.replace(/^params\./, "")]
      : col.kind === "metric" ? ["metrics", col.key.replace(/^metrics\./, "")] : [null, col.key];
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      if (section) {
        const box = r[section] || {};
        vals[i] = Object.prototype.hasOwnProperty.call(box, name) ? box[name] : null;
        if (box[name] === null && Object.prototype.hasOwnProperty.call(box, name)) (nones[col.key] ||= []).push(i);
      } else vals[i] = r[col.key] ?? null;
    }
    data[col.key] = vals;
  }
  return { columns: cols, data, nones, n };
}

function guessColumns(rows) {
  const cols = [{ key: "id", label: "id", kind: "id" }, { key: "name", label: "name", kind: "name" },
    { key: "model", label: "model", kind: "model" }];
  const metrics = new Set(); const params = new Set();
  for (const r of rows) {
    Object.keys(r.metrics || {}).forEach((k) => metrics.add(k));
    Object.keys(r.params || {}).forEach((k) => params.add(k));
  }
  metrics.forEach((k) => cols.push({ key: "metrics." + k, label: k, kind: "metric" }));
  params.forEach((k) => cols.push({ key: "params." + k, label: k, kind: "param" }));
  for (const k of ["session", "notebook", "started_at"]) cols.push({ key: k, label: k === "started_at" ? "when" : k, kind: "info" });
  return cols;
}

// -- the filter language (twin of query.py) ------------------------------------------------
export class QueryError extends Error {}
const OPS = ["!=", "!~", ">=", "<=", "=", ">", "<", "~"];
const OP_CHARS = "=!<>~";
const SPACE = " \t\n\r\f\v";
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const NONE_WORDS = ["None", "none", "null"];
const TEXT_KEYS = ["name", "model", "id", "notebook", "experiment"];
const ALIASES = { when: "started_at", duration: "duration_s", time: "started_at" };

export function parseQuery(query) {
  const terms = [];
  let i = 0; const n = query.length;
  for (;;) {
    while (i < n && SPACE.includes(query[i])) i++;
    if (i >= n) return terms;
    const start = i;
    let field; let quotedField = false;
    if (query[i] === '"' || query[i] === "'") {
      [field, i] = quoted(query, i); quotedField = true;
    } else {
      let j = i;
      while (j < n && !SPACE.includes(query[j]) && !OP_CHARS.includes(query[j])) j++;
      field = query.slice(i, j); i = j;
    }
    if (i >= n || SPACE.includes(query[i])) {
      if (!field && !quotedField) throw new QueryError(`nothing before the operator at column ${start + 1}`);
      terms.push({ field: null, op: "text", value: { kind: "text", text: field } });
      continue;
    }
    const op = OPS.find((o) => query.startsWith(o, i));
    if (op === undefined) throw new QueryError(`expected = or ~ after '!' at column ${i + 1}`);
    if (!field) throw new QueryError(`a column name must come before '${op}' at column ${i + 1}`);
    i += op.length;
    if (i >= n || SPACE.includes(query[i])) throw new QueryError(`a value must follow '${field}${op}' at column ${i + 1}`);
    let value;
    if (query[i] === '"' || query[i] === "'") {
      let text; [text, i] = quoted(query, i); value = { kind: "text", text };
    } else {
      let j = i;
      while (j < n && !SPACE.includes(query[j])) j++;
      value = bareValue(query.slice(i, j)); i = j;
    }
    if (value.kind === "range" && op !== "=" && op !== "!=") throw new QueryError(`a range goes with = or != (as in ${field}=0.8..0.9), not ${op}`);
    if (value.kind === "none" && op !== "=" && op !== "!=") throw new QueryError(`None goes with = or != (as in ${field}=None), not ${op}`);
    terms.push({ field, op, value });
  }
}

function quoted(query, i) {
  const q = query[i]; const start = i; let out = "";
  i++;
  while (i < query.length) {
    const c = query[i];
    if (c === "\\" && i + 1 < query.length) { out += query[i + 1]; i += 2; continue; }
    if (c === q) return [out, i + 1];
    out += c; i++;
  }
  throw new QueryError(`unterminated quote starting at column ${start + 1}`);
}

function bareValue(text) {
  if (NONE_WORDS.includes(text)) return { kind: "none", text };
  if (NUMBER.test(text)) return { kind: "number", text, number: parseFloat(text) };
  const parts = text.split("..");
  if (parts.length === 2 && (parts[0] || parts[1]) && parts.every((p) => !p || NUMBER.test(p))) {
    return { kind: "range", text, lo: parts[0] ? parseFloat(parts[0]) : null, hi: parts[1] ? parseFloat(parts[1]) : null };
  }
  return { kind: "text", text };
}

export function levenshtein(a, b) {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur.push(Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] !== b[j - 1] ? 1 : 0)));
    prev = cur;
  }
  return prev[b.length];
}

export function closest(word, names, k = 3) {
  const w = word.toLowerCase();
  const seen = new Set(); const scored = [];
  for (const name of names) {
    if (seen.has(name)) continue;
    seen.add(name); scored.push([levenshtein(w, name.toLowerCase()), name]);
  }
  scored.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return scored.slice(0, k).map((s) => s[1]);
}

export function resolveColumn(field, columns) {
  let low = field.toLowerCase();
  low = ALIASES[low] || low;
  for (const attr of ["label", "key"]) {
    for (const col of columns) if (String(col[attr] ?? "").toLowerCase() === low) return col;
  }
  const near = closest(field, columns.map((c) => String(c.label ?? c.key)));
  throw new QueryError(`unknown column ${pyRepr(field)}${near.length ? "; closest: " + near.join(", ") : ""}`);
}

function pyRepr(s) {
  // Python's repr of a str, for messages identical to query.py's.
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = "";
  for (const c of s) {
    if (c === "\\") out += "\\\\";
    else if (c === q) out += "\\" + c;
    else if (c === "\n") out += "\\n";
    else if (c === "\t") out += "\\t";
    else if (c === "\r") out += "\\r";
    else out += c;
  }
  return q + out + q;
}

export function acronym(name) {
  let out = name.slice(0, 1);
  for (let i = 1; i < name.length; i++) {
    const c = name[i]; const p = name[i - 1];
    if (c >= "A" && c <= "Z" && p >= "a" && p <= "z") out += c;
  }
  return out.toLowerCase();
}

export function shortModel(name) {
  for (const s of ["Classifier", "Regressor"]) if (name.endsWith(s) && name.length > s.length) return name.slice(0, -s.length);
  return name;
}

export function valueText(v) {
  if (v === NONE || v === null) return "None";
  if (v === true) return "true";
  if (v === false) return "false";
  return String(v);
}

const isNum = (v) => typeof v === "number";
const ORDER = { ">": (a, b) => a > b, ">=": (a, b) => a >= b, "<": (a, b) => a < b, "<=": (a, b) => a <= b };

/** A predicate over row indices; get(i, key) returns undefined (not set), NONE or the value. */
export function compileQuery(query, columns, get) {
  const checks = parseQuery(query).map((term) => {
    if (term.field === null) return textCheck(term.value.text, get);
    return columnCheck(resolveColumn(term.field, columns), term.op, term.value, get);
  });
  return (i) => checks.every((c) => c(i));
}

function textCheck(text, get) {
  const t = text.toLowerCase();
  return (i) => {
    for (const key of TEXT_KEYS) {
      const v = get(i, key);
      if (v === undefined || v === NONE || v === null) continue;
      if (String(v).toLowerCase().includes(t)) return true;
    }
    const m = get(i, "model");
    return typeof m === "string" && t !== "" && acronym(m).startsWith(t);
  };
}

function columnCheck(col, op, value, get) {
  const key = col.key;
  if (op in ORDER) {
    const cmp = ORDER[op];
    if (value.kind === "number") { const n = value.number; return (i) => { const v = get(i, key); return isNum(v) && cmp(v, n); }; }
    if (key === "started_at") { const t = value.text; return (i) => { const v = get(i, key); return typeof v === "string" && cmp(v, t); }; }
    throw new QueryError(`${pyRepr(value.text)} is not a number to compare ${col.label ?? key} with ${op}`);
  }
  if (op === "~" || op === "!~") {
    const t = value.text.toLowerCase();
    const contains = (i) => { const v = get(i, key); return v !== undefined && valueText(v).toLowerCase().includes(t); };
    return op === "~" ? contains : (i) => !contains(i);
  }
  const eq = equality(key, value, get);
  return op === "=" ? eq : (i) => !eq(i);
}

function equality(key, value, get) {
  if (value.kind === "none") return (i) => get(i, key) === NONE;
  if (value.kind === "range") {
    const { lo, hi } = value;
    return (i) => { const v = get(i, key); return isNum(v) && (lo === null || v >= lo) && (hi === null || v <= hi); };
  }
  const t = value.text.toLowerCase();
  const n = value.kind === "number" ? value.number : null;
  return (i) => {
    const v = get(i, key);
    if (v === undefined || v === NONE || v === null) return false;
    if (n !== null && isNum(v)) return v === n;
    if (valueText(v).toLowerCase() === t) return true;
    return key === "model" && typeof v === "string" && shortModel(v).toLowerCase() === t;
  };
}

// -- sorting ---------------------------------------------------------------------------------
/** Indices sorted by column values: numbers, then text, then None, then not set (last in
 * both directions); stable. Same order as model.sort_runs in Python. */
export function sortIndices(indices, values, ascending) {
  const n = indices.length;
  const cls = new Uint8Array(values.length); const num = new Float64Array(values.length);
  const txt = new Array(values.length);
  for (const i of indices) {
    const v = values[i];
    if (v === undefined || v === null) cls[i] = 3;
    else if (v === NONE) cls[i] = 2;
    else if (typeof v === "number" && !Number.isNaN(v)) { cls[i] = 0; num[i] = v; }
    else if (typeof v === "boolean") { cls[i] = 0; num[i] = v ? 1 : 0; }
    else { cls[i] = 1; txt[i] = String(v); }
  }
  const dir = ascending ? 1 : -1;
  const out = Array.from(indices);
  out.sort((a, b) => {
    const ca = cls[a]; const cb = cls[b];
    if (ca !== cb) return ca - cb;
    let d = 0;
    if (ca === 0) d = num[a] - num[b];
    else if (ca === 1) d = txt[a] < txt[b] ? -1 : txt[a] > txt[b] ? 1 : 0;
    return d !== 0 ? d * dir : a - b;
  });
  return out.length === n ? out : out;
}

// -- axes --------------------------------------------------------------------------------------
/** How plot values map to [0, 1]: linear, log or categorical, with None and "not set" on ticks of
 * their own after the values, so a run lacking a value is drawn, never dropped. */
export function axisFor(values, { log = null } = {}) {
  let hasNone = false; let hasMissing = false; let text = false;
  const nums = [];
  for (const v of values) {
    if (v === undefined || v === null) hasMissing = true;
    else if (v === NONE) hasNone = true;
    else if (typeof v === "number" && Number.isFinite(v)) nums.push(v);
    else text = true;
  }
  const extras = [];
  if (hasNone) extras.push("None");
  if (hasMissing) extras.push("not set");
  const span = extras.length ? 0.8 : 1;
  const extraPos = (k) => (extras.length === 1 ? 0.92 : 0.88 + 0.1 * k);
  const place = (v) => {
    if (v === undefined || v === null) return extraPos(extras.indexOf("not set"));
    if (v === NONE) return extraPos(extras.indexOf("None"));
    return null;
  };
  const extraTicks = extras.map((label, k) => ({ label, pos: extraPos(k) }));
  if (text || nums.length === 0) {
    const cats = []; const seen = new Set();
    const numCats = [...new Set(values.filter((v) => typeof v === "number" && Number.isFinite(v)))].sort((a, b) => a - b);
    const txtCats = [...new Set(values.filter((v) => v !== undefined && v !== null && v !== NONE && !(typeof v === "number" && Number.isFinite(v))).map(String))].sort();
    for (const c of [...numCats.map(String), ...txtCats]) if (!seen.has(c)) { seen.add(c); cats.push(c); }
    const pos = (k) => (cats.length <= 1 ? span / 2 : (k / (cats.length - 1)) * span);
    const idx = new Map(cats.map((c, k) => [c, k]));
    return {
      type: "category", categories: cats, extras,
      ticks: [...cats.map((c, k) => ({ label: c, pos: pos(k) })), ...extraTicks],
      scale: (v) => place(v) ?? pos(idx.get(String(v))),
    };
  }
  let lo = Infinity; let hi = -Infinity;
  for (const v of nums) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const positive = lo > 0;
  const useLog = log === null ? positive && hi / lo >= 1000 : !!log && positive;
  const f = useLog ? Math.log10 : (x) => x;
  const ticks = numberTicks(lo, hi, useLog);
  // The axis runs from tick to tick: the lowest and highest values are never drawn on its
  // ends, nor the best run's point above the last number labelled.
  if (ticks.length > 1) { lo = Math.min(lo, ticks[0]); hi = Math.max(hi, ticks[ticks.length - 1]); }
  let a = f(lo); let b = f(hi);
  if (a === b) { a -= 0.5; b += 0.5; }
  const scale = (v) => place(v) ?? (typeof v === "number" && Number.isFinite(v) ? ((f(v) - a) / (b - a)) * span : extraPos(0));
  return { type: useLog ? "log" : "linear", lo, hi, extras, ticks: [...ticks.map((t) => ({ label: fmtNum(t), pos: scale(t) })), ...extraTicks], scale };
}

/** Round numbers from one at or below `lo` to one at or above `hi`: decades on a log axis, else
 * steps of 1, 2 or 5 times a power of ten, four to six of them. */
function numberTicks(lo, hi, log) {
  if (lo === hi) return [lo];
  if (log) {
    const out = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(+(10 ** e).toPrecision(12));
    return out;
  }
  const step0 = (hi - lo) / 4; const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
  const first = Math.floor(lo / step + 1e-9); const last = Math.ceil(hi / step - 1e-9);
  const out = [];
  for (let k = first; k <= last; k++) out.push(+(k * step).toPrecision(12));
  return out;
}

/** The number at position `pos` of a numeric axis (clamped to its values). */
export function valueAt(axis, pos) {
  const span = axis.extras.length ? 0.8 : 1;
  const t = Math.min(1, Math.max(0, pos / span));
  if (axis.type === "log") return 10 ** (Math.log10(axis.lo) + t * (Math.log10(axis.hi) - Math.log10(axis.lo)));
  return axis.lo + t * (axis.hi - axis.lo);
}

const fmt3 = (v) => fmtNum(+v.toPrecision(3));

export function fmtNum(v) {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, "e");
  return String(+v.toPrecision(6));
}

/** One number format for a whole column, so its values read alike: integers as they are;
 * otherwise the same significant digits (at most 6) for every value, in scientific notation for
 * the whole column when a value is below 1e-3 or reaches 1e6, else with the same decimals.
 * Null when plain integers need no format. Twin of mlops_nb/comparison/numbers.py. */
export function numberFormat(values) {
  let lo = Infinity; let hi = 0; let allInt = true; const sample = [];
  const step = Math.max(1, Math.floor(values.length / 2000));
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" || !Number.isFinite(v)) continue;
    const a = Math.abs(v);
    if (a !== 0 && a < lo) lo = a;
    if (a > hi) hi = a;
    if (!Number.isInteger(v)) allInt = false;
    if (i % step === 0 || a === lo || a === hi) sample.push(v);
  }
  if (!sample.length || (allInt && hi < 1e15)) return null;
  const sci = lo < 1e-3 || hi >= 1e6;
  let digits = 1; let decimals = 0;
  for (const v of sample) {
    const m = v.toPrecision(6).split("e")[0].replace(/^-/, "").replace(".", "").replace(/^0+/, "").replace(/0+$/, "");
    digits = Math.max(digits, m.length);
    const t = String(+v.toPrecision(6));
    const dot = t.indexOf(".");
    if (dot >= 0 && !t.includes("e")) decimals = Math.max(decimals, t.length - dot - 1);
  }
  digits = Math.min(6, digits); decimals = Math.min(10, decimals);
  if (sci) return (v) => (!Number.isFinite(v) ? String(v) : v === 0 ? "0" : v.toExponential(digits - 1));
  return (v) => (!Number.isFinite(v) ? String(v) : v.toFixed(decimals));
}

export function formatCell(v, col) {
  if (v === undefined || v === null) return "—";
  if (v === NONE) return "None";
  if (col && col.key === "started_at" && typeof v === "string") {
    const d = new Date(v);
    if (!Number.isNaN(d.getTime())) {
      const p = (x) => String(x).padStart(2, "0");
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    }
  }
  if (col && col.kind === "id") return String(v).slice(0, 8);
  if (col && col.key === "duration_s" && typeof v === "number") return v < 100 ? `${+v.toPrecision(3)}s` : `${Math.round(v)}s`;
  if (typeof v === "number") return col && col.fmt ? col.fmt(v) : fmtNum(v);
  return valueText(v);
}

/** Ids of the best runs by metric values (ties all win). */
export function bestIds(table, metricKey, goal) {
  const col = table.byKey.get(metricKey); const ids = table.byKey.get("id");
  if (!col || !ids) return new Set();
  let best = null;
  for (const v of col.values) if (typeof v === "number" && !Number.isNaN(v) && (best === null || (goal === "min" ? v < best : v > best))) best = v;
  const out = new Set();
  if (best === null) return out;
  col.values.forEach((v, i) => { if (v === best) out.add(ids.values[i]); });
  return out;
}

// -- DOM helpers -----------------------------------------------------------------------------
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return e;
}

function put(node, ...kids) {
  node.replaceChildren(...kids.filter((k) => k !== null && k !== undefined && k !== false && k !== ""));
}

function s(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  return e;
}

function svgText(x, y, text, attrs) {
  const t = s("text", { x, y, ...attrs });
  t.textContent = text;
  return t;
}

// -- the view ---------------------------------------------------------------------------------
export function render({ model, el }) {
  const st = {
    table: normalize(model.get("payload")), order: [], shown: [], items: [], brushes: new Map(),
    hiddenCols: new Set(), group: "", plot: "param", plotParam: null, plotLog: null, error: "",
    diffCode: null, confirm: null, onlyDiff: true, nameChars: 0,
  };
  const root = h("div", { class: "mnb-view", dir: "ltr" });
  el.replaceChildren(root);

  const title = h("div", { class: "mnb-title" });
  const metricSel = h("select", { class: "mnb-metric", "aria-label": "metric" });
  const goalSel = h("select", { class: "mnb-goal", "aria-label": "goal" },
    h("option", { value: "max", text: "higher is better" }), h("option", { value: "min", text: "lower is better" }));
  const groupSel = h("select", { class: "mnb-group", "aria-label": "group by" },
    h("option", { value: "", text: "no grouping" }), h("option", { value: "model", text: "group by model" }),
    h("option", { value: "session", text: "group by session" }));
  const q = h("input", { class: "mnb-q", type: "search", spellcheck: "false", "aria-label": "filter runs",
    placeholder: "filter: model=RandomForest max_depth>=5 f1>0.9 name~forest" });
  const qError = h("div", { class: "mnb-error", role: "alert" });
  const count = h("span", { class: "mnb-count mnb-muted" });
  const chips = h("span", { class: "mnb-chips" });
  const chooser = h("details", { class: "mnb-chooser" }, h("summary", { text: "columns" }));
  const chooserBody = h("div", { class: "mnb-chooser-body" });
  chooser.append(chooserBody);
  const constants = h("div", { class: "mnb-constants mnb-muted" });
  const scroller = h("div", { class: "mnb-scroll", tabindex: "0" });
  const tableEl = h("table", { class: "mnb-grid" });
  const thead = h("thead"); const tbody = h("tbody");
  tableEl.append(thead, tbody); scroller.append(tableEl);
  const exportBtn = h("button", { class: "mnb-export", type: "button" });
  const verifyBtn = h("button", { class: "mnb-verify", type: "button" });
  const noiseBtn = h("button", { class: "mnb-noise", type: "button", title: "re-run the export with fresh random states (reproduce --seeds): runs within the best run's spread show as tied within noise" });
  const seedsIn = h("input", { class: "mnb-seeds", type: "number", min: "2", max: "50", value: "5", "aria-label": "seeds for the noise estimate", title: "seeds for the noise estimate" });
  const clearBtn = h("button", { class: "mnb-clear", type: "button", text: "clear selection" });
  const status = h("div", { class: "mnb-status", role: "status", "aria-live": "polite" });
  const confirmBox = h("div", { class: "mnb-confirm" });
  const diffBox = h("div", { class: "mnb-diff" });
  const plotTabs = h("div", { class: "mnb-plot-tabs", role: "tablist" });
  const plotControls = h("div", { class: "mnb-plot-controls" });
  const plotBox = h("div", { class: "mnb-plot" });
  const tip = h("div", { class: "mnb-tip", role: "tooltip" });
  root.append(
    title,
    h("div", { class: "mnb-bar" }, metricSel, goalSel, groupSel, chooser),
    h("div", { class: "mnb-bar" }, q, count, chips), qError, constants, scroller,
    h("div", { class: "mnb-bar" }, exportBtn, verifyBtn, h("span", { class: "mnb-noise-group" }, noiseBtn, seedsIn), clearBtn), status, confirmBox, diffBox,
    h("div", { class: "mnb-plots" }, plotTabs, plotControls, plotBox), tip,
  );

  const selected = () => new Set(model.get("selected") || []);
  const sortState = () => model.get("sort") || {};
  const visibleCols = () => st.table.columns.filter((c) => !st.hiddenCols.has(c.key));
  const metricKey = () => st.table.metric;
  const idAt = (i) => st.table.byKey.get("id")?.values[i];
  const get = (i, key) => st.table.byKey.get(key)?.values[i];

  function setTrait(name, value) { model.set(name, value); model.save_changes(); }

  function init() {
    const t = st.table;
    const names = t.byKey.get("name")?.values || [];
    const step = Math.max(1, Math.floor(names.length / 2000)); // a sample is enough at 100,000
    st.nameChars = 0;
    for (let i = 0; i < names.length; i += step) st.nameChars = Math.max(st.nameChars, String(names[i] ?? "").length + 2);
    st.hiddenCols = new Set(t.columns.filter((c) => c.hidden).map((c) => c.key));
    const params = t.columns.filter((c) => c.kind === "param" && !c.hidden);
    if (!params.some((c) => c.key === st.plotParam)) st.plotParam = params[0]?.key ?? null;
    put(metricSel, ...t.columns.filter((c) => c.kind === "metric").map((c) => h("option", { value: c.key, text: c.label })));
    if (t.metric) metricSel.value = t.metric;
    goalSel.value = t.goal;
    buildChooser();
    recompute();
  }

  function buildChooser() {
    put(chooserBody, ...st.table.columns.filter((c) => c.kind !== "id" && c.kind !== "name").map((c) => {
      const box = h("input", { type: "checkbox", "data-key": c.key });
      box.checked = !st.hiddenCols.has(c.key);
      box.addEventListener("change", () => { if (box.checked) st.hiddenCols.delete(c.key); else st.hiddenCols.add(c.key); drawAll(); });
      return h("label", { class: "mnb-choice", title: (c.sources || []).join(" = ") || c.key }, box, h("bdi", { text: c.label }), c.hidden && c.kind === "param" ? h("span", { class: "mnb-muted", text: " (same wherever set)" }) : null);
    }));
  }

  function recompute(plots = true) {
    const t = st.table;
    let pred = () => true;
    st.error = "";
    const text = model.get("filter") || "";
    if (text.trim()) {
      try { pred = compileQuery(text, t.columns, get); } catch (e) { st.error = e.message; pred = () => true; }
    }
    const brushes = [...st.brushes.values()];
    const all = [];
    for (let i = 0; i < t.n; i++) if (pred(i) && brushes.every((b) => b.test(i))) all.push(i);
    const srt = sortState();
    const key = srt.key && t.byKey.has(srt.key) ? srt.key : metricKey();
    st.order = key ? sortIndices(all, t.byKey.get(key).values, srt.key ? !!srt.ascending : t.goal === "min") : all;
    st.items = groupItems(st.order);
    drawAll(plots);
  }

  function groupItems(order) {
    if (!st.group || !st.table.byKey.has(st.group)) return order;
    const groups = new Map();
    for (const i of order) {
      const g = formatCell(get(i, st.group), st.table.byKey.get(st.group));
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(i);
    }
    const items = [];
    for (const [label, rows] of groups) { items.push({ group: label, count: rows.length, first: rows[0] }); items.push(...rows); }
    return items;
  }

  function drawAll(plots = true) {
    drawTitle(); drawHeader(); scroller.scrollTop = Math.min(scroller.scrollTop, st.items.length * ROW_H);
    drawRows(); drawButtons(); drawDiff();
    if (plots) drawPlot();
  }

  function drawTitle() {
    const t = st.table; const m = t.byKey.get(metricKey());
    const bestId = [...t.best][0];
    const bi = bestId === undefined ? -1 : t.byKey.get("id").values.indexOf(bestId);
    put(title, h("b", { text: `${t.total.toLocaleString("en-US")} runs` }),
      t.truncated ? h("span", { class: "mnb-muted", text: ` (the first ${t.n.toLocaleString("en-US")} here)` }) : null,
      m && bi >= 0 ? h("span", {}, " · best by ", h("bdi", { text: m.label }), ": ", h("bdi", { class: "mnb-best-name", text: String(get(bi, "name") ?? "") }), ` (${formatCell(get(bi, m.key), m)})`) : null);
    qError.textContent = st.error;
    q.classList.toggle("mnb-bad", !!st.error);
    count.textContent = `${st.order.length.toLocaleString("en-US")} of ${t.n.toLocaleString("en-US")} runs`;
    put(chips, ...[...st.brushes.entries()].map(([key, b]) => h("button", { type: "button", class: "mnb-chip", title: "remove this brush", onclick: () => { st.brushes.delete(key); recompute(); } }, h("bdi", { text: b.label }), " ✕")));
    const consts = Object.entries(t.constant);
    const folded = Object.keys(t.folded).length;
    put(constants, ...(consts.length ? [h("span", { text: "same for all runs: " }), ...consts.flatMap(([k, v], j) => [j ? ", " : "", h("bdi", { text: `${k}=${valueText(v)}` })])] : []),
      folded ? h("span", { title: "estimator settings that are the same wherever set; show them from \u201ccolumns\u201d", text: ` · ${folded} estimator default${folded > 1 ? "s" : ""} folded` }) : null);
  }

  function frozenKeys() {
    const keys = ["id", "name"];
    if (metricKey()) keys.push(metricKey());
    return keys;
  }

  function layout() {
    const frozen = frozenKeys();
    const cols = visibleCols();
    const ordered = [...frozen.map((k) => st.table.byKey.get(k)).filter(Boolean), ...cols.filter((c) => !frozen.includes(c.key))];
    // The name column gives way in a narrow host (a JupyterLab sidebar) so the frozen columns
    // leave room for the rest to scroll past them.
    const room = scroller.clientWidth || 0;
    // As wide as the longest name needs (up to 460 px), so names that differ only at the end
    // are not cut to the same text.
    const want = Math.max(160, Math.min(460, st.nameChars * 8 + 28)); // bold best rows: ~8 px a char
    const widths = { id: 92, name: room ? Math.max(110, Math.min(want, room - 30 - 92 - 96 - 60)) : want };
    let left = 30;
    return ordered.map((c) => {
      const w = widths[c.key] ?? (c.kind === "metric" ? 96 : c.kind === "model" ? 170 : c.key === "started_at" ? 150 : 110);
      const col = { col: c, w, frozen: frozen.includes(c.key), left };
      if (col.frozen) left += w;
      return col;
    });
  }

  function drawHeader() {
    const srt = sortState();
    const tr = h("tr");
    tr.append(h("th", { class: "mnb-frozen mnb-check", style: "left:0" }));
    for (const { col, w, frozen, left } of layout()) {
      const active = srt.key === col.key || (!srt.key && col.key === metricKey());
      const asc = srt.key ? !!srt.ascending : st.table.goal === "min";
      const th = h("th", { "data-key": col.key, class: `${frozen ? "mnb-frozen" : ""} mnb-k-${col.kind}`, style: `width:${w}px;min-width:${w}px;max-width:${w}px${frozen ? `;left:${left}px` : ""}`,
        "aria-sort": active ? (asc ? "ascending" : "descending") : "none", title: col.sources && col.sources.length > 1 ? `one parameter: ${col.sources.map((x) => x.replace(/^params\./, "")).join(" = ")} (the notebook variable wins)` : col.key, tabindex: "0" },
      h("bdi", { text: col.label }), h("span", { class: "mnb-ind", text: active ? (asc ? " ▲" : " ▼") : "" }));
      const click = () => {
        const cur = sortState();
        const ascending = cur.key === col.key ? !cur.ascending : col.key === metricKey() ? st.table.goal === "min" : col.kind === "metric" ? false : true;
        setTrait("sort", { key: col.key, ascending });
      };
      th.addEventListener("click", click);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); click(); } });
      tr.append(th);
    }
    put(thead, tr);
  }

  function drawRows() {
    const sel = selected(); const lay = layout(); const t = st.table;
    const total = st.items.length;
    const top = scroller.scrollTop; const height = scroller.clientHeight || 420;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const rows = [h("tr", { class: "mnb-spacer", style: `height:${first * ROW_H}px` })];
    for (let k = first; k < last; k++) {
      const item = st.items[k];
      if (typeof item === "object") {
        const td = h("td", { colspan: String(lay.length + 1), class: "mnb-group-row" }, h("bdi", { text: item.group }), h("span", { class: "mnb-muted", text: ` · ${item.count} run${item.count > 1 ? "s" : ""}` }));
        rows.push(h("tr", { class: "mnb-group-head" }, td));
        continue;
      }
      const i = item; const id = idAt(i);
      const tr = h("tr", { "data-id": id, class: `${t.best.has(id) ? "mnb-best" : ""} ${sel.has(id) ? "mnb-selected" : ""}` });
      const box = h("input", { type: "checkbox", "aria-label": `select run ${String(get(i, "name") ?? id)}` });
      box.checked = sel.has(id);
      box.addEventListener("change", () => toggle(id));
      tr.append(h("td", { class: "mnb-frozen mnb-check", style: "left:0" }, box));
      for (const { col, w, frozen, left } of lay) {
        const v = col.values[i];
        const text = col.key === "name" && t.best.has(id) ? `★ ${formatCell(v, col)}` : formatCell(v, col);
        const td = h("td", { class: `${frozen ? "mnb-frozen " : ""}${col.numeric ? "mnb-num" : ""}${v === undefined ? " mnb-unset" : v === NONE ? " mnb-none" : ""}${col.key === "name" && t.nameAuto[i] ? " mnb-auto" : ""}`,
          style: `width:${w}px;max-width:${w}px${frozen ? `;left:${left}px` : ""}`, dir: "auto",
          title: v === undefined ? "not set in this run" : col.kind === "id" ? String(v) : col.key === "name" && t.nameAuto[i] ? `${formatCell(v, col)} (automatic name: model and what differs)` : typeof v === "number" ? fmtNum(v) : formatCell(v, col) });
        td.textContent = text;
        tr.append(td);
      }
      rows.push(tr);
    }
    rows.push(h("tr", { class: "mnb-spacer", style: `height:${(total - last) * ROW_H}px` }));
    put(tbody, ...rows);
    if (!total) tbody.append(h("tr", {}, h("td", { colspan: String(lay.length + 1), class: "mnb-empty", text: t.n ? "no run matches the filter" : "no runs yet: %track on in a notebook, then cells that compute a metric, record them" })));
  }

  function toggle(id) {
    const sel = model.get("selected") || [];
    const next = sel.includes(id) ? sel.filter((x) => x !== id) : [...sel, id];
    setTrait("selected", next);
    if (next.length === 2) model.send({ action: "diff", ids: next });
  }

  function drawButtons() {
    const n = (model.get("selected") || []).length;
    exportBtn.textContent = n ? `Export ${n} selected` : "Export best";
    verifyBtn.textContent = n ? `Verify ${n} selected` : "Verify best";
    exportBtn.disabled = !n && !st.table.best.size;
    verifyBtn.disabled = exportBtn.disabled;
    noiseBtn.textContent = n === 1 ? "Noise of selected" : "Noise of best";
    noiseBtn.disabled = n > 1 || (!n && !st.table.best.size);
    if (n > 1) noiseBtn.title = "tick a single run to estimate its noise";
    clearBtn.hidden = !n;
    status.textContent = model.get("status") || "";
    put(confirmBox, );
    if (st.confirm) {
      const c = st.confirm;
      confirmBox.append(h("span", { text: c.text + " " }),
        h("button", { type: "button", class: "mnb-overwrite", text: "Overwrite", onclick: () => { st.confirm = null; model.send({ action: c.action, ids: c.ids, overwrite: true }); drawButtons(); } }),
        h("button", { type: "button", text: "Keep it", onclick: () => { st.confirm = null; drawButtons(); } }));
    }
  }

  const targetIds = () => { const sel = model.get("selected") || []; return sel.length ? sel : [...st.table.best].slice(0, 1); };
  exportBtn.addEventListener("click", () => model.send({ action: "export", ids: targetIds() }));
  verifyBtn.addEventListener("click", () => model.send({ action: "verify", ids: targetIds() }));
  const seeds = () => Math.min(50, Math.max(2, Math.round(Number(seedsIn.value) || 5)));
  noiseBtn.addEventListener("click", () => model.send({ action: "noise", ids: targetIds(), seeds: seeds() }));
  clearBtn.addEventListener("click", () => setTrait("selected", []));

  function drawDiff() {
    const sel = model.get("selected") || [];
    if (sel.length !== 2) { put(diffBox, sel.length ? h("div", { class: "mnb-muted", text: `tick two runs to see what differs (${sel.length} ticked)` }) : null); return; }
    const ids = st.table.byKey.get("id").values;
    const [a, b] = sel.map((id) => ids.indexOf(id));
    if (a < 0 || b < 0) { put(diffBox, ); return; }
    const only = h("input", { type: "checkbox" });
    only.checked = st.onlyDiff;
    only.addEventListener("change", () => { st.onlyDiff = only.checked; drawDiff(); });
    const body = h("tbody");
    let same = 0;
    for (const col of st.table.columns) {
      if (col.kind === "id") continue;
      const va = col.values[a]; const vb = col.values[b];
      const equal = formatCell(va, col) === formatCell(vb, col) && (va === undefined) === (vb === undefined);
      if (equal) same++;
      if (equal && st.onlyDiff) continue;
      body.append(h("tr", { class: equal ? "" : "mnb-differs" }, h("th", { dir: "auto", text: col.label }),
        h("td", { dir: "auto", class: va === undefined ? "mnb-unset" : "", title: va === undefined ? "not set in this run" : null, text: formatCell(va, col) }),
        h("td", { dir: "auto", class: vb === undefined ? "mnb-unset" : "", title: vb === undefined ? "not set in this run" : null, text: formatCell(vb, col) })));
    }
    const head = h("tr", {}, h("th"), h("th", { dir: "auto", text: String(get(a, "name") ?? ids[a]) }), h("th", { dir: "auto", text: String(get(b, "name") ?? ids[b]) }));
    const parts = [h("div", { class: "mnb-diff-title" }, h("b", { text: "Diff of the two ticked runs" }), " ", h("label", {}, only, ` only differences (${same} the same)`)),
      h("table", { class: "mnb-diff-table" }, h("thead", {}, head), body)];
    if (st.diffCode && st.diffCode.ids.join() === sel.join()) {
      parts.push(st.diffCode.code ? h("pre", { class: "mnb-code", text: st.diffCode.code }) : h("div", { class: "mnb-muted", text: "code: identical lineage" }));
    }
    put(diffBox, ...parts);
  }

  // -- plots --------------------------------------------------------------------------------
  function drawPlot() {
    const kinds = [["param", "metric vs parameter"], ["time", "metric over time"], ["parallel", "parallel coordinates"]];
    put(plotTabs, ...kinds.map(([k, label]) => h("button", { type: "button", role: "tab", "aria-selected": String(st.plot === k), class: st.plot === k ? "mnb-tab mnb-on" : "mnb-tab", text: label, onclick: () => { st.plot = k; drawPlot(); } })));
    put(plotControls, );
    plotW = plotBox.clientWidth;
    const m = st.table.byKey.get(metricKey());
    if (!m) { put(plotBox, h("div", { class: "mnb-muted", text: "no metric to plot" })); return; }
    if (st.plot === "param") plotParam(m);
    else if (st.plot === "time") plotTime(m);
    else plotParallel(m);
  }

  function sampleRows() {
    const rows = st.order;
    if (rows.length <= MAX_LINES) return rows;
    const sel = selected(); const keep = new Set();
    rows.forEach((i) => { if (st.table.best.has(idAt(i)) || sel.has(idAt(i))) keep.add(i); });
    const step = rows.length / MAX_LINES;
    for (let k = 0; k < MAX_LINES; k++) keep.add(rows[Math.floor(k * step)]);
    return [...keep];
  }

  /** The plot's width: the room its box has (the notebook's output area, the report's page or
   * a narrow JupyterLab sidebar), so no point or axis label falls outside what is shown. */
  function plotWidth() {
    const w = Math.floor(plotBox.clientWidth || root.clientWidth || 0);
    return w > 0 ? Math.max(240, Math.min(w - 2, MAX_PLOT_W)) : 680;
  }

  function frame(w, hgt) {
    const svg = s("svg", { viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, class: "mnb-svg", role: "img" });
    return svg;
  }

  function hover(node, i) {
    node.addEventListener("mouseenter", (e) => showTip(e, i));
    node.addEventListener("mousemove", (e) => moveTip(e));
    node.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    node.addEventListener("click", () => toggle(idAt(i)));
  }

  function showTip(e, i) {
    const t = st.table; const m = t.byKey.get(metricKey());
    const lines = [h("div", { class: "mnb-tip-name" }, h("bdi", { text: String(get(i, "name") ?? idAt(i)) }))];
    if (m) lines.push(h("div", {}, h("bdi", { text: `${m.label} = ${formatCell(m.values[i], m)}` })));
    for (const c of t.columns.filter((c) => c.kind === "param" && !st.hiddenCols.has(c.key)).slice(0, 10)) lines.push(h("div", { class: "mnb-muted" }, h("bdi", { text: `${c.label} = ${formatCell(c.values[i], c)}` })));
    put(tip, ...lines);
    tip.style.display = "block";
    moveTip(e);
  }

  function moveTip(e) {
    const r = root.getBoundingClientRect();
    tip.style.left = `${e.clientX - r.left + 12}px`;
    tip.style.top = `${e.clientY - r.top + 12}px`;
  }

  /** Tick marks and labels; a label longer than `chars` is cut (the whole text in its title),
   * so labels stay inside the room left of an axis. */
  function axisLabels(svg, axis, vertical, x0, y0, len, chars = 14) {
    const cut = (text) => {
      if (text.length <= chars) return svgText;
      return (x, y, _t, attrs) => { const node = svgText(x, y, text.slice(0, Math.max(1, chars - 1)) + "…", attrs); const full = s("title", {}); full.textContent = text; node.append(full); return node; };
    };
    for (const tk of axis.ticks) {
      const p = tk.pos;
      if (vertical) {
        const y = y0 - p * len;
        svg.append(s("line", { x1: x0 - 4, x2: x0, y1: y, y2: y, class: "mnb-tick" }), cut(tk.label)(x0 - 6, y + 4, tk.label, { "text-anchor": "end", class: "mnb-tick-label" }));
      } else {
        const x = x0 + p * len;
        svg.append(s("line", { x1: x, x2: x, y1: y0, y2: y0 + 4, class: "mnb-tick" }), svgText(x, y0 + 16, tk.label.length > 14 ? tk.label.slice(0, 13) + "…" : tk.label, { "text-anchor": "middle", class: "mnb-tick-label" }));
      }
    }
  }

  function points(svg, rows, xOf, yOf) {
    const sel = selected();
    const best = []; const normal = [];
    for (const i of rows) (st.table.best.has(idAt(i)) || sel.has(idAt(i)) ? best : normal).push(i);
    for (const i of [...normal, ...best]) {
      const x = xOf(i); const y = yOf(i);
      if (x === null || y === null || Number.isNaN(x) || Number.isNaN(y)) continue;
      const id = idAt(i);
      const c = s("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: st.table.best.has(id) ? 6 : 4, class: `mnb-pt${st.table.best.has(id) ? " mnb-pt-best" : ""}${sel.has(id) ? " mnb-pt-sel" : ""}`, "data-id": id });
      hover(c, i);
      svg.append(c);
    }
  }

  function plotParam(m) {
    const params = st.table.columns.filter((c) => c.kind === "param" || c.kind === "model");
    if (!params.length) { put(plotBox, h("div", { class: "mnb-muted", text: "no parameter differs between the runs" })); return; }
    if (!params.some((c) => c.key === st.plotParam)) st.plotParam = params[0].key;
    const sel = h("select", { class: "mnb-plot-param", "aria-label": "parameter" }, ...params.map((c) => h("option", { value: c.key, text: c.label })));
    sel.value = st.plotParam;
    sel.addEventListener("change", () => { st.plotParam = sel.value; st.plotLog = null; drawPlot(); });
    const p = st.table.byKey.get(st.plotParam);
    const rows = sampleRows().filter((i) => typeof m.values[i] === "number");
    const xa = axisFor(rows.map((i) => p.values[i]), { log: st.plotLog });
    const logBox = h("input", { type: "checkbox", class: "mnb-log" });
    logBox.checked = xa.type === "log"; logBox.disabled = xa.type === "category";
    logBox.addEventListener("change", () => { st.plotLog = logBox.checked; drawPlot(); });
    plotControls.append(sel, h("label", {}, logBox, " log x axis"), h("span", { class: "mnb-muted", text: ` ${rows.length} runs with ${m.label}` }));
    const W = plotWidth(); const H = W < 420 ? 260 : 320; const L = 64; const B = 40; const T = PLOT_TOP; const R = 16;
    const ya = axisFor(rows.map((i) => m.values[i]), { log: false });
    const svg = frame(W, H);
    svg.append(s("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "mnb-axis" }), s("line", { x1: L, x2: L, y1: T, y2: H - B, class: "mnb-axis" }));
    axisLabels(svg, xa, false, L, H - B, W - L - R);
    axisLabels(svg, ya, true, L, H - B, H - B - T, Math.floor((L - 10) / 6.5));
    svg.append(svgText(W / 2, H - 4, p.label + (xa.type === "log" ? " (log)" : ""), { "text-anchor": "middle", class: "mnb-axis-label" }), metricLabel(m.label, W));
    points(svg, rows, (i) => L + xa.scale(p.values[i]) * (W - L - R), (i) => H - B - ya.scale(m.values[i]) * (H - B - T));
    put(plotBox, svg);
  }

  /** The metric's name above the plot area (its own band, clear of the top tick label and of
   * a point drawn at the top), cut to the plot's width with the whole name in its title. */
  function metricLabel(label, W) {
    const chars = Math.max(6, Math.floor((W - 8) / 7.5));
    const text = label.length > chars ? label.slice(0, chars - 1) + "…" : label;
    const node = svgText(4, 13, text, { class: "mnb-axis-label mnb-metric-label" });
    if (text !== label) { const full = s("title", {}); full.textContent = label; node.append(full); }
    return node;
  }

  function plotTime(m) {
    const rows = sampleRows().filter((i) => typeof m.values[i] === "number" && typeof get(i, "started_at") === "string");
    const times = rows.map((i) => Date.parse(get(i, "started_at")));
    const W = plotWidth(); const H = W < 420 ? 260 : 320; const L = 64; const B = 40; const T = PLOT_TOP; const R = 16;
    const svg = frame(W, H);
    if (!rows.length) { put(plotBox, h("div", { class: "mnb-muted", text: "no timed runs with this metric" })); return; }
    const lo = Math.min(...times); const hi = Math.max(...times);
    const xs = (t) => L + (hi === lo ? 0.5 : (t - lo) / (hi - lo)) * (W - L - R);
    const ya = axisFor(rows.map((i) => m.values[i]), { log: false });
    svg.append(s("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "mnb-axis" }), s("line", { x1: L, x2: L, y1: T, y2: H - B, class: "mnb-axis" }));
    axisLabels(svg, ya, true, L, H - B, H - B - T, Math.floor((L - 10) / 6.5));
    const fmt = (t) => { const d = new Date(t); return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`; };
    svg.append(svgText(L, H - B + 16, fmt(lo), { class: "mnb-tick-label" }), svgText(W - R, H - B + 16, fmt(hi), { "text-anchor": "end", class: "mnb-tick-label" }),
      svgText(W / 2, H - 4, "when", { "text-anchor": "middle", class: "mnb-axis-label" }), metricLabel(m.label, W));
    // best so far, as a step line
    const byTime = rows.map((i, k) => [times[k], m.values[i]]).sort((a, b) => a[0] - b[0]);
    let best = null; const pts = [];
    for (const [t, v] of byTime) {
      if (best === null || (st.table.goal === "min" ? v < best : v > best)) { if (best !== null) pts.push([xs(t), H - B - ya.scale(best) * (H - B - T)]); best = v; }
      pts.push([xs(t), H - B - ya.scale(best) * (H - B - T)]);
    }
    svg.append(s("polyline", { points: pts.map((p) => p.map((x) => x.toFixed(1)).join(",")).join(" "), class: "mnb-bestline" }));
    const tOf = new Map(rows.map((i, k) => [i, times[k]]));
    points(svg, rows, (i) => xs(tOf.get(i)), (i) => H - B - ya.scale(m.values[i]) * (H - B - T));
    put(plotBox, svg);
  }

  function plotParallel(m) {
    // As wide as the space there is (a narrow sidebar included): as many parameter axes as fit
    // MIN_GAP apart, the metric last; the note says how to see the others.
    const avail = plotWidth(); const L = avail < 420 ? 76 : 100; const R = avail < 420 ? 40 : 50;
    const fit = Math.max(1, Math.min(9, Math.floor((avail - L - R) / MIN_GAP)));
    const candidates = st.table.columns.filter((c) => (c.kind === "param" || c.kind === "model") && !st.hiddenCols.has(c.key));
    const axes = candidates.slice(0, fit);
    axes.push(m);
    const rows = sampleRows();
    const W = avail; const H = 330; const T = 28; const B = 30;
    const svg = frame(W, H);
    const gap = axes.length > 1 ? (W - L - R) / (axes.length - 1) : 0;
    // Axes span every run, not only the ones shown, so they stay put while brushing.
    const scales = axes.map((c) => axisFor(c.values, {}));
    const yOf = (k, i) => H - B - scales[k].scale(axes[k].values[i]) * (H - B - T);
    const sel = selected();
    const lines = s("g", { class: "mnb-lines" });
    const top = [];
    for (const i of rows) {
      const id = idAt(i);
      const pts = axes.map((_, k) => `${(L + k * gap).toFixed(1)},${yOf(k, i).toFixed(1)}`).join(" ");
      const line = s("polyline", { points: pts, class: `mnb-line${st.table.best.has(id) ? " mnb-line-best" : ""}${sel.has(id) ? " mnb-line-sel" : ""}`, "data-id": id });
      hover(line, i);
      (st.table.best.has(id) || sel.has(id) ? top : [lines]).push(line);
      if (!(st.table.best.has(id) || sel.has(id))) lines.append(line);
    }
    svg.append(lines);
    top.filter((x) => x !== lines).forEach((x) => svg.append(x));
    axes.forEach((c, k) => {
      const x = L + k * gap;
      const g = s("g", { class: "mnb-paxis", "data-key": c.key });
      g.append(s("line", { x1: x, x2: x, y1: T, y2: H - B, class: "mnb-axis" }));
      axisLabels(g, scales[k], true, x, H - B, H - B - T, Math.max(3, Math.min(14, Math.floor(((k ? gap : L) - 10) / 6.5))));
      // A label fits between its neighbours (and inside the plot at either end): ~6.5 px a char.
      const room = Math.min(axes.length > 1 ? gap : W, 2 * Math.min(x, W - x));
      const chars = Math.max(4, Math.min(16, Math.floor((room - 6) / 7.5))); // bold: ~7.5 px a char
      const name = c.label.length > chars ? c.label.slice(0, chars - 1) + "…" : c.label;
      const label = svgText(x, T - 12, name, { "text-anchor": "middle", class: "mnb-axis-label" });
      if (name !== c.label) { const full = s("title", {}); full.textContent = c.label; label.append(full); }
      g.append(label);
      const b = st.brushes.get(c.key);
      if (b) g.append(s("rect", { x: x - 7, width: 14, y: b.y0, height: Math.max(2, b.y1 - b.y0), class: "mnb-brush" }));
      const hit = s("rect", { x: x - 12, width: 24, y: T, height: H - B - T, class: "mnb-brush-area" });
      brushable(svg, hit, c, scales[k], T, H - B);
      g.append(hit);
      svg.append(g);
    });
    plotControls.append(h("span", { class: "mnb-muted", text: "drag along an axis to keep only the runs in that range; click an axis to clear it" }));
    if (candidates.length > axes.length - 1) plotControls.append(h("span", { class: "mnb-muted mnb-axes-note", text: `${axes.length - 1} of ${candidates.length} parameters: widen the view or hide columns to see others` }));
    put(plotBox, svg);
  }

  function brushable(svg, hit, col, axis, y0, y1) {
    hit.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      const pt = (ev) => { const r = svg.getBoundingClientRect(); const scaleY = (svg.viewBox.baseVal?.height || r.height) / r.height; return Math.min(y1, Math.max(y0, (ev.clientY - r.top) * scaleY)); };
      const start = pt(e); let end = start;
      const rect = s("rect", { x: Number(hit.getAttribute("x")) + 5, width: 14, y: start, height: 1, class: "mnb-brush" });
      svg.append(rect);
      const move = (ev) => { end = pt(ev); rect.setAttribute("y", Math.min(start, end)); rect.setAttribute("height", Math.abs(end - start)); };
      const up = () => {
        window.removeEventListener("pointermove", move); window.removeEventListener("pointerup", up);
        if (Math.abs(end - start) < 3) { st.brushes.delete(col.key); recompute(); return; }
        const a = Math.min(start, end); const b = Math.max(start, end);
        const len = y1 - y0;
        const hiPos = (y1 - a) / len; const loPos = (y1 - b) / len;
        const values = col.values;
        const inside = axis.ticks.filter((t) => t.pos >= loPos && t.pos <= hiPos).map((t) => t.label);
        st.brushes.set(col.key, {
          y0: a, y1: b,
          label: `${col.label}: ${axis.type === "category" ? inside.join(", ") || "(none)" : `${fmt3(valueAt(axis, loPos))}–${fmt3(valueAt(axis, hiPos))}`}`,
          test: (i) => { const p = axis.scale(values[i]); return p !== undefined && p >= loPos - 1e-9 && p <= hiPos + 1e-9; },
        });
        recompute();
      };
      window.addEventListener("pointermove", move); window.addEventListener("pointerup", up);
    });
  }

  // -- events ---------------------------------------------------------------------------------
  let timer = null;
  q.value = model.get("filter") || "";
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => setTrait("filter", q.value), 120); });
  metricSel.addEventListener("change", () => {
    const col = st.table.byKey.get(metricSel.value);
    st.table.metric = metricSel.value; st.table.goal = col?.goal || "max"; goalSel.value = st.table.goal;
    st.table.best = bestIds(st.table, st.table.metric, st.table.goal);
    model.send({ action: "select_metric", metric: metricSel.value, goal: st.table.goal });
    setTrait("sort", {});
    recompute();
  });
  goalSel.addEventListener("change", () => {
    st.table.goal = goalSel.value; st.table.best = bestIds(st.table, st.table.metric, st.table.goal);
    model.send({ action: "select_metric", metric: st.table.metric, goal: st.table.goal });
    recompute();
  });
  groupSel.addEventListener("change", () => { st.group = groupSel.value; st.items = groupItems(st.order); drawAll(); });
  // Redraw table and plot when the view changes width (a sidebar dragged, a window resized).
  let plotW = 0; let tableW = scroller.clientWidth; let roRaf = 0;
  const ro = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
    if (roRaf) return;
    roRaf = requestAnimationFrame(() => {
      roRaf = 0;
      const tw = scroller.clientWidth;
      if (tw && Math.abs(tw - tableW) > 8) { tableW = tw; drawHeader(); drawRows(); }
      const w = plotBox.clientWidth;
      if (w && Math.abs(w - plotW) > 8) { plotW = w; drawPlot(); }
    });
  });
  if (ro) { ro.observe(plotBox); ro.observe(scroller); }
  let raf = 0;
  scroller.addEventListener("scroll", () => { if (!raf) raf = requestAnimationFrame(() => { raf = 0; drawRows(); }); });

  const handlers = {
    "change:payload": () => { st.table = normalize(model.get("payload")); init(); },
    "change:filter": () => { if (q.value !== (model.get("filter") || "")) q.value = model.get("filter") || ""; recompute(); },
    "change:sort": () => recompute(false), // the same runs: the plots stay as drawn
    "change:selected": () => { drawRows(); drawButtons(); drawDiff(); drawPlot(); },
    "change:status": () => drawButtons(),
    "msg:custom": (msg) => {
      if (!msg || typeof msg !== "object") return;
      if (msg.type === "diff") { st.diffCode = { ids: msg.ids || [], code: String(msg.code || "") }; drawDiff(); }
      if (msg.type === "confirm") { st.confirm = { action: msg.action, ids: msg.ids || [], text: String(msg.text || "") }; drawButtons(); }
    },
  };
  for (const [ev, cb] of Object.entries(handlers)) model.on(ev, cb);
  init();
  // The static snapshot printed just before the live widget (for saved notebooks) is
  // redundant while the widget lives: hide it. The output may be attached a moment later.
  const hideSnapshot = () => {
    const area = el.closest(".jp-OutputArea-child, .output_area");
    const prev = area && area.previousElementSibling;
    if (prev && prev.querySelector(".mnb-snapshot")) prev.style.display = "none";
  };
  const snapTimers = [0, 300, 1500].map((ms) => setTimeout(hideSnapshot, ms));
  return () => {
    for (const [ev, cb] of Object.entries(handlers)) model.off(ev, cb);
    clearTimeout(timer); snapTimers.forEach(clearTimeout); if (ro) ro.disconnect(); cancelAnimationFrame(roRaf); el.replaceChildren();
  };
}

/** A model over a static payload (the HTML report): traits live in the page, actions are
 * answered with a note that they need a kernel. */
export function staticModel(payload, extra = {}) {
  const traits = { payload, selected: [], sort: {}, filter: "", status: "", ...extra };
  const listeners = new Map();
  return {
    get: (k) => traits[k],
    set: (k, v) => { traits[k] = v; (listeners.get("change:" + k) || []).slice().forEach((cb) => cb()); },
    save_changes: () => {},
    on: (ev, cb) => { if (!listeners.has(ev)) listeners.set(ev, []); listeners.get(ev).push(cb); },
    off: (ev, cb) => { const l = listeners.get(ev) || []; const k = l.indexOf(cb); if (k >= 0) l.splice(k, 1); },
    send: (msg) => {
      if (msg && (msg.action === "export" || msg.action === "verify" || msg.action === "noise")) {
        const rid = String((msg.ids || [])[0] || "").slice(0, 12);
        const cli = msg.action === "verify" ? `reproduce ${rid}` : msg.action === "noise" ? `reproduce ${rid} --seeds ${msg.seeds || 5}` : `export ${rid}`;
        traits.status = `${msg.action} needs the notebook: run mnb.compare() there, or \`mlops-nb ${cli}\``;
        (listeners.get("change:status") || []).forEach((cb) => cb());
      }
    },
  };
}

export default { render };
