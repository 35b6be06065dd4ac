"""Runs people can tell apart: one column per logical parameter, readable default names.

The recorder keeps two copies of most hyper-parameters: the notebook variable the user wrote
(`n_estimators = 100`) and the fitted estimator's own `get_params()` entry (`clf.n_estimators`).
They are one parameter. The notebook variable wins the column name and the value: it is the knob
the user turns and the name export parametrizes; the estimator entry is its echo, and fills in
only for runs that passed a literal instead. Estimator entries nobody set (the estimator's
defaults, identical wherever they appear) are folded away unless they differ between runs.

Pure functions over the runs DataFrame (`mnb.runs()`), tested without a widget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .query import MISSING, short_model, value_text

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PARAM = "params."
_ESTIMATOR_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.(?P<arg>.+)$")
NAME_PARAMS = 3  # parameters in a default name


@dataclass
class LogicalParam:
    """One parameter as the user thinks of it, and the recorded columns it came from."""

    label: str
    sources: list[str]  # frame columns, winner first
    values: list[Any]  # per run: MISSING (not set), None, or the value
    from_notebook: bool

    @property
    def key(self) -> str:
        return PARAM + self.label


@dataclass
class ParamPlan:
    """Which logical parameters are columns, which are the same in every run, which fold."""

    params: dict[str, LogicalParam]  # by key
    columns: list[str]  # keys shown as columns (they differ, or are set in some runs only)
    constant: dict[str, Any]  # label -> the value every run has (notebook parameters)
    folded: dict[str, Any]  # label -> estimator setting identical wherever set
    present: dict[str, int] = field(default_factory=dict)  # key -> runs that set it


def none_mask(df: pd.DataFrame, col: str) -> np.ndarray:
    """True for runs that set parameter `col` to None (the frame holds NA for both)."""
    import numpy as np

    nones = df.attrs.get("params_none") or {}
    name = col[len(PARAM):]
    if not nones or "id" not in df.columns or not any(name in (s or ()) for s in nones.values()):
        return np.zeros(len(df), dtype=bool)  # the common case, without a pass over 10^5 ids
    return np.fromiter((name in (nones.get(i) or ()) for i in df["id"]), dtype=bool, count=len(df))


def column_values(df: pd.DataFrame, col: str) -> list[Any]:
    """The column as Python values: MISSING where unset, None where set to None."""
    import pandas as pd

    raw = df[col].tolist()
    set_mask = df[col].notna().to_numpy()
    nones = none_mask(df, col)
    if df[col].dtype.kind in "fiub":  # numbers: tolist() gave Python values, NaN where unset
        out = [v if is_set else MISSING for v, is_set in zip(raw, set_mask.tolist(), strict=True)]
        for i in nones.nonzero()[0].tolist():
            out[i] = None
        return out
    out = []
    for v, is_set, is_none in zip(raw, set_mask, nones, strict=True):
        if is_none:
            out.append(None)
        elif not is_set or v is pd.NA:
            out.append(MISSING)
        else:
            out.append(v.item() if hasattr(v, "item") and not isinstance(v, str) else v)
    return out


def _hashable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return (type(v) is bool, v)  # True and 1 are different settings
    return (False, repr(v))


def _agree(a: list[Any], b: list[Any]) -> tuple[bool, int]:
    """Whether two columns never disagree where both are set, and in how many runs both are."""
    both = 0
    for x, y in zip(a, b, strict=True):
        if x is MISSING or y is MISSING:
            continue
        if _hashable(x) != _hashable(y):
            return False, both
        both += 1
    return True, both


def _distinct(values: list[Any]) -> set[Any]:
    return {_hashable(v) for v in values if v is not MISSING}


def logical_params(df: pd.DataFrame) -> dict[str, LogicalParam]:
    """Merge each estimator entry into the notebook variable it echoes (see module doc)."""
    cols = [c for c in df.columns if c.startswith(PARAM)]
    return merge_params(cols, {c: column_values(df, c) for c in cols})


def merge_params(cols: list[str], values: dict[str, list[Any]]) -> dict[str, LogicalParam]:
    """`logical_params` over the columns' values as `column_values` gives them (no frame:
    `mlops-nb runs` plans its first screen without pandas)."""
    notebook = [c for c in cols if not _ESTIMATOR_KEY.match(c[len(PARAM):])]
    estimator = [c for c in cols if c not in notebook]
    out: dict[str, LogicalParam] = {}
    for c in notebook:
        label = c[len(PARAM):]
        out[PARAM + label] = LogicalParam(label, [c], list(values[c]), True)
    leftovers: list[str] = []
    for c in estimator:
        arg = _ESTIMATOR_KEY.match(c[len(PARAM):])["arg"]  # type: ignore[index]
        target = _echo_of(arg, values[c], out)
        if target is None:
            leftovers.append(c)
            continue
        _absorb(target, c, values[c])
    # Estimator entries of the same argument under different variable names are one parameter
    # when no run has two of them disagreeing; otherwise each keeps its full name.
    by_arg: dict[str, list[str]] = {}
    for c in leftovers:
        by_arg.setdefault(_ESTIMATOR_KEY.match(c[len(PARAM):])["arg"], []).append(c)  # type: ignore[index]
    for arg, group in by_arg.items():
        merged = list(values[group[0]])
        ok = PARAM + arg not in out
        for c in group[1:]:
            agree, _ = _agree(merged, values[c])
            if not agree:
                ok = False
                break
            merged = [y if x is MISSING else x for x, y in zip(merged, values[c], strict=True)]
        if ok:
            out[PARAM + arg] = LogicalParam(arg, list(group), merged, False)
        else:
            for c in group:
                label = c[len(PARAM):]
                out[PARAM + label] = LogicalParam(label, [c], list(values[c]), False)
    return out


def _echo_of(arg: str, vals: list[Any], params: dict[str, LogicalParam]) -> LogicalParam | None:
    """The notebook parameter an estimator entry echoes: same name and never disagreeing, else
    a varying notebook parameter with the same value in every run both are set."""
    same_name = params.get(PARAM + arg)
    if same_name is not None and same_name.from_notebook:
        agree, _ = _agree(same_name.values, vals)
        return same_name if agree else None
    for p in params.values():
        if not p.from_notebook or len(_distinct(p.values)) < 2:
            continue
        agree, both = _agree(p.values, vals)
        if agree and both >= 2 and all((x is MISSING) == (y is MISSING)
                                       for x, y in zip(p.values, vals, strict=True)):
            return p
    return None


def _absorb(target: LogicalParam, col: str, vals: list[Any]) -> None:
    target.sources.append(col)
    target.values = [y if x is MISSING else x for x, y in zip(target.values, vals, strict=True)]


def plan_params(df: pd.DataFrame) -> ParamPlan:
    """Columns are parameters that differ between runs or are set in some runs only;
    "same for all runs" is only what every run has, with one value."""
    return plan_of(logical_params(df), len(df))


def plan_of(params: dict[str, LogicalParam], n: int) -> ParamPlan:
    """`plan_params` of `n` runs' logical parameters."""
    columns: list[str] = []
    constant: dict[str, Any] = {}
    folded: dict[str, Any] = {}
    present: dict[str, int] = {}
    for key, p in params.items():
        set_in = sum(v is not MISSING for v in p.values)
        present[key] = set_in
        if not set_in:
            continue
        distinct = _distinct(p.values)
        if len(distinct) > 1:
            columns.append(key)
            continue
        value = next(v for v in p.values if v is not MISSING)
        if not p.from_notebook:
            folded[p.label] = value  # an estimator setting nobody changed
        elif set_in == n:
            constant[p.label] = value
        else:
            columns.append(key)
    return ParamPlan(params, columns, constant, folded, present)


# -- names ----------------------------------------------------------------------------------------
def _name_value(v: Any) -> str:
    """A value as a name shows it: floats to 4 significant digits (`lr=0.000591`, not 19
    digits); two runs that then read the same get their short ids below."""
    if isinstance(v, float) and not isinstance(v, bool):
        return format(v, ".4g")
    return value_text(v)


def default_names(df: pd.DataFrame, plan: ParamPlan) -> tuple[list[str], list[bool]]:
    """A name per run (explicit names win) and whether it was made up here.

    Made-up names are the model's family and the parameters that vary among runs of the same
    model, e.g. `RandomForest · max_depth=8 · n_estimators=100`; a name two runs would share
    gets the run's short id.
    """
    n = len(df)
    explicit = df["name"].tolist() if "name" in df.columns else [None] * n
    models = df["model"].tolist() if "model" in df.columns else [None] * n
    ids = df["id"].tolist() if "id" in df.columns else [""] * n
    return names_for(explicit, models, ids, plan)


def names_for(explicit: list[Any], models: list[Any], ids: list[Any], plan: ParamPlan
              ) -> tuple[list[str], list[bool]]:
    """`default_names` from the runs' given names, models and ids."""
    n = len(ids)
    models = [m if isinstance(m, str) and m else None for m in models]
    groups: dict[Any, list[int]] = {}
    for i, m in enumerate(models):
        groups.setdefault(m, []).append(i)
    names: list[str] = [""] * n
    auto: list[bool] = [False] * n
    for model, rows in groups.items():
        distinguishing = [k for k in plan.columns
                          if len(_distinct([plan.params[k].values[i] for i in rows])) > 1]
        head = short_model(model) if model else "run"
        for i in rows:
            given = explicit[i]
            if isinstance(given, str) and given.strip():
                names[i] = given
                continue
            parts = [head]
            for k in distinguishing:
                v = plan.params[k].values[i]
                if v is not MISSING:
                    parts.append(f"{plan.params[k].label}={_name_value(v)}")
                if len(parts) > NAME_PARAMS:
                    break
            names[i] = " · ".join(parts)
            auto[i] = True
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if auto[i]:
            seen[name] = seen.get(name, 0) + 1
    for i, name in enumerate(names):
        if auto[i] and seen[name] > 1:
            names[i] = f"{name} · {str(ids[i])[:6]}"
    return names, auto


def logical_frame(df: pd.DataFrame, plan: ParamPlan) -> pd.DataFrame:
    """The runs with one `params.<label>` column per logical parameter (recorded copies
    dropped), `name` filled with default names, `name_auto` saying which were made up."""
    import pandas as pd

    base = df[[c for c in df.columns if not c.startswith(PARAM)]].copy()
    extra: dict[str, Any] = {}
    for key, p in plan.params.items():
        if len(p.sources) == 1:
            extra[key] = df[p.sources[0]].array  # the recorded column as is: no copy
            continue
        vals = [None if v is MISSING else v for v in p.values]
        try:
            extra[key] = pd.array(vals)
        except (TypeError, ValueError):
            extra[key] = pd.array(vals, dtype=object)
    names, auto = default_names(df, plan)
    base["name"] = pd.Series(names, index=base.index, dtype=object)
    base["name_auto"] = auto
    if extra:
        try:
            params = pd.DataFrame(extra, index=base.index)
        except UnicodeEncodeError:  # a lone surrogate (non-UTF-8 file name): Arrow text refuses
            params = pd.DataFrame({k: pd.Series(list(v), index=base.index, dtype=object)
                                   for k, v in extra.items()})
        metric_cols = [c for c in base.columns if c.startswith("metrics.")]
        head = base[[c for c in base.columns if c not in metric_cols]]
        base = pd.concat([head, params, base[metric_cols]], axis=1)
    base.attrs = dict(df.attrs)
    return base
