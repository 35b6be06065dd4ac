// numberFormat: one format per column, on the vectors numbers.py is tested with too.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { formatCell, normalize, numberFormat } from "../../mlops_nb/static/runs_view.js";

const V = JSON.parse(readFileSync(new URL("../../tests/data/number_formats.json", import.meta.url), "utf8"));

describe("numberFormat", () => {
  for (const c of V.cases) {
    it(`formats ${JSON.stringify(c.values)} as one column`, () => {
      const f = numberFormat(c.values);
      const out = c.values.map((v) => (typeof v === "number" && f ? f(v) : null));
      expect(out).toEqual(c.out);
    });
  }

  it("is the table's format: a column of small and larger rates reads in one notation", () => {
    const t = normalize({ n: 2, columns: [{ key: "params.lr", label: "lr", kind: "param" }], data: { "params.lr": [5.91e-4, 0.00431678] } });
    const col = t.byKey.get("params.lr");
    expect(col.values.map((v) => formatCell(v, col))).toEqual(["5.91000e-4", "4.31678e-3"]);
  });
});
