"""The comparison model: which runs, which columns vary, sort, filter, best, diff.

Plain functions over the runs DataFrame (`mnb.runs()`), so the widget, the HTML report and the
CLI share one behaviour and it is tested without any widget. Nothing here draws or renders HTML.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MlopsNbError
from ..metrics import best_positions, resolve_goal
from .numbers import coerce_numbers

if TYPE_CHECKING:
    import pandas as pd

    from ..records import CellRun
    from ..store.reader import StoreReader

PARAM = "params."
METRIC = "metrics."
VERDICT = "verdict"

# A query token: `name=value`, `name!=value`, `name>=1e-3`, `name<5`, or free text.
_COMPARISON = re.compile(r"^(?P<name>[^=<>!]+?)\s*(?P<op>!=|>=|<=|=|>|<)\s*(?P<value>.*)$")


# -- columns --------------------------------------------------------------------------------------
def param_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith(PARAM)]


def metric_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith(METRIC)]


def short(col: str) -> str:
    """`params.max_depth` -> `max_depth`; other columns unchanged."""
    for prefix in (PARAM, METRIC):
        if col.startswith(prefix):
            return col[len(prefix):]
    return col


def _hashable(series: pd.Series) -> pd.Series:
    """Values as something `nunique`/`==` can take: lists and dicts as their repr."""
    if series.dtype != object:
        return series
    import pandas as pd

    # Built as object dtype: letting pandas infer an Arrow string column would reject the lone
    # surrogates a non-UTF-8 file name decodes to.
    return pd.Series(
        [v if v is None or isinstance(v, (str, int, float, bool)) else repr(v) for v in series],
        index=series.index, dtype=object,
    )


@dataclass
class ParamSplit:
    """Parameters that differ between runs, and those the runs share (with their value).

    A parameter with one value wherever it is set but missing in some runs (the
    hyper-parameters of one model family, when several are compared) is not "varying": it
    goes with the constants, and `present` says in how many runs it is set.
    """

    varying: list[str]
    constant: dict[str, Any]
    present: dict[str, int] = field(default_factory=dict)


def split_params(df: pd.DataFrame) -> ParamSplit:
    """A parameter varies when two runs set it to different values."""
    varying: list[str] = []
    constant: dict[str, Any] = {}
    present: dict[str, int] = {}
    for col in param_columns(df):
        values = _hashable(df[col])
        if not len(df):
            continue
        if values.nunique(dropna=True) > 1:
            varying.append(col)
            continue
        set_in = values.notna()
        first = df[col][set_in].iloc[0] if set_in.any() else None
        constant[col] = None if _is_missing(first) else first
        present[col] = int(set_in.sum())
    return ParamSplit(varying, constant, present)


def default_metric(df: pd.DataFrame) -> str | None:
    """The metric most runs have (first in column order on a tie), or None without metrics."""
    best: tuple[int, str] | None = None
    for col in metric_columns(df):
        n = int(df[col].notna().sum())
        if best is None or n > best[0]:
            best = (n, col)
    return best[1] if best else None


def resolve_metric(df: pd.DataFrame, metric: str | None) -> str | None:
    """`f1` or `metrics.f1` -> `metrics.f1`; None picks `default_metric`."""
    from ..table import metric_column

    return default_metric(df) if metric is None else metric_column(df, metric)


def goal_for(metric_col: str | None, goal: str | None = None) -> str:
    """'min' or 'max': as given, else from the metric's name (losses and errors are 'min')."""
    if metric_col is None and goal is None:
        return "max"
    return resolve_goal(metric_col or "", goal)


def numeric(series: pd.Series) -> pd.Series:
    return coerce_numbers(series).astype("float64")


# -- sort and filter ------------------------------------------------------------------------------
def sort_runs(df: pd.DataFrame, column: str, *, ascending: bool = True) -> pd.DataFrame:
    """Stable sort by any column; missing values always last, whatever the direction.

    Mixed-type columns (a parameter that is 3 in one run and "auto" in another) sort numbers
    first, then the rest by their text.
    """
    if column not in df.columns:
        raise MlopsNbError(f"no column {column!r} to sort by")
    col = df[column]
    if col.dtype == object:
        nums = numeric(col)
        text = col.map(lambda v: None if _is_missing(v) else str(v))
        keyed = df.assign(__n=nums, __t=text)
        # Numbers first, then text; rows with neither (missing) come last in both directions.
        keyed = keyed.sort_values(["__n", "__t"], ascending=ascending, na_position="last",
                                  kind="stable")
        return keyed.drop(columns=["__n", "__t"])
    return df.sort_values(column, ascending=ascending, na_position="last", kind="stable")


def search_text(df: pd.DataFrame) -> pd.Series:
    """Per run, the lowercase text `name=value ...` of its parameters (and name, notebook)."""
    import pandas as pd

    parts = [df[c].map(lambda v: "" if _is_missing(v) else str(v)).str.lower()
             for c in ("name", "notebook") if c in df.columns]
    for col in param_columns(df):
        name = short(col).lower()
        vals = df[col].map(lambda v, name=name: "" if _is_missing(v) else f"{name}={v}".lower())
        parts.append(vals)
    if not parts:
        return pd.Series([""] * len(df), index=df.index, dtype=object)
    out = parts[0]
    for p in parts[1:]:
        out = out + " " + p
    return out


@dataclass
class Filter:
    """What the user narrowed the runs to: a text query and a metric range (bounds inclusive)."""

    query: str = ""
    metric: str | None = None
    low: float | None = None
    high: float | None = None


def filter_mask(df: pd.DataFrame, flt: Filter, text: pd.Series | None = None) -> pd.Series:
    """Rows matching every token of the query and inside the metric range.

    Query tokens are separated by spaces and all must match: free text matches anywhere in
    the parameters (`rf`, `depth=3`), `name=value` / `name!=value` compare text exactly, and
    `name>v`, `name>=v`, `name<v`, `name<=v` compare numbers.
    """
    import pandas as pd

    mask = pd.Series(True, index=df.index)
    for token in flt.query.split():
        m = _COMPARISON.match(token)
        col = _param_col(df, m["name"]) if m else None
        if m and col is not None:
            mask &= _compare(df[col], m["op"], m["value"])
            continue
        if text is None:
            text = search_text(df)
        mask &= text.str.contains(token.lower(), regex=False)
    if flt.metric is not None and (flt.low is not None or flt.high is not None):
        if flt.metric not in df.columns:
            raise MlopsNbError(f"no metric {short(flt.metric)!r} to filter on")
        vals = numeric(df[flt.metric])
        if flt.low is not None:
            mask &= vals >= flt.low
        if flt.high is not None:
            mask &= vals <= flt.high
    return mask


def filter_runs(df: pd.DataFrame, flt: Filter) -> pd.DataFrame:
    return df[filter_mask(df, flt)]


def _param_col(df: pd.DataFrame, name: str) -> str | None:
    name = name.strip()
    for col in (PARAM + name, name):
        if col in df.columns:
            return col
    lowered = name.lower()
    for col in param_columns(df):
        if short(col).lower() == lowered:
            return col
    return None


def _compare(series: pd.Series, op: str, raw: str) -> pd.Series:
    if op in ("=", "!="):
        text = series.map(lambda v: None if _is_missing(v) else str(v).lower())
        number = _as_float(raw)
        eq = text == raw.lower()
        if number is not None:
            eq |= numeric(series) == number
        eq = eq.fillna(False).astype(bool)
        return eq if op == "=" else ~eq
    number = _as_float(raw)
    if number is None:
        raise MlopsNbError(f"{raw!r} is not a number to compare with {op}")
    vals = numeric(series)
    result = {">": vals > number, ">=": vals >= number, "<": vals < number,
              "<=": vals <= number}[op]
    return result.fillna(False).astype(bool)


def _as_float(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(v)) if not isinstance(v, (list, tuple, dict, set)) else False
    except (TypeError, ValueError):
        return False


# -- best -----------------------------------------------------------------------------------------
def best_runs(df: pd.DataFrame, metric: str | None, goal: str | None = None) -> list[str]:
    """Ids of the best run(s) by `metric`: every run tied at the best value, oldest first.

    NaN, infinite-but-wrong-way and non-numeric values never win; no finite value -> [].
    """
    if metric is None or metric not in df.columns or not len(df):
        return []
    col = df[metric]
    goal = goal_for(metric, goal)
    if col.dtype.kind in "fiu" and str(col.dtype) in ("float64", "int64", "float32"):
        import numpy as np  # a plain numeric column: the same rule, without a loop per run

        values = col.to_numpy(dtype=np.float64)
        if np.isnan(values).all():
            return []
        top = np.nanmax(values) if goal == "max" else np.nanmin(values)
        positions = np.flatnonzero(values == top).tolist()
    else:
        positions = best_positions(col.tolist(), goal)
    ids = df["id"]
    return [str(ids.iloc[i]) for i in positions]


# -- the comparison state -------------------------------------------------------------------------
@dataclass
class Comparison:
    """The runs being compared and the user's choices over them; the widget renders this.

    `df` holds every run loaded; `view` the filtered and sorted ones, in display order.
    """

    df: pd.DataFrame
    metric: str | None = None
    goal: str | None = None
    sort_by: str | None = None
    ascending: bool | None = None
    flt: Filter = field(default_factory=Filter)
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    noise: dict[str, dict[str, Any]] = field(default_factory=dict)  # reproduce --seeds
    names: dict[str, str] | None = None  # run id -> name made over more runs than `df`

    def __post_init__(self) -> None:
        from .identity import logical_frame, plan_params

        self.raw = self.df
        self.plan = plan_params(self.raw)
        self.df = logical_frame(self.raw, self.plan, self.names)
        self.metric = resolve_metric(self.df, self.metric)
        self.goal = goal_for(self.metric, self.goal)
        self.split = ParamSplit(
            list(self.plan.columns),
            {PARAM + k: v for k, v in self.plan.constant.items()},
            {k: v for k, v in self.plan.present.items() if k in self.plan.columns},
        )
        self._cells: dict[str, list[Any]] = {}
        if self.sort_by is None and self.metric is not None:
            self.sort_by = self.metric
        self.update()

    def cells(self, key: str) -> list[Any]:
        """A column's values as the filter language sees them: MISSING when unset, None when
        set to None, times as ISO text."""
        from .query import MISSING

        got = self._cells.get(key)
        if got is not None:
            return got
        p = self.plan.params.get(key)
        if p is not None:
            got = p.values
        elif key not in self.df.columns:
            got = [MISSING] * len(self.df)
        elif key == "started_at":
            got = _iso_utc(self.df[key])
        else:
            col = self.df[key]
            missing = col.isna().tolist()
            if col.dtype.kind in "fiub":  # tolist() already gave Python numbers
                got = [MISSING if m else v for v, m in zip(col.tolist(), missing, strict=True)]
            else:
                got = [MISSING if m else (v.item() if hasattr(v, "item") else v)
                       for v, m in zip(col.tolist(), missing, strict=True)]
        self._cells[key] = got
        return got

    def query_mask(self, query: str) -> Any:
        """Runs matching `query` (the filter language of `query.py`), as a boolean array."""
        import numpy as np

        from .payload import columns_spec
        from .query import compile_query

        pred = compile_query(query, columns_spec(self),
                             get=lambda i, key: self.cells(key)[i])
        return np.fromiter((pred(i) for i in range(len(self.df))), dtype=bool,
                           count=len(self.df))

    # the metric is the default sort, best first
    def default_ascending(self, column: str) -> bool:
        if column == self.metric:
            return self.goal == "min"
        return column not in ("started_at",) and not column.startswith(METRIC)

    def update(self) -> None:
        """Recompute the view after a change of sort, filter or metric."""
        df = self.df
        if self.flt.query.strip() or self.flt.low is not None or self.flt.high is not None:
            flt = self.flt
            mask = filter_mask(df, Filter("", flt.metric or self.metric, flt.low, flt.high))
            if flt.query.strip():
                mask &= self.query_mask(flt.query)
            df = df[mask]
        if self.sort_by is not None:
            asc = self.ascending if self.ascending is not None else \
                self.default_ascending(self.sort_by)
            df = sort_runs(df, self.sort_by, ascending=asc)
        self.view = df
        self.best = best_runs(self.df, self.metric, self.goal)
        from ..noise import tied_with_best

        self.tied = tied_with_best(
            list(self.df["id"]) if "id" in self.df else [],
            list(self.df[self.metric]) if self.metric in self.df else [],
            self.best, self.metric, self.noise) if self.noise else set()

    def set_sort(self, column: str, ascending: bool | None = None) -> None:
        self.sort_by = column
        self.ascending = ascending
        self.update()

    def set_metric(self, metric: str | None, goal: str | None = None) -> None:
        self.metric = resolve_metric(self.df, metric)
        self.goal = goal_for(self.metric, goal)
        self.update()

    def set_filter(self, query: str = "", low: float | None = None,
                   high: float | None = None) -> None:
        self.flt = Filter(query, self.metric, low, high)
        self.update()

    @property
    def columns(self) -> list[str]:
        """Display columns: metrics, varying params, data, duration, when, notebook, verdict."""
        cols = ["id", "name"]
        if "model" in self.df.columns and self.df["model"].notna().any():
            cols.append("model")
        if "experiment" in self.df.columns and self.df["experiment"].nunique() > 1:
            cols.append("experiment")
        metrics = metric_columns(self.df)
        if self.metric in metrics:
            metrics.remove(self.metric)
            metrics.insert(0, self.metric)
        cols += metrics + self.split.varying
        cols += ["data", "duration_s", "started_at", "notebook"]
        if self.verdicts or self.tied:
            cols.append(VERDICT)
        return [c for c in cols if c == VERDICT or c in self.df.columns]

    def page(self, number: int, size: int) -> pd.DataFrame:
        start = max(number, 0) * size
        return self.view.iloc[start:start + size]

    def pages(self, size: int) -> int:
        return max(1, math.ceil(len(self.view) / size))

    def row(self, run_id: str) -> pd.Series:
        hit = self.df.index[self.df["id"] == run_id]
        if not len(hit):
            raise MlopsNbError(f"run {run_id!r} is not in this comparison")
        return self.df.loc[hit[0]]

    def verdict_text(self, run_id: str) -> str:
        v = self.verdicts.get(run_id)
        if run_id in self.tied:
            return ((self._verdict(v) + " · ") if v else "") + "tied with best within noise"
        return self._verdict(v) if v else ""

    @staticmethod
    def _verdict(v: dict[str, Any]) -> str:
        level = v.get("level", "")
        ok = v.get("ok")
        return f"{level} {'✓' if ok else '✗' if ok is not None else ''}".strip()


def load_verdicts(home: Path | None) -> dict[str, dict[str, Any]]:
    """Stored reproduce verdicts per run id; {} without a store."""
    if home is None:
        return {}
    from ..store.verdicts import load_verdicts as _load

    try:
        return dict(_load(home) or {})
    except Exception:  # a broken verdict file must not stop the comparison
        return {}


# -- loading --------------------------------------------------------------------------------------
def _iso_utc(col: pd.Series) -> list[Any]:
    """Start times as `2026-11-26T07:15:01Z` text, in one vectorised pass (10^5 runs)."""
    import numpy as np

    from .query import MISSING

    if not hasattr(col, "dt"):
        return [MISSING if _is_missing(t) else t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in col]
    utc = col.dt.tz_convert(None) if col.dt.tz is not None else col
    text = np.datetime_as_string(utc.to_numpy(dtype="datetime64[s]"), unit="s").tolist()
    return [MISSING if m else f"{t}Z" for t, m in zip(text, col.isna().tolist(), strict=True)]


def load_comparison(experiment: str | None = None, *, metric: str | None = None,
                    goal: str | None = None,
                    home: str | os.PathLike[str] | None = None, source: str = "local",
                    tracking_uri: str | None = None) -> tuple[Comparison, Path]:
    """Read the store and build the comparison; returns it with the store's folder.

    `source="mlflow"` reads the runs from the MLflow server at `tracking_uri` instead (the
    team's runs); the local store, when there is one, still serves diffs and exports.
    """
    from ..config import store_reader as _reader
    from ..table import runs_frame

    if source == "mlflow":
        from ..sync.team import mlflow_comparison

        return mlflow_comparison(experiment, metric=metric, goal=goal, home=home,
                                 tracking_uri=tracking_uri)
    if source != "local":
        raise MlopsNbError(f"source is 'local' or 'mlflow', not {source!r}")
    reader = _reader(home)
    df = runs_frame(reader.run_columns(experiment))
    from ..noise import load_all_noise

    cmp = Comparison(df, metric=metric, goal=goal, verdicts=load_verdicts(reader.home),
                     noise=load_all_noise(reader.home))
    return cmp, reader.home


# -- diff of two runs -----------------------------------------------------------------------------
@dataclass
class RunDiff:
    """What differs between run `a` and run `b`. Each list holds (key, value in a, value in b)."""

    a: str
    b: str
    params: list[tuple[str, Any, Any]]
    same_params: int
    metrics: list[tuple[str, Any, Any]]
    data: list[tuple[str, Any, Any]]
    same_data: int
    environment: list[tuple[str, Any, Any]]
    same_environment: int
    code: str  # unified diff of the two lineage slices; "" when identical
    code_a: str
    code_b: str

    @property
    def identical(self) -> bool:
        return not (self.params or self.data or self.environment or self.code)


_MISSING = "(missing)"


def diff_values(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[tuple[str, Any, Any]], int]:
    """Keys whose values differ (a key absent on one side shows as '(missing)'), and how many
    are the same."""
    out: list[tuple[str, Any, Any]] = []
    same = 0
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        if _same(va, vb):
            same += 1
        else:
            out.append((key, va, vb))
    return out, same


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except Exception:
        return repr(a) == repr(b)


def flatten_environment(env: dict[str, Any] | None) -> dict[str, Any]:
    """Python, platform, git and package versions as flat `key: value` pairs."""
    env = env or {}
    out: dict[str, Any] = {}
    for key in ("python", "implementation", "platform", "machine"):
        if key in env:
            out[key] = env[key]
    git = env.get("git") or {}
    if isinstance(git, dict):
        for key in ("commit", "branch", "dirty"):
            if key in git:
                out[f"git.{key}"] = git[key]
    for name, version in (env.get("packages") or {}).items():
        out[f"package {name}"] = version
    return out


def data_fingerprints(data: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """{name: 'hash (type shape)'} of the data a run saw."""
    out: dict[str, Any] = {}
    for name, info in (data or {}).items():
        if not isinstance(info, dict):
            out[name] = info
            continue
        desc = str(info.get("hash", ""))[:16]
        extra = " ".join(str(info[k]) for k in ("kind", "type", "shape") if info.get(k))
        out[name] = f"{desc} ({extra})" if extra else desc
    return out


def load_run(reader: StoreReader, run_id: str, session: str | None = None
             ) -> tuple[CellRun, list[CellRun]]:
    """A run and its session's log; cheap when the session is known (one session's files)."""
    if session is None:
        session = reader.resolve(run_id).session
    log = reader.session_log(session)
    for cr in log:
        if cr.id == run_id:
            return cr, log
    cr = reader.resolve(run_id)
    return cr, reader.session_log(cr.session)


def lineage_code(reader: StoreReader, run: CellRun, log: list[CellRun]) -> str:
    """The code of a run's lineage slice and the run's own cell, in execution order."""
    from ..lineage import lineage_ids

    by_id = {cr.id: cr for cr in log}
    ids = [*lineage_ids(log, run), run.id]
    chunks: list[str] = []
    for rid in ids:
        cr = by_id.get(rid)
        if cr is None:
            chunks.append(f"# cell run {rid[:12]}: not found in the session log\n")
            continue
        code = reader.blobs.get_text(cr.code) or reader.blobs.get_text(cr.python)
        # The notebook cell id is stable across re-runs; execution counts are not, and would
        # make two runs of the same code differ.
        label = f"# --- cell {cr.cell_id}" if cr.cell_id else "# --- cell"
        chunks.append(f"{label}\n{(code or '# (code not stored)').rstrip()}\n")
    return "\n".join(chunks)


def diff_runs(reader: StoreReader, a: str, b: str, *, sessions: dict[str, str] | None = None
              ) -> RunDiff:
    """Parameters, metrics, data fingerprints, environment and code of runs `a` and `b`."""
    from ..records import run_view, shown_value

    sessions = sessions or {}
    run_a, log_a = load_run(reader, a, sessions.get(a))
    if run_b_session := sessions.get(b):
        run_b, log_b = load_run(reader, b, run_b_session) if run_b_session != run_a.session \
            else _from_log(reader, b, log_a)
    else:
        run_b, log_b = load_run(reader, b)
    va, vb = run_view(run_a), run_view(run_b)
    params, same_params = diff_values(
        {k: shown_value(v, with_hash=True) for k, v in (va["params"] or {}).items()},
        {k: shown_value(v, with_hash=True) for k, v in (vb["params"] or {}).items()})
    metrics, _ = diff_values(va["metrics"] or {}, vb["metrics"] or {})
    data, same_data = diff_values(data_fingerprints(va["data"]), data_fingerprints(vb["data"]))
    env_a = flatten_environment(reader.session_info(run_a.session).get("environment"))
    env_b = env_a if run_b.session == run_a.session else \
        flatten_environment(reader.session_info(run_b.session).get("environment"))
    env, same_env = diff_values(env_a, env_b)
    code_a = lineage_code(reader, run_a, log_a)
    code_b = lineage_code(reader, run_b, log_b)
    code = "".join(difflib.unified_diff(
        code_a.splitlines(keepends=True), code_b.splitlines(keepends=True),
        fromfile=f"run {a[:12]}", tofile=f"run {b[:12]}",
    ))
    return RunDiff(a, b, params, same_params, metrics, data, same_data, env, same_env, code,
                   code_a, code_b)


def _from_log(reader: StoreReader, run_id: str, log: list[CellRun]
              ) -> tuple[CellRun, list[CellRun]]:
    for cr in log:
        if cr.id == run_id:
            return cr, log
    return load_run(reader, run_id)


# -- formatting shared by the widget and the report -----------------------------------------------
def format_value(value: Any, column: str = "") -> str:
    """A cell's text (not HTML: callers escape it)."""
    if _is_missing(value):
        return ""
    if column == "started_at":
        try:
            return value.tz_convert(_local_tz()).strftime("%Y-%m-%d %H:%M:%S")
        except (AttributeError, TypeError):
            return str(value)
    if column == "id":
        return str(value)[:8]
    if column == "duration_s" and isinstance(value, (int, float)):
        return f"{value:.3g}s" if value < 100 else f"{value:.0f}s"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.6g}"
    return str(value)


def _local_tz() -> Any:
    import datetime as dt

    return dt.datetime.now().astimezone().tzinfo


def column_title(col: str) -> str:
    return {"started_at": "when", "duration_s": "duration", "data": "data"}.get(col, short(col))
