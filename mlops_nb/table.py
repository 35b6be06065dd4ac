"""The runs table: store columns to a pandas DataFrame, with MLflow-style column names.

`params.*` and `metrics.*` follow MLflow's `search_runs`, so a team moving between the two reads
the same table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .comparison.numbers import coerce_numbers
from .metrics import resolve_goal
from .records import STATUS_OK

if TYPE_CHECKING:
    import pandas as pd

    from .store.reader import RunColumns


def runs_frame(cols: RunColumns) -> pd.DataFrame:
    """The runs as a DataFrame, oldest first. Typed columns from the store's index become
    numpy-backed columns directly; lists (MLflow's runs) are inferred. Both give one frame for
    one content: `tests/test_columnar.py` holds them equal."""
    from .store.reader import _gc_paused

    with _gc_paused():
        return _runs_frame(cols)


def _runs_frame(cols: RunColumns) -> pd.DataFrame:
    import pandas as pd

    data: dict[str, Any] = dict(cols.typed) if cols.typed is not None else dict(cols.cols)
    # Which parameters a run set to None (the columns hold None for "not set" as well).
    nones = _as_list(data.pop("params_none", None))
    ids = _as_list(data.get("id")) or []
    base = [c for c in data if not c.startswith(("params.", "metrics."))]
    params = [c for c in data if c.startswith("params.")]
    metrics = [c for c in data if c.startswith("metrics.")]
    # pd.array keeps ints as ints next to missing values (Int64, not 3.0) and bools as bools.
    columns = {c: _plain(data[c]) for c in base}
    for c in params:
        columns[c] = _param_array(data[c])
    for c in metrics:
        columns[c] = _plain(data[c])
    try:
        df = pd.DataFrame(columns)
    except UnicodeEncodeError:
        df = _object_text_frame(columns)
    if len(df):
        df["started_at"] = pd.to_datetime(df["started_at"], unit="s", utc=True)
        for c in metrics:
            if df[c].dtype.kind in "fiu":
                continue  # numbers already
            converted = coerce_numbers(df[c])
            if converted.notna().sum() == df[c].notna().sum():
                df[c] = converted
        if not _chronological(df):
            df = df.sort_values(["started_at", "seq"], kind="stable").reset_index(drop=True)
    else:
        df["started_at"] = pd.Series([], dtype="datetime64[ns, UTC]")
    df.attrs["problems"] = [str(p) for p in cols.problems]
    if nones is not None:
        # {run id: names set to None}; runs that set none map to None or are absent.
        df.attrs["params_none"] = SharedAttr(zip(ids, nones, strict=False))
    return df


def _as_list(col: Any) -> list[Any] | None:
    if col is None or isinstance(col, list):
        return col
    return col.tolist()


def _plain(col: Any) -> Any:
    """A base or metric column as the DataFrame constructor would make it of the list: int64
    (float64 with NaN when some runs lack it), float64, or the values to infer from."""
    import numpy as np

    from .store.columnar import F8, I8, OBJ, STR

    if isinstance(col, list):
        return col
    if col.kind == I8:
        if col.mask is None or col.mask.all():
            return col.values
        out = col.values.astype(np.float64)
        out[~col.mask] = np.nan
        return out
    if col.kind == F8:
        if col.mask is None:
            return col.values
        out = col.values.copy()
        out[~col.mask] = np.nan
        return out
    if col.kind == STR:
        return _strings(col, _BASE_STR)
    if col.kind == OBJ and _surely_objects(col):
        return col.values  # mixed values: an object column, as from the list
    return col.tolist()


def _surely_objects(col: Any) -> bool:
    """Whether pandas infers an object column from this column's list, judged from its
    distinct values: lists or dicts, or text or bools mixed with other types. Anything
    subtler (ints beyond int64, ints with floats) goes through pandas' own inference."""
    import numpy as np

    if col.table is None:
        return False
    used = np.unique(col.codes[col.codes >= 0])  # a filtered column may not use them all
    types = {type(v) for v in col.table[used].tolist() if v is not None}
    if types & {list, dict}:
        return True
    return len(types) > 1 and bool(types & {str, bool})


_BASE_STR = "base"
_PARAM_STR = "param"


def _strings(col: Any, role: str) -> Any:
    """A text column as pandas would infer it from the list (`str` for base columns, `string`
    for parameters), built from the column's distinct values and codes: through Arrow when
    pandas stores text in Arrow, without a Python object per row."""
    import pandas as pd

    dtype = pd.Series(["a"]).dtype if role == _BASE_STR else pd.array(["a"]).dtype
    if getattr(dtype, "storage", None) == "pyarrow" and col.table is not None:
        import pyarrow as pa  # pandas stores text in Arrow: it is installed and imported

        try:
            uniques = pa.array(col.table[:-1].tolist(), pa.large_string())
        except (UnicodeEncodeError, pa.ArrowException):
            return col.tolist()  # a lone surrogate: the frame falls back to Python objects
        codes = col.codes
        return pd.array(uniques.take(pa.array(codes, mask=codes < 0)), dtype=dtype)
    return col.tolist()


def _chronological(df: pd.DataFrame) -> bool:
    """Whether the rows are already in (started_at, seq) order, as segments mostly are: the
    sort is then skipped (a stable sort of sorted rows is the identity)."""
    import numpy as np

    t = df["started_at"]
    seq = df["seq"]
    if t.isna().any() or seq.dtype.kind not in "iu":
        return False
    tv = t.to_numpy(dtype="datetime64[ns]").view(np.int64)
    sv = seq.to_numpy()
    step = np.diff(tv)
    return bool(((step > 0) | ((step == 0) & (np.diff(sv) >= 0))).all())


class SharedAttr(dict):  # type: ignore[type-arg]
    """A `DataFrame.attrs` value pandas need not copy: it deep-copies attrs on every column
    access, which for a dict over 100,000 runs costs more than the access itself."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedAttr:
        return self


def _object_text_frame(columns: dict[str, Any]) -> pd.DataFrame:
    """The frame with text kept as Python str where pandas' arrow strings refuse it.

    Arrow strings reject lone surrogates, which is what `os.fsdecode` makes of a non-UTF-8 byte
    in a file name: one such name or value must not make every run unlistable.
    """
    import pandas as pd

    def column(values: Any) -> Any:
        try:
            return pd.Series(values)
        except UnicodeEncodeError:
            return pd.Series(list(values), dtype=object)

    df = pd.DataFrame({i: column(v) for i, v in enumerate(columns.values())})
    df.columns = pd.Index(list(columns), dtype=object)
    return df


def metric_column(df: pd.DataFrame, metric: str) -> str:
    """Accept `f1` or `metrics.f1`; raise a clear error for a metric no run has."""
    from .errors import MlopsNbError

    col = metric if metric.startswith("metrics.") else f"metrics.{metric}"
    if col not in df.columns:
        from .metrics import unknown_metric

        known = [c.removeprefix("metrics.") for c in df.columns if c.startswith("metrics.")]
        raise MlopsNbError(unknown_metric(metric.removeprefix("metrics."), known))
    return col


def sort_runs(df: pd.DataFrame, metric: str, goal: str | None = None) -> pd.DataFrame:
    """Best first: descending unless the metric is a loss/error or `goal='min'`.

    Values that are not numbers (a metric logged as "high" is kept, with a warning) sort last
    with the missing ones instead of making the comparison fail.
    """

    col = metric_column(df, metric)
    goal = resolve_goal(col, goal)
    return df.sort_values(col, ascending=(goal == "min"), na_position="last", kind="stable",
                          key=coerce_numbers)


def _param_array(values: Any) -> Any:
    import numpy as np
    import pandas as pd

    from .store.columnar import B1, F8, I8, OBJ, STR

    if not isinstance(values, list):
        col = values
        unset = np.zeros(len(col), dtype=bool) if col.mask is None else ~col.mask
        if col.kind == I8:
            return pd.arrays.IntegerArray(col.values.copy(), unset)
        if col.kind == F8:
            return pd.arrays.FloatingArray(col.values.copy(), unset | np.isnan(col.values))
        if col.kind == B1:
            return pd.arrays.BooleanArray(col.values.copy(), unset)
        if col.kind == STR:
            got = _strings(col, _PARAM_STR)
            if not isinstance(got, list):
                return got
        if col.kind == OBJ and _surely_objects(col):
            return pd.arrays.NumpyExtensionArray(col.values)
        values = col.tolist()
    try:
        return pd.array(values)
    except (TypeError, ValueError):
        return pd.array(values, dtype=object)


def compact_runs(cmp: Any, *, limit: int | None = None) -> pd.DataFrame:
    """The runs as a person reads them: short id, name, model, metrics, the parameters that
    differ, when. `cmp` is a `compare.model.Comparison`; rows in its view order."""
    from .comparison.model import metric_columns

    view = cmp.view if limit is None else cmp.view.head(limit)
    out = view[["id"]].copy()
    out["id"] = out["id"].str[:8]
    out["name"] = view["name"]
    if "model" in view.columns and view["model"].notna().any():
        out["model"] = view["model"]
    if "experiment" in view.columns and view["experiment"].nunique() > 1:
        out["experiment"] = view["experiment"]  # runs of several experiments side by side
    if "status" in view.columns and (view["status"].notna() & (view["status"] != STATUS_OK)
                                     ).any():
        out["status"] = view["status"]  # a run whose cell raised says so
    metrics = metric_columns(cmp.df)
    if cmp.metric in metrics:
        metrics.remove(cmp.metric)
        metrics.insert(0, cmp.metric)
    for col in metrics:
        out[col.removeprefix("metrics.")] = view[col]
    for col in cmp.plan.columns:
        label = col.removeprefix("params.")
        values = cmp.cells(col)
        rows = cmp.df.index.get_indexer(view.index)
        out[label if label not in out.columns else col] = [_cell(values[i]) for i in rows]
    if len(view):
        out["when"] = view["started_at"].dt.tz_convert(_local_tz()).dt.strftime("%Y-%m-%d %H:%M")
    out.index = range(1, len(out) + 1)
    out.attrs["constant"] = dict(cmp.plan.constant)
    return out


def _cell(value: Any) -> Any:
    from .comparison.query import MISSING

    if value is MISSING:
        return "—"
    return "None" if value is None else value


def _local_tz() -> Any:
    import datetime as dt

    return dt.datetime.now().astimezone().tzinfo


def constants_line(constant: dict[str, Any], shown: int = 12) -> str:
    """`same for all runs: seed=0, test_size=0.2`; '' when there are none."""
    if not constant:
        return ""
    items = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in constant.items()]
    more = f", and {len(items) - shown} more" if len(items) > shown else ""
    return "same for all runs: " + ", ".join(items[:shown]) + more
