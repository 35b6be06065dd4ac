"""A compact profile of tabular data: what validation and drift checks compare new data with.

Pure functions of a DataFrame, Series or array (no store, no IPython). Above `SAMPLE_ROWS` rows
the statistics come from a systematic sample whose size the profile states, so profiling a
million rows costs about what profiling twenty thousand does; the row count, and for numbers
the null count, are exact. Numbers keep 101 percentiles (enough to rebuild the distribution
for a Kolmogorov-Smirnov test, PSI bins and a small plot), categories their top values with
frequencies, bounded, and an estimate of their cardinality.
"""

from __future__ import annotations

import math
from typing import Any

PROFILE_VERSION = 1
SAMPLE_ROWS = 20_000
TOP_CATEGORIES = 20
MAX_COLUMNS = 200
MAX_LABEL = 80
HIGH_CARDINALITY = 0.5  # distinct/sampled above this: an identifier, not a category
PERCENTILES = tuple(range(101))


def _label(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:MAX_LABEL]


def _finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def column_kind(dtype: Any) -> str:
    """numeric, bool, datetime, categorical (strings, objects, category) or other."""
    import numpy as np
    import pandas as pd

    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if (isinstance(dtype, np.dtype) and dtype.kind in "OUS") or pd.api.types.is_string_dtype(dtype):
        return "categorical"
    return "other"


def sample_positions(n: int, size: int = SAMPLE_ROWS) -> Any:
    """Evenly spaced row positions: deterministic, cheap, and covering sorted data end to end."""
    import numpy as np

    if n <= size:
        return None
    return np.linspace(0, n - 1, size).astype(np.int64)


def numeric_stats(values: Any, full: Any | None = None) -> dict[str, Any]:
    """Statistics of a float array (NaN = missing); `full` gives the exact null count."""
    import numpy as np

    nulls_full = None
    lo_full = hi_full = None
    if full is not None and len(full) == 0:
        nulls_full = 0
    elif full is not None:
        # min and max propagate NaN: two fast passes, and only a column that has NaNs pays
        # for counting them and for the NaN-skipping extremes
        lo_full, hi_full = full.min(), full.max()
        if np.isnan(lo_full) or np.isnan(hi_full):
            nulls_full = int(np.count_nonzero(np.isnan(full)))
            lo_full = np.nanmin(full) if nulls_full != len(full) else None
            hi_full = np.nanmax(full) if nulls_full != len(full) else None
        else:
            nulls_full = 0
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"kind": "numeric"}
    n = len(values)
    nulls = int(np.count_nonzero(np.isnan(values)))
    out["nulls"] = nulls_full if nulls_full is not None else nulls
    out["null_fraction"] = (nulls_full / len(full) if full is not None and len(full)
                            else (nulls / n if n else 0.0))
    if finite.size != n - nulls:  # -inf, +inf: shares of the non-null values, which validate
        # compares (a column without them has no such key, as before)
        for key, count in (("neginf_fraction", np.count_nonzero(values == -np.inf)),
                           ("posinf_fraction", np.count_nonzero(values == np.inf))):
            if count:
                out[key] = int(count) / (n - nulls)
    if finite.size == 0:
        out.update(min=None, max=None, mean=None, std=None, percentiles=None, cardinality=0)
        return out
    # one sort, then the 101 percentiles by index (linear, as np.percentile's default):
    # np.percentile would partition once per percentile
    ordered = np.sort(finite)
    pos = np.asarray(PERCENTILES, dtype=float) / 100.0 * (ordered.size - 1)
    pct = np.interp(pos, np.arange(ordered.size), ordered)
    # the range is exact (values outside it are flagged later); the rest from the sample
    if full is None:
        lo_full, hi_full = ordered[0], ordered[-1]
    out["min"] = _finite(lo_full) if lo_full is not None else float(pct[0])
    out["max"] = _finite(hi_full) if hi_full is not None else float(pct[-1])
    if out["min"] is None or out["max"] is None:  # infinities: the finite sample's range
        out["min"], out["max"] = float(pct[0]), float(pct[-1])
    out["mean"] = _finite(finite.mean())
    out["std"] = _finite(finite.std(ddof=1)) if finite.size > 1 else 0.0
    out["percentiles"] = [float(x) for x in pct]
    # distinct values on a slice only: np.unique sorts, which would dominate the profile
    head = finite[:2000]
    out["cardinality"] = int(np.count_nonzero(np.diff(ordered)) + 1)
    out["integer"] = bool(np.all(np.floor(head) == head))
    return out


def categorical_stats(values: Any) -> dict[str, Any]:
    """Top categories with frequencies (over non-null values), cardinality, nulls."""
    import pandas as pd

    ser = pd.Series(values, copy=False)
    n = len(ser)
    counts = ser.value_counts(dropna=True, sort=True)
    nulls = n - int(counts.sum())
    non_null = n - nulls
    top = counts.iloc[:TOP_CATEGORIES]
    cardinality = len(counts)
    out: dict[str, Any] = {
        "kind": "categorical",
        "nulls": nulls,
        "null_fraction": nulls / n if n else 0.0,
        "cardinality": cardinality,
        "high_cardinality": bool(non_null and cardinality > TOP_CATEGORIES
                                 and cardinality / non_null > HIGH_CARDINALITY),
        "top": [[_label(k), int(v) / non_null] for k, v in top.items()] if non_null else [],
        "complete": cardinality <= TOP_CATEGORIES,
    }
    out["other_fraction"] = max(0.0, 1.0 - sum(f for _, f in out["top"])) if non_null else 0.0
    return out


def _column_profile(ser: Any, positions: Any) -> dict[str, Any]:
    import numpy as np

    dtype = ser.dtype
    kind = column_kind(dtype)
    if kind == "numeric":
        full = ser.to_numpy(dtype=np.float64, na_value=np.nan)
        sample = full if positions is None else full[positions]
        prof = numeric_stats(sample, full)
        if prof.get("integer") and prof.get("cardinality", 99) <= TOP_CATEGORIES:
            # a few distinct integers (a label, a count): compared as categories, not a CDF
            raw = (ser if positions is None else ser.take(positions)).to_numpy()
            cats = categorical_stats(raw)
            if cats["complete"]:
                prof.update(top=cats["top"], other_fraction=cats["other_fraction"],
                            discrete=True)
    elif kind in ("categorical", "bool"):
        # sample first: converting a million Arrow strings to objects costs more than the rest
        values = (ser if positions is None else ser.take(positions)).to_numpy()
        prof = categorical_stats(values)
        if kind == "bool":
            prof["kind"] = "bool"
    else:
        values = ser if positions is None else ser.iloc[positions]
        nulls = int(values.isna().sum())
        prof = {"kind": kind, "nulls": nulls,
                "null_fraction": nulls / len(values) if len(values) else 0.0}
        if kind == "datetime" and len(values) - nulls:
            prof["min"] = str(values.min())
            prof["max"] = str(values.max())
    prof["dtype"] = str(dtype)
    return prof


# What a profile may say about a column of credentials: how many, how often missing, how many
# distinct; never a value (a profile is stored, printed by `validate` and shown in reports).
_VALUE_FREE = frozenset({"kind", "nulls", "null_fraction", "cardinality", "high_cardinality",
                         "dtype", "integer"})


def _without_secrets(name: str, prof: dict[str, Any]) -> dict[str, Any]:
    """A `password` or `api_key` column keeps no values; any other column's top categories
    and range lose what has a secret's shape (a key pasted into a free-text column)."""
    from ..redact import REDACTED, has_secret_shape, is_secret_name

    if is_secret_name(name):
        return {**{k: v for k, v in prof.items() if k in _VALUE_FREE}, "redacted": True}
    if prof.get("top"):
        prof["top"] = [[REDACTED if has_secret_shape(label) else label, share]
                       for label, share in prof["top"]]
    for end in ("min", "max"):
        if isinstance(prof.get(end), str) and has_secret_shape(prof[end]):
            prof[end] = REDACTED
    return prof


def _as_frame(obj: Any) -> tuple[str, Any]:
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return "DataFrame", obj
    if isinstance(obj, pd.Series):
        name = obj.name if obj.name is not None else "value"
        return "Series", obj.to_frame(name=name)
    arr = np.asarray(obj)
    if arr.ndim == 1:
        return "ndarray", pd.DataFrame({"0": arr}, copy=False)
    if arr.ndim == 2:
        return "ndarray", pd.DataFrame(arr[:, :MAX_COLUMNS], copy=False,
                                       columns=[str(i) for i in range(min(arr.shape[1],
                                                                          MAX_COLUMNS))])
    raise TypeError(f"only 1-D and 2-D arrays are profiled, not {arr.ndim}-D")


def _numeric_array(obj: Any) -> Any:
    """`obj` when it is a plain 1-/2-D numpy array of numbers or bools, else None."""
    np = __import__("sys").modules.get("numpy")
    if np is None or type(obj) is not np.ndarray or obj.ndim not in (1, 2):
        return None
    return obj if obj.dtype.kind in "biuf" else None


def _array_categories(values: Any) -> dict[str, Any]:
    """categorical_stats of a numeric or bool array, with numpy alone (ties: smaller first)."""
    import numpy as np

    n = len(values)
    present = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    keys, counts = np.unique(present, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    nulls = n - int(counts.sum())
    non_null = n - nulls
    cardinality = len(keys)
    top = [[_label(keys[i].item()), int(counts[i]) / non_null]
           for i in order[:TOP_CATEGORIES]] if non_null else []
    out: dict[str, Any] = {
        "kind": "categorical", "nulls": nulls, "null_fraction": nulls / n if n else 0.0,
        "cardinality": cardinality,
        "high_cardinality": bool(non_null and cardinality > TOP_CATEGORIES
                                 and cardinality / non_null > HIGH_CARDINALITY),
        "top": top, "complete": cardinality <= TOP_CATEGORIES,
    }
    out["other_fraction"] = max(0.0, 1.0 - sum(f for _, f in top)) if non_null else 0.0
    return out


def _array_column(col: Any, positions: Any) -> dict[str, Any]:
    """_column_profile of one numeric or bool array column, without pandas."""
    import numpy as np

    if col.dtype.kind == "b":
        prof = _array_categories(col if positions is None else col[positions])
        prof["kind"] = "bool"
    else:
        full = col.astype(np.float64)
        prof = numeric_stats(full if positions is None else full[positions], full)
        if prof.get("integer") and prof.get("cardinality", 99) <= TOP_CATEGORIES:
            cats = _array_categories(col if positions is None else col[positions])
            if cats["complete"]:
                prof.update(top=cats["top"], other_fraction=cats["other_fraction"],
                            discrete=True)
    prof["dtype"] = str(col.dtype)
    return prof


def profile(obj: Any, *, sample_rows: int = SAMPLE_ROWS) -> dict[str, Any]:
    """The profile of a DataFrame, Series or 1-/2-D array (JSON-ready).

    A numeric numpy array is profiled with numpy alone: a notebook that never imports pandas
    (most scikit-learn examples) must not pay its import, a second of CPU, for being tracked.
    """
    arr = _numeric_array(obj)
    if arr is not None:
        n = arr.shape[0]
        positions = sample_positions(n, sample_rows)
        cols = [arr] if arr.ndim == 1 else [arr[:, i] for i in range(min(arr.shape[1],
                                                                          MAX_COLUMNS))]
        return {
            "version": PROFILE_VERSION, "type": "ndarray", "rows": n,
            "columns_total": len(cols), "sampled": positions is not None,
            "sample_rows": n if positions is None else len(positions),
            "columns": {str(i): _array_column(c, positions) for i, c in enumerate(cols)},
        }
    kind, df = _as_frame(obj)
    n = len(df)
    positions = sample_positions(n, sample_rows)
    columns: dict[str, Any] = {}
    names = [str(c) for c in df.columns[:MAX_COLUMNS]]
    if len(set(names)) != len(names):
        names = [f"{c}#{i}" if names.count(c) > 1 else c for i, c in enumerate(names)]
    # items() hands out each column without `iloc`'s indexing machinery (a few ms a column)
    for name, (_, ser) in zip(names, df.items(), strict=False):
        columns[name] = _without_secrets(name, _column_profile(ser, positions))
    return {
        "version": PROFILE_VERSION,
        "type": kind,
        "rows": n,
        "columns_total": int(df.shape[1]),
        "sampled": positions is not None,
        "sample_rows": n if positions is None else len(positions),
        "columns": columns,
    }
