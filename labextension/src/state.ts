/**
 * Pure logic of the panel: the shapes the server sends, formatting, and the decisions the
 * panel makes (which experiment to show, how a cell compares to its recorded code). No DOM
 * and no JupyterLab imports, so vitest covers it without a browser.
 */

export interface IColumn {
  key: string;
  label: string;
  kind: 'id' | 'name' | 'model' | 'metric' | 'param' | 'info';
  goal?: 'min' | 'max';
}

export interface IVerdict {
  level: string | null;
  ok: boolean | null;
  checked_at?: string | null;
}

/**
 * The runs endpoint's answer: the runs view's payload (`compare/payload.build_payload`, the
 * one the notebook widget and the HTML report draw; runs_view.js documents it), plus the
 * paging and store facts the panel uses.
 */
export interface IPayload {
  version?: number;
  n: number;
  experiment: string | null;
  store: string | null;
  columns: IColumn[];
  data: Record<string, unknown[]>;
  nones: Record<string, number[]>;
  name_auto: boolean[];
  metric: string | null;
  goal: 'min' | 'max' | null;
  best: string[];
  constant: Record<string, unknown>;
  folded: Record<string, unknown>;
  title: string;
  sort: { key: string | null; ascending: boolean };
  filter: string;
  total: number;
  all: number;
  offset: number;
  limit: number;
  truncated: boolean;
  problems: string[];
}

export interface IExperiment {
  name: string;
  runs: number;
  last_run_at: string | null;
  notebooks: string[];
}

export interface IExperiments {
  store: string | null;
  experiments: IExperiment[];
  notebook_experiment: string | null;
}

export interface ILineageCell {
  id: string;
  cell_id?: string | null;
  execution_count?: number | null;
  seq?: number;
  is_run?: boolean;
  code?: string | null;
  missing?: boolean;
}

export interface ILineage {
  run: string;
  session: string;
  notebook: string | null;
  cells: ILineageCell[];
}

export interface ICellRun {
  id: string;
  is_run: boolean;
  status: string;
  error: { type?: string; message?: string } | null;
  metrics: Record<string, unknown>;
  name: string | null;
  execution_count: number | null;
  experiment: string | null;
}

export interface IJob {
  id: string;
  kind: string;
  run_id: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  elapsed_s: number;
  result: { ok?: boolean; level?: string | null; summary?: string } | null;
  error: string | null;
}

export const EMPTY_PAYLOAD: IPayload = {
  n: 0,
  experiment: null,
  store: null,
  columns: [],
  data: {},
  nones: {},
  name_auto: [],
  metric: null,
  goal: null,
  best: [],
  constant: {},
  folded: {},
  title: '',
  sort: { key: null, ascending: true },
  filter: '',
  total: 0,
  all: 0,
  offset: 0,
  limit: 0,
  truncated: false,
  problems: []
};

/** A value as short text: numbers to 4 significant digits, missing as empty, never HTML. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      return String(value);
    }
    if (Number.isInteger(value)) {
      return String(value);
    }
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
      return value.toExponential(3);
    }
    return String(Number(value.toPrecision(4)));
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value);
}

/** A cell badge's text: its metrics (the first three), or the error of a failed run. */
export function badgeText(run: ICellRun, maxMetrics = 3): string {
  if (run.status === 'error' || run.error) {
    const kind = run.error?.type ?? 'error';
    return `✗ ${kind}`;
  }
  const entries = Object.entries(run.metrics ?? {});
  if (!entries.length) {
    return '';
  }
  const shown = entries.slice(0, maxMetrics).map(([k, v]) => `${k}=${formatValue(v)}`);
  const more = entries.length > maxMetrics ? ` +${entries.length - maxMetrics}` : '';
  return shown.join(' ') + more;
}

export function badgeTitle(run: ICellRun): string {
  const who = run.name ? `${run.name} · ` : '';
  if (run.error) {
    return `${who}run ${run.id.slice(0, 8)} failed: ${run.error.type ?? ''}: ${
      run.error.message ?? ''
    }`;
  }
  return `${who}run ${run.id.slice(0, 8)}: click to select it in the Experiments panel`;
}

/**
 * The experiment the panel shows: the user's explicit choice while it still exists, else
 * the active notebook's, else the most recently used one.
 */
export function pickExperiment(
  info: IExperiments,
  chosen: string | null
): string | null {
  const names = info.experiments.map(e => e.name);
  if (chosen !== null && names.includes(chosen)) {
    return chosen;
  }
  if (info.notebook_experiment && names.includes(info.notebook_experiment)) {
    return info.notebook_experiment;
  }
  if (!info.experiments.length) {
    return null;
  }
  const latest = [...info.experiments].sort((a, b) =>
    String(b.last_run_at ?? '').localeCompare(String(a.last_run_at ?? ''))
  );
  return latest[0].name;
}

/** Line endings and trailing blank space do not make a cell "changed". */
export function normalizeSource(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map(line => line.replace(/\s+$/, ''))
    .join('\n')
    .trim();
}

export type CellMatch = 'same' | 'changed' | 'missing';

/** How a notebook cell compares to the code a lineage cell run recorded. */
export function compareCell(recorded: string | null | undefined, current: string | null): CellMatch {
  if (current === null) {
    return 'missing';
  }
  if (recorded === null || recorded === undefined) {
    return 'same'; // code not stored: nothing to compare against
  }
  return normalizeSource(recorded) === normalizeSource(current) ? 'same' : 'changed';
}

/** The status line for a reproduce job. */
export function jobText(job: IJob): string {
  const run = job.run_id.slice(0, 8);
  if (job.kind === 'noise') {
    return noiseJobText(job);
  }
  switch (job.state) {
    case 'queued':
      return `reproduce ${run}: waiting for a free worker`;
    case 'running':
      return `reproducing ${run}… ${Math.round(job.elapsed_s)} s`;
    case 'failed':
      return `reproduce ${run} failed: ${job.error ?? 'unknown error'}`;
    case 'done': {
      const r = job.result ?? {};
      return `${run}: ${r.ok ? 'reproduced' : 'NOT reproduced'} (level ${r.level ?? 'none'})`;
    }
  }
}

/** `reproduce --seeds N` as a job: progress, then the spread and how many runs it ties. */
export function noiseJobText(job: IJob): string {
  const run = job.run_id.slice(0, 8);
  switch (job.state) {
    case 'queued':
      return `noise of ${run}: waiting for a free worker`;
    case 'running':
      return `noise of ${run}: seeded re-runs… ${Math.round(job.elapsed_s)} s`;
    case 'failed':
      return `noise of ${run} failed: ${job.error ?? 'unknown error'}`;
    case 'done': {
      const r = (job.result ?? {}) as Record<string, any>;
      const metrics = (r.metrics ?? {}) as Record<string, { spread?: number; std?: number }>;
      const ties = (r.ties ?? {}) as Record<string, string[]>;
      const parts = Object.entries(metrics).map(([name, m]) => {
        const n = (ties[name] ?? []).length;
        return `${name} spread ${fmtSpread(m.spread)}, ${n} run${n === 1 ? '' : 's'} tied within noise`;
      });
      return `noise of ${run} over ${r.seeds ?? '?'} seeds: ${parts.join('; ') || 'no metric measured'}`;
    }
  }
}

function fmtSpread(v: number | undefined): string {
  return typeof v === 'number' && Number.isFinite(v) ? Number(v.toPrecision(3)).toString() : '?';
}

export function verdictText(v: IVerdict | null | undefined): string {
  if (!v) {
    return '';
  }
  const mark = v.ok === true ? '✓' : v.ok === false ? '✗' : '';
  return `${v.level ?? ''} ${mark}`.trim();
}

/**
 * The next page of the same listing appended to the runs loaded so far, or null when it is
 * not the next page of the same listing (the store changed between the requests: the caller
 * starts again). Column-wise, so 100,000 runs are a few arrays, not 100,000 objects.
 */
export function appendPage(acc: IPayload, page: IPayload): IPayload | null {
  const keys = acc.columns.map(c => c.key).join('\u0000');
  if (
    page.offset !== acc.offset + acc.n ||
    page.all !== acc.all ||
    page.total !== acc.total ||
    page.columns.map(c => c.key).join('\u0000') !== keys
  ) {
    return null;
  }
  const data: Record<string, unknown[]> = {};
  for (const col of acc.columns) {
    data[col.key] = (acc.data[col.key] ?? []).concat(page.data[col.key] ?? []);
  }
  const nones: Record<string, number[]> = { ...acc.nones };
  for (const [key, rows] of Object.entries(page.nones ?? {})) {
    nones[key] = (nones[key] ?? []).concat(rows.map(j => j + acc.n));
  }
  return {
    ...acc,
    data,
    nones,
    name_auto: acc.name_auto.concat(page.name_auto ?? []),
    n: acc.n + page.n,
    limit: acc.limit + page.limit,
    truncated: page.truncated
  };
}

/** Whether a change of the view's traits needs the server. */
export function needsFetch(
  changed: string[],
  payload: Pick<IPayload, 'truncated' | 'offset'>
): boolean {
  // The panel loads every run (appendPage), so sort and filter stay in the browser even
  // while the later pages arrive; a new metric changes the best run and the column order.
  // `payload` stays in the signature for callers that ask about a page.
  void payload;
  return changed.includes('metric');
}
