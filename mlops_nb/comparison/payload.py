"""The compact JSON the runs view (`static/runs_view.js`) draws: columns, values, best, constants.

Shape (version 1), column-wise so 100,000 runs cost one list per column, not a dict per run:

    {"version": 1, "n": 3, "total": 3, "truncated": false,
     "columns": [{"key": "id", "label": "id", "kind": "id"},
                 {"key": "name", "label": "name", "kind": "name"},
                 {"key": "metrics.f1", "label": "f1", "kind": "metric", "goal": "max"},
                 {"key": "params.max_depth", "label": "max_depth", "kind": "param",
                  "sources": ["params.max_depth", "params.clf.max_depth"], "hidden": false}, ...],
     "data": {"id": ["9f2c...", ...], "params.max_depth": [8, null, null], ...},
     "nones": {"params.max_depth": [2]},      # rows whose value is None (null alone = not set)
     "name_auto": [true, true, false],        # names made up from model and parameters
     "metric": "metrics.f1", "goal": "max", "best": ["9f2c..."],
     "constant": {"random_state": 0}, "folded": {"clf.criterion": "gini"},
     "title": "...", "experiment": null}

Kinds: id, name, model, metric, param, info. `started_at` is ISO 8601 UTC text. The view also
accepts the row form of VIEW_CONTRACT.md (`rows: [{id, name, metrics: {}, params: {}}]`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .query import MISSING

if TYPE_CHECKING:
    from .model import Comparison

VERSION = 1
INFO = ("session", "notebook", "experiment", "started_at", "duration_s", "status", "data")
INFO_LABELS = {"started_at": "when", "duration_s": "duration"}
HIDDEN_INFO = ("experiment", "status", "data")


def columns_spec(cmp: Comparison) -> list[dict[str, Any]]:
    """Every column the view can show, in display order, with the ones hidden by default."""
    df = cmp.df
    cols: list[dict[str, Any]] = [{"key": "id", "label": "id", "kind": "id"},
                                  {"key": "name", "label": "name", "kind": "name"}]
    if "model" in df.columns:
        cols.append({"key": "model", "label": "model", "kind": "model"})
    metrics = [c for c in df.columns if c.startswith("metrics.")]
    if cmp.metric in metrics:
        metrics.remove(cmp.metric)
        metrics.insert(0, cmp.metric)
    for m in metrics:
        from .model import goal_for

        cols.append({"key": m, "label": m[len("metrics."):], "kind": "metric",
                     "goal": goal_for(m, cmp.goal if m == cmp.metric else None)})
    shown = set(cmp.plan.columns)
    ordered = list(cmp.plan.columns) + [k for k in cmp.plan.params if k not in shown]
    for key in ordered:
        p = cmp.plan.params[key]
        if not cmp.plan.present.get(key):
            continue
        cols.append({"key": key, "label": p.label, "kind": "param", "sources": list(p.sources),
                     "hidden": key not in shown, "notebook": p.from_notebook})
    for key in INFO:
        if key in df.columns:
            hidden = key in HIDDEN_INFO and not (key == "experiment" and df[key].nunique() > 1)
            cols.append({"key": key, "label": INFO_LABELS.get(key, key), "kind": "info",
                         "hidden": hidden})
    if cmp.verdicts or cmp.tied:  # "tied with best within noise" shows in the same column
        cols.append({"key": "verdict", "label": "verdict", "kind": "info"})
    # A parameter or metric named like another column (a loop's `name`, a `model` string)
    # says which it is, as the CLI's table does: two headers reading "name" were one too many.
    seen: dict[str, int] = {}
    for col in cols:
        seen[col["label"]] = seen.get(col["label"], 0) + 1
    for col in cols:
        if seen[col["label"]] > 1 and col["kind"] in ("param", "metric"):
            col["label"] = ("params." if col["kind"] == "param" else "metrics.") + col["label"]
    return cols


def _json_value(v: Any) -> Any:
    if v is MISSING or v is None:
        return None
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(v, (str, int, bool)):
        return v
    if hasattr(v, "item"):
        return _json_value(v.item())
    return repr(v) if not isinstance(v, str) else v


def _json_list(vals: list[Any]) -> list[Any]:
    """`_json_value` over a column, with the common plain values on a fast path."""
    out: list[Any] = []
    append = out.append
    for v in vals:
        t = type(v)
        plain = t is str or t is int or t is bool or (
            t is float and v == v and v not in (math.inf, -math.inf))
        append(v if plain else _json_value(v))
    return out


def build_payload(cmp: Comparison, *, limit: int | None = None, title: str = "",
                  experiment: str | None = None) -> dict[str, Any]:
    """The view's JSON for the runs in `cmp.view` order (every run, filters are the view's)."""
    import numpy as np

    df = cmp.df
    columns = columns_spec(cmp)
    positions = df.index.get_indexer(cmp.view.index)
    total = len(positions)
    truncated = limit is not None and total > limit
    if truncated:
        positions = positions[:limit]
    data: dict[str, list[Any]] = {}
    nones: dict[str, list[int]] = {}
    for col in columns:
        key = col["key"]
        p = cmp.plan.params.get(key) if col["kind"] == "param" else None
        if p is not None:
            data[key], hit = _coded_json(p.coded, positions)
            if hit:
                nones[key] = hit
        elif key == "verdict":
            data[key] = _verdicts_json(cmp, positions)
        elif key in df.columns and key != "started_at":
            data[key] = _series_json(df[key], positions)
        else:
            cells = cmp.cells(key)
            data[key] = _json_list([cells[i] for i in positions.tolist()])
    auto = df["name_auto"].to_numpy(dtype=bool) if "name_auto" in df.columns else \
        np.zeros(len(df), dtype=bool)
    return {
        "version": VERSION,
        "n": len(positions),
        "total": total,
        "truncated": truncated,
        "columns": columns,
        "data": data,
        "nones": nones,
        "name_auto": auto[positions].tolist(),
        "metric": cmp.metric,
        "goal": cmp.goal,
        "best": list(cmp.best),
        "constant": {k: _json_value(v) for k, v in cmp.plan.constant.items()},
        "folded": {k: _json_value(v) for k, v in cmp.plan.folded.items()},
        "title": title,
        "experiment": experiment,
    }


def _coded_json(coded: Any, positions: Any) -> tuple[list[Any], list[int]]:
    """A parameter's values (null where not set or None) and the rows set to None: each
    distinct value converted once, then gathered for every run."""
    import numpy as np

    from .identity import take

    codes = coded.codes[positions]
    values = take(_json_list(coded.uniques), codes, None)
    hit: list[int] = []
    if any(u is None for u in coded.uniques):
        none_code = next(k for k, u in enumerate(coded.uniques) if u is None)
        hit = np.flatnonzero(codes == none_code).tolist()
    return values, hit


def _series_json(col: Any, positions: Any) -> list[Any]:
    """A frame column's JSON values in `positions` order, column-wise where its dtype allows
    (numbers, text), the per-value rule of `_json_value` otherwise."""
    import numpy as np
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return col.to_numpy()[positions].tolist()
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        arr = col.to_numpy()[positions]
        if np.isfinite(arr).all():
            return arr.tolist()
        out = arr.astype(object)
        out[np.isnan(arr)] = None
        out[arr == math.inf] = "inf"
        out[arr == -math.inf] = "-inf"
        return out.tolist()
    taken = col.take(positions)
    present = taken.notna().to_numpy()
    if pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, np.dtype):
        vals = taken.to_numpy(dtype=object, copy=True)  # text, and NA where missing
        if not present.all():
            vals[~present] = None
        return vals.tolist()
    vals = taken.to_numpy(dtype=object, copy=True)
    if not present.all():
        vals[~present] = None
    if pd.api.types.infer_dtype(vals, skipna=True) in ("string", "empty"):
        return vals.tolist()  # text and None only (the names): nothing to convert
    return _json_list(vals.tolist())


def _verdicts_json(cmp: Comparison, positions: Any) -> list[Any]:
    texts = {rid: cmp.verdict_text(rid) or None for rid in {*cmp.verdicts, *cmp.tied}}
    ids = cmp.cells("id")
    return [texts.get(ids[i]) for i in positions.tolist()]


def payload_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The payload in the row form of the view contract (for hosts that want rows)."""
    cols = payload["columns"]
    data = payload["data"]
    nones = {k: set(v) for k, v in payload.get("nones", {}).items()}
    out: list[dict[str, Any]] = []
    for i in range(payload["n"]):
        row: dict[str, Any] = {"params": {}, "metrics": {}}
        for col in cols:
            key, v = col["key"], data[col["key"]][i]
            if col["kind"] == "param":
                if v is not None or i in nones.get(key, ()):
                    row["params"][key[len("params."):]] = v
            elif col["kind"] == "metric":
                if v is not None:
                    row["metrics"][key[len("metrics."):]] = v
            else:
                row[key] = v
        row["short_id"] = str(row.get("id", ""))[:8]
        out.append(row)
    return out
