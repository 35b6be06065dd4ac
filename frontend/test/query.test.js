// The filter language of the runs view must parse and match exactly like query.py: both read
// the same vectors.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileQuery, normalize, parseQuery, QueryError } from "../../mlops_nb/static/runs_view.js";

const V = JSON.parse(readFileSync(new URL("../../tests/data/query_vectors.json", import.meta.url), "utf8"));

describe("parse vectors", () => {
  for (const c of V.parse) {
    it(JSON.stringify(c.query), () => {
      if (c.error !== undefined) {
        expect(() => parseQuery(c.query)).toThrow(QueryError);
        expect(() => parseQuery(c.query)).toThrow(c.error);
      } else {
        expect(parseQuery(c.query)).toEqual(c.terms);
      }
    });
  }
});

describe("match vectors", () => {
  const table = normalize({ columns: V.columns, rows: V.rows });
  const get = (i, key) => table.byKey.get(key)?.values[i];
  const ids = table.byKey.get("id").values;
  for (const c of V.match) {
    it(JSON.stringify(c.query), () => {
      if (c.error !== undefined) {
        let message = null;
        try { compileQuery(c.query, table.columns, get); } catch (e) { message = e.message; }
        expect(message).toBe(c.error);
      } else {
        const pred = compileQuery(c.query, table.columns, get);
        expect(ids.filter((_, i) => pred(i))).toEqual(c.ids);
      }
    });
  }
});

it("never throws anything but QueryError on random text", () => {
  const alphabet = ` =!<>~"'\\.0123456789eE-+abcNone_`;
  let seed = 7;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  for (let k = 0; k < 3000; k++) {
    let q = "";
    const n = Math.floor(rand() * 14);
    for (let j = 0; j < n; j++) q += alphabet[Math.floor(rand() * alphabet.length)];
    try { parseQuery(q); } catch (e) { expect(e).toBeInstanceOf(QueryError); }
  }
});
