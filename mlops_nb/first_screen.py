"""`mlops-nb runs`' default table without pandas: the newest runs straight from the index.

The compact table (`table.compact_runs` over a `comparison.Comparison`, printed with pandas'
`to_string`) needs pandas, whose import alone costs more CPU than reading the newest 20 runs of
a 100,000-run store. For the first screen, where nothing sorts or filters, this builds the same
table from the index's columns (`store.reader.RunColumns`) with the same pure planning
(`comparison.identity`: which parameters vary, default names) and prints it with
`textframe`, which follows pandas' formatting. Whatever this cannot promise to print exactly as
pandas would (lists as cell values, mixed metric columns, undecodable text...) raises
`textframe.NotPlain`, and the caller takes the pandas path: same text, slower.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from .comparison.identity import (
    PARAM,
    Coded,
    merge_coded,
    merge_params,
    model_groups,
    names_for,
    plan_of,
)
from .comparison.query import MISSING
from .records import STATUS_OK
from .store.columnar import B1, F8, I8, OBJ, STR, Column
from .store.reader import RunColumns
from .textframe import FLOAT, INT, OBJECT, TEXT, NotPlain, TextColumn, kind_of_list, to_string

METRIC = "metrics."


def compact_text(cols: RunColumns, limit: int, *, printable: Any, short_value: Any,
                 unique_prefixes: Any, column_cells: Any,
                 whole: RunColumns | None = None) -> tuple[str, int]:
    """The table `cli._table_text` prints for the newest `limit` runs of `cols` (of
    `cols.total` in all), and how many it shows. `printable`, `short_value` and
    `unique_prefixes` and `column_cells` are the CLI's own helpers, so both paths escape,
    format numbers and abbreviate alike.
    `whole` (every run of the experiment) names the runs shown as the whole experiment
    names them, so `-n 2` does not rename a run."""
    from .table import constants_line

    if not cols.n or cols.typed is None:
        raise NotPlain("no typed columns")
    typed = cols.typed
    n = len(typed["id"])
    order = _chronological_order(typed, n)[-limit:] if limit else []
    if not order:
        raise NotPlain("no rows shown")  # the pandas path words the empty table
    lists = {k: _rows(c, order) for k, c in typed.items()}
    ids = lists["id"]
    nones = lists.get("params_none") or [None] * len(order)
    param_cols = [k for k in lists if k.startswith(PARAM)]
    values = {k: _param_values(typed[k], lists[k], nones, k[len(PARAM):]) for k in param_cols}
    plan = plan_of(merge_params(param_cols, values), len(order))
    explicit = lists.get("name") or [None] * len(order)
    models = lists.get("model") or [None] * len(order)
    names, auto = names_for(explicit, models, ids, plan)
    if whole is not None and cols.total > len(order):
        known = whole_names(whole, [str(i) for i in ids])
        names = [known.get(rid, nm) if made else nm
                 for rid, nm, made in zip(ids, names, auto, strict=True)]

    shown: dict[str, TextColumn] = {}

    def put(label: str, col_values: list[Any], kind: str) -> None:
        shown[label] = TextColumn(label, col_values, kind)  # replaces a same-named column

    put("id", [str(i)[:8] for i in ids], TEXT)
    put("name", names, OBJECT)
    for base in ("model", "experiment", "status"):
        if base in lists:
            _base_text(typed[base], lists[base])
    if "model" in lists and any(m is not None for m in lists["model"]):
        put("model", lists["model"], TEXT)
    if "experiment" in lists and len({e for e in lists["experiment"] if e is not None}) > 1:
        put("experiment", lists["experiment"], TEXT)
    if "status" in lists and any(s not in (None, STATUS_OK) for s in lists["status"]):
        put("status", lists["status"], TEXT)  # a run whose cell raised says so
    metrics = [k for k in lists if k.startswith(METRIC)]
    chosen = _default_metric(metrics, lists)
    if chosen is not None:
        metrics.remove(chosen)
        metrics.insert(0, chosen)
    for col in metrics:
        col_values, kind = _metric(typed[col], lists[col])
        put(col[len(METRIC):], col_values, kind)
    for key in plan.columns:
        label = key[len(PARAM):]
        cells = [_cell(v) for v in plan.params[key].values]
        put(label if label not in shown else key, cells, kind_of_list(cells))
    put("when", _when(lists["started_at"]), TEXT)
    put("id", unique_prefixes([str(i) for i in ids]), TEXT)

    table = []
    for c in shown.values():
        cells = column_cells(c.label, [_frame_cell(v, c.kind) for v in c.values])
        table.append(TextColumn(printable(c.label), cells, kind_of_list(cells)))
    text = to_string(table, max_colwidth=None)
    line = constants_line({printable(k): printable(short_value(v)) if isinstance(v, str)
                           else v for k, v in plan.constant.items()})
    if cols.total > len(order):  # only some runs are shown: what they share
        line = line.replace("same for all runs:", "same for all runs shown:", 1)
    return ((printable(line) + "\n" + text) if line else text), len(order)


def _frame_cell(value: Any, kind: str) -> Any:
    """A value as `tolist()` of the frame's column of `kind` gives it back: the pandas path
    formats what it reads from the frame."""
    if value is None and kind in (FLOAT, INT, TEXT):
        return float("nan")
    return value


def whole_names(cols: RunColumns, wanted: list[str]) -> dict[str, str]:
    """Made-up names of the runs `wanted` lists as every run in `cols` names them, by id
    (`identity.names_by_id` without a frame). Each parameter column is coded from the index's
    own dictionary or with `numpy.unique`, so 100,000 runs cost numpy work, not a Python step
    per run and column."""
    typed = cols.typed
    if typed is None:
        raise NotPlain("no typed columns")
    n = len(typed["id"])
    nones = typed["params_none"].tolist() if "params_none" in typed else None
    none_rows: dict[str, list[int]] = {}
    for i, names in enumerate(nones or ()):
        for name in names or ():
            none_rows.setdefault(name, []).append(i)
    param_cols = [k for k in typed if k.startswith(PARAM)]
    coded = {k: _coded(typed[k], k[len(PARAM):], none_rows.get(k[len(PARAM):], []), n)
             for k in param_cols}
    plan = plan_of(merge_coded(param_cols, coded), n)
    ids = typed["id"].tolist()
    models = typed["model"].tolist() if "model" in typed else [None] * n
    pos = {rid: i for i, rid in enumerate(ids)}
    rows = [i for rid in wanted if (i := pos.get(rid)) is not None]
    made, auto = names_for(typed["name"].tolist() if "name" in typed else [None] * n,
                           models, ids, plan, groups=_model_groups_of(typed.get("model"), n),
                           only=rows)
    return {ids[i]: made[i] for i in rows if auto[i]}


def _model_groups_of(col: Column | None, n: int) -> tuple[Any, list[str | None]] | None:
    """`identity.model_groups` from a text column's own dictionary: one code per run is
    already there (None: the caller groups the values itself)."""

    if col is None or col.kind != STR or col.table is None or col.codes is None:
        return None
    per_entry, heads = model_groups(col.table.tolist())  # last entry None: no model
    return per_entry[col.codes], heads


def _coded(col: Column, name: str, none_rows: list[int], n: int) -> Coded:
    """Column `col` as `Coded.from_values(_param_values(...))` would code it."""
    import numpy as np

    if col.kind in (STR, OBJ) and col.table is not None and col.codes is not None:
        entries = col.table.tolist()[:-1]  # the last entry is None: unset rows
        converted = _param_values(col, entries, [None] * len(entries), name)
        per_entry = Coded.from_values([*converted, MISSING])  # code -1 reads the last: unset
        codes, uniques = per_entry.codes[col.codes], per_entry.uniques
    elif col.kind in (I8, F8, B1):
        values = col.values
        mask = col.is_set()
        if col.kind == F8:
            mask = mask & ~np.isnan(values)
        found, inverse = np.unique(values[mask], return_inverse=True)
        codes = np.full(n, -1, dtype=np.int64)
        codes[mask] = inverse
        uniques = found.tolist()
        if col.kind != B1:
            return _with_nones(Coded(codes, uniques, found), none_rows)
    else:
        return _with_nones(Coded.from_values(
            _param_values(col, col.tolist(), [None] * n, name)), none_rows)
    return _with_nones(Coded(codes, uniques), none_rows)


def _with_nones(coded: Coded, rows: list[int]) -> Coded:
    """Runs that set the parameter to None get a code of their own (`params_none`)."""
    if rows:
        coded.codes[rows] = len(coded.uniques)
        coded.uniques.append(None)
    return coded


def _chronological_order(typed: dict[str, Column], n: int) -> list[int]:
    """Rows by (started_at, seq), as the frame sorts them (stably)."""
    started, seq = typed.get("started_at"), typed.get("seq")
    if started is None or seq is None or started.kind != F8 or seq.kind != I8:
        raise NotPlain("no typed order columns")
    if not (started.is_set().all() and seq.is_set().all()):
        raise NotPlain("a run without a start time or seq")
    t = started.values.tolist()
    s = seq.values.tolist()
    if any(v != v for v in t):
        raise NotPlain("a NaN start time")
    return sorted(range(n), key=lambda i: (t[i], s[i]))


def _rows(col: Column, order: list[int]) -> list[Any]:
    values = col.tolist()
    return [values[i] for i in order]


def _base_text(col: Column, values: list[Any]) -> None:
    """A text column the frame holds as Arrow strings: only text (or unset), encodable."""
    if col.kind != STR:
        if all(v is None for v in values):
            return
        raise NotPlain("a base column of mixed values")
    for v in values:
        if v is not None:
            _encodable(v)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NotPlain("a lone surrogate: the frame keeps Python strings") from None


def _param_values(col: Column, values: list[Any], nones: list[Any], name: str) -> list[Any]:
    """A parameter column as `identity.column_values` reads it from the frame: MISSING where
    unset (NaN too: the frame's masked arrays hold it as NA), None where set to None."""
    kind = col.kind
    if kind == OBJ:
        types = {type(v) for v in values if v is not None}
        if types & {list, dict} or (len(types) > 1 and types & {str, bool}):
            kind = OBJ  # an object column: values as they are
        elif types <= {int}:
            kind = I8
        elif types <= {int, float}:
            values = [None if v is None else float(v) for v in values]
            kind = F8
        elif types == {bool}:
            kind = B1
        elif types == {str}:
            kind = STR
        else:
            raise NotPlain("a parameter pandas would infer otherwise")
    out: list[Any] = []
    for v, set_none in zip(values, nones, strict=True):
        if set_none and name in set_none:
            out.append(None)
        elif v is None or (type(v) is float and v != v):
            out.append(MISSING)
        else:
            if kind == STR:
                _encodable(v)
            elif kind == I8 and not -(1 << 63) <= v < (1 << 63):
                raise NotPlain("an int beyond int64")
            out.append(v)
    return out


def _default_metric(metrics: list[str], lists: dict[str, list[Any]]) -> str | None:
    """The metric most runs have, first in column order on a tie (`model.default_metric`)."""
    best: tuple[int, str] | None = None
    for col in metrics:
        count = sum(1 for v in lists[col] if v is not None and not (type(v) is float and v != v))
        if best is None or count > best[0]:
            best = (count, col)
    return best[1] if best else None


def _metric(col: Column, values: list[Any]) -> tuple[list[Any], str]:
    """A metric column as the frame holds it: int64 when every run has it, else float64."""
    if col.kind == I8 and all(v is not None for v in values):
        return values, INT
    if col.kind in (I8, F8):
        return [math.nan if v is None else float(v) for v in values], FLOAT
    raise NotPlain("a metric column of mixed values")


def _cell(value: Any) -> Any:
    if value is MISSING:
        return "—"
    return "None" if value is None else value


def _when(started: list[Any]) -> list[str]:
    """`started_at` as the table's `when`: local time (the offset now, as `table._local_tz`),
    to the minute; whole seconds as pandas' nanoseconds round them."""
    from .table import _local_tz

    tz = _local_tz()
    out = []
    for t in started:
        sec = math.floor(t)
        if round((t - sec) * 1e9) >= 1_000_000_000:
            sec += 1
        out.append(dt.datetime.fromtimestamp(sec, tz).strftime("%Y-%m-%d %H:%M"))
    return out
