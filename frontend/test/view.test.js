// Sorting, axes and payload handling of the runs view, without a browser.
import { describe, expect, it } from "vitest";
import { NONE, axisFor, bestIds, fmtNum, formatCell, normalize, sortIndices } from "../../mlops_nb/static/runs_view.js";

describe("sortIndices", () => {
  const values = [3, undefined, "b", 1, NONE, "a", 3];
  const all = values.map((_, i) => i);
  it("puts numbers, then text, then None, then not set; stable on ties", () => {
    expect(sortIndices(all, values, true)).toEqual([3, 0, 6, 5, 2, 4, 1]);
  });
  it("keeps None and not set last when descending", () => {
    expect(sortIndices(all, values, false)).toEqual([0, 6, 3, 2, 5, 4, 1]);
  });
  it("sorts only the given subset", () => {
    expect(sortIndices([1, 2, 3], values, true)).toEqual([3, 2, 1]);
  });
  it("sorts 10,000 rows (its speed is measured in benchmarks/bench_compare.py)", () => {
    const n = 10000; const vals = Array.from({ length: n }, (_, i) => (i * 7919) % 10007 / 10007);
    const out = sortIndices(vals.map((_, i) => i), vals, false);
    let sorted = true;
    for (let k = 1; k < n; k++) if (vals[out[k - 1]] < vals[out[k]]) sorted = false;
    expect(sorted).toBe(true);
    expect(new Set(out).size).toBe(n);
  });
});

describe("axisFor", () => {
  it("chooses a log axis for values spanning decades, with None and not-set ticks", () => {
    const ax = axisFor([0.001, 0.01, 0.1, 1, NONE, undefined]);
    expect(ax.type).toBe("log");
    expect(ax.ticks.map((t) => t.label)).toEqual(["0.001", "0.01", "0.1", "1", "None", "not set"]);
    expect(ax.scale(0.001)).toBeCloseTo(0);
    expect(ax.scale(1)).toBeCloseTo(0.8);
    expect(ax.scale(NONE)).toBeGreaterThan(0.8);
    expect(ax.scale(undefined)).toBeGreaterThan(ax.scale(NONE));
  });
  it("is linear when asked, and without extras uses the whole length", () => {
    const ax = axisFor([0.001, 1], { log: false });
    expect(ax.type).toBe("linear");
    expect(ax.scale(1)).toBeCloseTo(1);
  });
  it("is categorical for text, numbers first then text sorted", () => {
    const ax = axisFor(["gini", 3, "entropy", NONE]);
    expect(ax.type).toBe("category");
    expect(ax.ticks.map((t) => t.label)).toEqual(["3", "entropy", "gini", "None"]);
    const pos = ["gini", 3, "entropy", NONE].map(ax.scale);
    expect(new Set(pos).size).toBe(4);
    pos.forEach((p) => { expect(p).toBeGreaterThanOrEqual(0); expect(p).toBeLessThanOrEqual(1); });
  });
  it("never drops a run: every value gets a position", () => {
    const vals = [1, 2, NONE, undefined, "x"];
    const ax = axisFor(vals);
    vals.forEach((v) => expect(Number.isFinite(ax.scale(v))).toBe(true));
  });
  it("handles a single value", () => {
    const ax = axisFor([5, 5]);
    expect(Number.isFinite(ax.scale(5))).toBe(true);
  });
});

describe("payload", () => {
  const payload = {
    n: 3, columns: [{ key: "id", label: "id", kind: "id" }, { key: "name", label: "name", kind: "name" },
      { key: "metrics.f1", label: "f1", kind: "metric", goal: "max" }, { key: "params.d", label: "d", kind: "param" }],
    data: { id: ["a", "b", "c"], name: ["x", "y", "z"], "metrics.f1": [0.5, 0.9, 0.9], "params.d": [3, null, null] },
    nones: { "params.d": [2] }, metric: "metrics.f1", goal: "max", best: ["b", "c"],
  };
  it("tells None from not set", () => {
    const t = normalize(payload);
    expect(t.byKey.get("params.d").values).toEqual([3, undefined, NONE]);
    expect(formatCell(undefined)).toBe("—");
    expect(formatCell(NONE)).toBe("None");
  });
  it("accepts the row form of the contract", () => {
    const t = normalize({ columns: payload.columns, rows: [
      { id: "a", name: "x", metrics: { f1: 0.5 }, params: { d: 3 } },
      { id: "b", name: "y", metrics: { f1: 0.9 }, params: {} },
      { id: "c", name: "z", metrics: { f1: 0.9 }, params: { d: null } }] });
    expect(t.n).toBe(3);
    expect(t.byKey.get("params.d").values).toEqual([3, undefined, NONE]);
  });
  it("finds every tied best run for either goal", () => {
    const t = normalize(payload);
    expect([...bestIds(t, "metrics.f1", "max")]).toEqual(["b", "c"]);
    expect([...bestIds(t, "metrics.f1", "min")]).toEqual(["a"]);
  });
  it("formats numbers compactly", () => {
    expect(fmtNum(100)).toBe("100");
    expect(fmtNum(0.123456789)).toBe("0.123457");
    expect(fmtNum(0.00001)).toBe("1e-5");
  });
});
