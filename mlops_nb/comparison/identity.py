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

from ..redact import REDACTED
from .query import MISSING, short_model, value_text

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PARAM = "params."
_ESTIMATOR_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.(?P<arg>.+)$")
NAME_PARAMS = 3  # parameters in a default name


class Coded:
    """A parameter column as codes into its distinct values.

    Merging copies, counting distinct values and making names all compare values across
    100,000 runs; as integer codes that is numpy work, not a Python loop per run. Two values
    are one code when `hashable` says they are the same setting (True and 1 are not).
    """

    __slots__ = ("_distinct", "_keys", "_values", "codes", "numbers", "uniques")

    def __init__(self, codes: np.ndarray, uniques: list[Any],
                 numbers: np.ndarray | None = None) -> None:
        self.codes = codes  # int64 per run: -1 not set, else an index into uniques
        self.uniques = uniques  # distinct values; None when some run set None
        # `uniques` as one sorted int64 or float64 array, when they are that (numpy.unique of
        # a numeric column): columns are then compared by search, not value by value.
        self.numbers = numbers
        self._distinct: int | None = None
        self._keys: dict[Any, int] | None = None
        self._values: list[Any] | None = None

    @classmethod
    def from_values(cls, values: list[Any]) -> Coded:
        """From per-run values as `values()` gives them (MISSING: not set): what
        `mlops-nb runs`' first screen has, with no frame to `encode`."""
        import numpy as np

        codes = np.full(len(values), -1, dtype=np.int64)
        uniques: list[Any] = []
        index: dict[Any, int] = {}
        for i, v in enumerate(values):
            if v is MISSING:
                continue
            k = hashable(v)
            code = index.get(k)
            if code is None:
                code = index[k] = len(uniques)
                uniques.append(v)
            codes[i] = code
        return cls(codes, uniques)

    def keys(self) -> dict[Any, int]:
        """Each distinct value's code, by `hashable`: asked once per pair of columns compared,
        so made once (a column of 10,000 distinct seeds is compared with every estimator
        entry)."""
        if self._keys is None:
            self._keys = {hashable(u): k for k, u in enumerate(self.uniques)}
        return self._keys

    @property
    def set_mask(self) -> np.ndarray:
        return self.codes >= 0

    def distinct(self) -> int:
        """How many different values the runs that set it have."""
        if self._distinct is None:
            import numpy as np

            used = self.codes[self.codes >= 0]
            self._distinct = int(np.count_nonzero(np.bincount(used, minlength=1))) \
                if len(used) else 0
        return self._distinct

    def first_value(self) -> Any:
        """The value of the first run that sets it (MISSING when none does)."""
        import numpy as np

        hit = np.flatnonzero(self.codes >= 0)
        return self.uniques[int(self.codes[hit[0]])] if len(hit) else MISSING

    def values(self) -> list[Any]:
        """Per run: MISSING (not set), None, or the value, as Python objects."""
        if self._values is None:
            self._values = take(self.uniques, self.codes, MISSING)
        return self._values

    def filled_from(self, other: Coded) -> Coded:
        """This column, with `other`'s value where this one is not set."""
        import numpy as np

        index = dict(self.keys())  # grows below: never the cached one
        uniques = list(self.uniques)
        remap = []
        for u in other.uniques:
            k = hashable(u)
            code = index.get(k)
            if code is None:
                code = index[k] = len(uniques)
                uniques.append(u)
            remap.append(code)
        table = np.array([*remap, -1], dtype=np.int64)  # other's -1 (not set) stays -1
        return Coded(np.where(self.codes >= 0, self.codes, table[other.codes]), uniques)


def take(uniques: list[Any], codes: np.ndarray, missing: Any) -> list[Any]:
    """`[uniques[c] if c >= 0 else missing for c in codes]`, as one numpy gather."""
    import numpy as np

    table = np.empty(len(uniques) + 1, dtype=object)
    for k, u in enumerate(uniques):  # element-wise: a list or tuple value stays one object
        table[k] = u
    table[-1] = missing  # code -1 reads the last slot
    return table[codes].tolist()


def encode(df: pd.DataFrame, col: str, nones: np.ndarray | None = None) -> Coded:
    """Column `col` of the runs as codes (see `Coded`); rows set to None (`nones`, else from
    the frame) get a code of theirs."""
    import numpy as np
    import pandas as pd

    series = df[col]
    if nones is None:
        nones = none_mask(df, col)
    if series.dtype == object:
        raw = series.tolist()
        values: list[Any] = [MISSING] * len(raw)
        for i in np.flatnonzero(series.notna().to_numpy() & ~nones).tolist():
            v = raw[i]
            if v is pd.NA:
                continue
            values[i] = v.item() if hasattr(v, "item") and not isinstance(v, str) else v
        found_coded = Coded.from_values(values)
        codes, uniques = found_coded.codes, found_coded.uniques
    else:  # one type per column: pandas' factorize cannot confuse True with 1 here
        got, found = pd.factorize(series, use_na_sentinel=True)
        codes = got.astype(np.int64, copy=False)
        uniques = [u.item() if hasattr(u, "item") and not isinstance(u, str) else u
                   for u in found.tolist()]
    if nones.any():
        codes = codes.copy()
        codes[nones] = len(uniques)
        uniques = [*uniques, None]
    return Coded(codes, uniques)


@dataclass
class LogicalParam:
    """One parameter as the user thinks of it, and the recorded columns it came from."""

    label: str
    sources: list[str]  # frame columns, winner first
    coded: Coded
    from_notebook: bool

    @property
    def key(self) -> str:
        return PARAM + self.label

    @property
    def values(self) -> list[Any]:
        """Per run: MISSING (not set), None, or the value."""
        return self.coded.values()


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

    got = none_masks(df).get(col[len(PARAM):])
    return got if got is not None else np.zeros(len(df), dtype=bool)


def none_masks(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """For each parameter some run set to None, which runs did: one pass over the runs that
    set any None (the frame's `params_none`), not one pass over every run per column."""
    import numpy as np
    import pandas as pd

    nones = df.attrs.get("params_none") or {}
    hits = [(rid, names) for rid, names in nones.items() if names]
    if not hits or "id" not in df.columns:
        return {}
    positions = pd.Index(df["id"]).get_indexer([rid for rid, _ in hits]).tolist()
    out: dict[str, np.ndarray] = {}
    for pos, (_, names) in zip(positions, hits, strict=True):
        if pos < 0:
            continue
        for name in names:
            mask = out.get(name)
            if mask is None:
                mask = out[name] = np.zeros(len(df), dtype=bool)
            mask[pos] = True
    return out


def column_values(df: pd.DataFrame, col: str) -> list[Any]:
    """The column as Python values: MISSING where unset, None where set to None."""
    return encode(df, col).values()


def hashable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return (type(v) is bool, v)  # True and 1 are different settings
    return (False, repr(v))


def _agree(a: Coded, b: Coded) -> tuple[bool, int]:
    """Whether two columns never disagree where both are set, and in how many runs both are."""
    import numpy as np

    both = (a.codes >= 0) & (b.codes >= 0)
    count = int(np.count_nonzero(both))
    if not count:
        return True, 0
    if (a.numbers is not None and b.numbers is not None and len(a.numbers) == len(a.uniques)
            and len(b.numbers) == len(b.uniques) and a.numbers.dtype == b.numbers.dtype
            and len(a.numbers)):
        pos = np.minimum(np.searchsorted(a.numbers, b.numbers), len(a.numbers) - 1)
        remap = np.where(a.numbers[pos] == b.numbers, pos, -2)
    else:
        index = a.keys()
        remap = np.array([index.get(hashable(u), -2) for u in b.uniques], dtype=np.int64)
    return bool(np.array_equal(remap[b.codes[both]], a.codes[both])), count


def logical_params(df: pd.DataFrame) -> dict[str, LogicalParam]:
    """Merge each estimator entry into the notebook variable it echoes (see module doc)."""
    cols = [c for c in df.columns if c.startswith(PARAM)]
    import numpy as np

    masks = none_masks(df)
    unset = np.zeros(len(df), dtype=bool)
    coded = {c: encode(df, c, masks.get(c[len(PARAM):], unset)) for c in cols}
    return merge_coded(cols, coded)


def merge_params(cols: list[str], values: dict[str, list[Any]]) -> dict[str, LogicalParam]:
    """`logical_params` over per-run values (MISSING where unset) instead of a frame."""
    return merge_coded(cols, {c: Coded.from_values(values[c]) for c in cols})


def merge_coded(cols: list[str], coded: dict[str, Coded]) -> dict[str, LogicalParam]:
    """`logical_params` of parameter columns already coded."""
    notebook = [c for c in cols if not _ESTIMATOR_KEY.match(c[len(PARAM):])]
    estimator = [c for c in cols if c not in notebook]
    out: dict[str, LogicalParam] = {}
    for c in notebook:
        label = c[len(PARAM):]
        out[PARAM + label] = LogicalParam(label, [c], coded[c], True)
    leftovers: list[str] = []
    for c in estimator:
        arg = _ESTIMATOR_KEY.match(c[len(PARAM):])["arg"]  # type: ignore[index]
        target = _echo_of(arg, coded[c], out)
        if target is None:
            leftovers.append(c)
            continue
        target.sources.append(c)
        target.coded = target.coded.filled_from(coded[c])
    # Estimator entries of the same argument under different variable names are one parameter
    # when no run has two of them disagreeing; otherwise each keeps its full name.
    by_arg: dict[str, list[str]] = {}
    for c in leftovers:
        by_arg.setdefault(_ESTIMATOR_KEY.match(c[len(PARAM):])["arg"], []).append(c)  # type: ignore[index]
    for arg, group in by_arg.items():
        merged = coded[group[0]]
        ok = PARAM + arg not in out
        for c in group[1:]:
            agree, _ = _agree(merged, coded[c])
            if not agree:
                ok = False
                break
            merged = merged.filled_from(coded[c])
        if ok:
            out[PARAM + arg] = LogicalParam(arg, list(group), merged, False)
        else:
            for c in group:
                label = c[len(PARAM):]
                out[PARAM + label] = LogicalParam(label, [c], coded[c], False)
    return out


def _echo_of(arg: str, vals: Coded, params: dict[str, LogicalParam]) -> LogicalParam | None:
    """The notebook parameter an estimator entry echoes: same name and never disagreeing, else
    a varying notebook parameter with the same value in every run both are set."""
    import numpy as np

    same_name = params.get(PARAM + arg)
    if same_name is not None and same_name.from_notebook:
        agree, _ = _agree(same_name.coded, vals)
        return same_name if agree else None
    for p in params.values():
        if not p.from_notebook or p.coded.distinct() < 2:
            continue
        agree, both = _agree(p.coded, vals)
        if agree and both >= 2 and np.array_equal(p.coded.codes >= 0, vals.codes >= 0):
            return p
    return None


def merged_params(params: dict[str, Any]) -> dict[str, Any]:
    """One run's parameters as the runs table shows them, for a run's details: an estimator's
    entry (`model.alpha`) echoing the notebook variable of its name and value (`alpha`) is
    that parameter, shown once under the variable's name; an estimator entry with no such
    variable shows under its argument's name (`max_depth`) unless two entries of that argument
    disagree. Anything that disagrees keeps its full name."""
    out: dict[str, Any] = {}
    by_arg: dict[str, list[str]] = {}
    for key, value in params.items():
        m = _ESTIMATOR_KEY.match(key)
        if m is None:
            out.setdefault(key, value)
            continue
        arg = m["arg"]
        if arg in params and not _ESTIMATOR_KEY.match(arg):
            if hashable(params[arg]) == hashable(value):
                continue  # the variable's echo
            out[key] = value
            continue
        by_arg.setdefault(arg, []).append(key)
    for arg, keys in by_arg.items():
        if len({hashable(params[k]) for k in keys}) == 1 and arg not in out:
            out[arg] = params[keys[0]]
        else:
            out.update({k: params[k] for k in keys})
    return out


def plan_params(df: pd.DataFrame) -> ParamPlan:
    """Columns are parameters that differ between runs or are set in some runs only;
    "same for all runs" is only what every run has, with one value."""
    return plan_of(logical_params(df), len(df))


def plan_of(params: dict[str, LogicalParam], n: int) -> ParamPlan:
    """`plan_params` of `n` runs' logical parameters."""
    import numpy as np

    columns: list[str] = []
    constant: dict[str, Any] = {}
    folded: dict[str, Any] = {}
    present: dict[str, int] = {}
    # A dict of settings whose entries are parameters of their own (store/index.settings:
    # `params.max_depth` of a ParameterGrid loop's `params`) is shown by its entries only.
    prefixes = {src[:i] for p in params.values() for src in p.sources
                for i, ch in enumerate(src) if ch == "." and i > len(PARAM)}
    for key, p in params.items():
        set_in = int(np.count_nonzero(p.coded.codes >= 0))
        present[key] = set_in
        if not set_in or (prefixes and any(src in prefixes for src in p.sources)):
            continue
        if p.coded.distinct() > 1:
            columns.append(key)
            continue
        value = p.coded.first_value()
        if not p.from_notebook:
            folded[p.label] = value  # an estimator setting nobody changed
        elif set_in == n:
            constant[p.label] = value
        else:
            columns.append(key)
    return ParamPlan(params, columns, constant, folded, present)


# -- names ----------------------------------------------------------------------------------------
NAME_VALUE_CHARS = 24


def _name_value(v: Any) -> str:
    """A value as a name shows it: floats to 4 significant digits (`lr=0.000591`, not 19
    digits), long text and 400-digit seeds cut (a name is never cut where it is shown); two
    runs that then read the same get their short ids below."""
    if type(v) is float:
        return f"{v:.4g}"
    text = value_text(v)
    return text if len(text) <= NAME_VALUE_CHARS else text[:NAME_VALUE_CHARS - 1] + "…"


def model_groups(models: list[Any]) -> tuple[np.ndarray, list[str | None]]:
    """Per run, the index of its model (estimator class) group; None groups runs without one
    (or whose model is not a class name)."""
    import numpy as np

    index: dict[Any, int] = {}
    heads: list[str | None] = []
    codes = np.empty(len(models), dtype=np.int64)
    for i, m in enumerate(models):
        key = m if isinstance(m, str) and m else None
        g = index.get(key)
        if g is None:
            g = index[key] = len(heads)
            heads.append(key)
        codes[i] = g
    if not heads:
        heads.append(None)
    return codes, heads


def _frame_list(df: pd.DataFrame, col: str, fill: Any) -> list[Any]:
    return df[col].tolist() if col in df.columns else [fill] * len(df)


def distinguishing(df: pd.DataFrame, plan: ParamPlan) -> dict[str | None, list[str]]:
    """Per model, the parameter labels that vary among that model's runs, in column order: what
    a made-up name shows. Computed over every run given, so names do not change with which of
    them a table happens to show."""
    return _distinguishing(*model_groups(_frame_list(df, "model", None)), plan)


def _distinguishing(groups: np.ndarray, heads: list[str | None], plan: ParamPlan
                    ) -> dict[str | None, list[str]]:
    """Per model, the parameter labels that vary among that model's runs, in column order: what
    a made-up name shows. Computed over every run given, so names do not change with which of
    them a table happens to show."""
    import numpy as np

    out: dict[str | None, list[str]] = {m: [] for m in heads}
    for key in plan.columns:
        c = plan.params[key].coded
        if c.uniques and all(u == REDACTED for u in c.uniques):
            continue  # `password=<redacted>` tells one run from another by nothing it shows
        # not set is a value too: `name=logreg` tells a loop's Pipeline from one fitted
        # later without it (each run's name shows only what it set)
        width = len(c.uniques) + 1
        pairs = groups * width + (c.codes + 1)
        if width * len(heads) <= 4 * len(pairs) + 1024:  # a table of (model, value) seen
            seen = np.bincount(pairs, minlength=width * len(heads)) > 0
            counts = seen.reshape(len(heads), width).sum(axis=1)
        else:
            counts = np.bincount(np.unique(pairs) // width, minlength=len(heads))
        set_in = np.bincount(groups[c.codes >= 0], minlength=len(heads)) > 0
        for g in np.flatnonzero((counts > 1) & set_in).tolist():
            out[heads[g]].append(plan.params[key].label)
    return out


def default_names(df: pd.DataFrame, plan: ParamPlan,
                  known: dict[str, str] | None = None) -> tuple[list[str], list[bool]]:
    """A name per run (explicit names win) and whether it was made up here.

    Made-up names are the model's family and the parameters that vary among runs of the same
    model, e.g. `RandomForest · max_depth=8 · n_estimators=100`; a name two runs would share
    gets the run's short id. `known` (run id -> name, from `names_by_id` over the whole
    experiment) names the runs it holds, so a table showing a few runs names them as the whole
    experiment does.
    """
    names, auto = names_for(_frame_list(df, "name", None), _frame_list(df, "model", None),
                            _frame_list(df, "id", ""), plan)
    if known and "id" in df.columns:
        for i, rid in enumerate(df["id"].tolist()):
            if auto[i] and rid in known:
                names[i] = known[rid]
    return names, auto


def names_for(explicit: list[Any], models: list[Any], ids: list[Any], plan: ParamPlan,
              groups: tuple[np.ndarray, list[str | None]] | None = None,
              only: list[int] | None = None) -> tuple[list[str], list[bool]]:
    """`default_names` from the runs' given names, models and ids (no frame needed);
    `groups` is `model_groups(models)` when the caller has it cheaper (the index's codes).
    With `only` (row positions), names are written for those rows alone ("" elsewhere):
    whether two runs would share a name is decided on integer keys for every run, so naming
    20 runs of 100,000 builds 20 strings."""
    import numpy as np

    n = len(ids)
    given = np.fromiter((isinstance(g, str) and bool(g.strip()) for g in explicit),
                        dtype=bool, count=n)
    groups, heads = groups or model_groups(models)
    basis = _distinguishing(groups, heads, plan)
    by_label = {p.label: p for p in plan.params.values()}
    labels = [plan.params[k].label for k in plan.columns if plan.params[k].label in by_label]
    column = {label: j for j, label in enumerate(labels)}
    # Per run: its head's text and, per label its name shows, the value's text (as ids);
    # equal keys are exactly equal names.
    head_text = [short_model(m) if m else "run" for m in heads]
    head_ids = {t: i for i, t in enumerate(dict.fromkeys(head_text))}
    keys = np.full((n, 1 + len(labels)), -1, dtype=np.int64)
    keys[:, 0] = np.array([head_ids[t] for t in head_text], dtype=np.int64)[groups]
    texts: dict[str, list[str]] = {}  # label -> " · label=value" per text id
    text_of: dict[str, np.ndarray] = {}  # label -> text id per distinct value
    for g, model in enumerate(heads):
        rows = np.flatnonzero((groups == g) & ~given)
        if not len(rows):
            continue
        count = np.zeros(len(rows), dtype=np.int64)
        for label in basis.get(model, []):
            p = by_label.get(label)
            if p is None:
                continue
            codes = p.coded.codes[rows]
            add = (codes >= 0) & (count < NAME_PARAMS)
            if add.any():
                if label not in text_of:
                    found = [f" · {label}={_name_value(u)}" for u in p.coded.uniques]
                    index = {t: i for i, t in enumerate(dict.fromkeys(found))}
                    texts[label] = list(index)
                    text_of[label] = np.array([index[t] for t in found], dtype=np.int64)
                keys[rows[add], 1 + column[label]] = text_of[label][codes[add]]
                count += add
            if (count >= NAME_PARAMS).all():
                break
    auto = ~given
    shared = np.zeros(n, dtype=bool)
    made = np.flatnonzero(auto)
    if len(made) > 1:
        _, inverse, counts = np.unique(_row_codes(keys[made]), return_inverse=True,
                                       return_counts=True)
        shared[made] = counts[inverse.reshape(-1)] > 1
    rows = np.arange(n) if only is None else np.asarray(only, dtype=np.int64)
    made_rows = rows[auto[rows]]
    # Strings for the rows asked only, a column of texts at a time (numpy object arrays).
    names = np.array(head_text, dtype=object)[groups[made_rows]]
    for j, label in enumerate(labels):
        col = keys[made_rows, 1 + j]
        hit = col >= 0
        if hit.any():
            names[hit] = names[hit] + np.array(texts[label], dtype=object)[col[hit]]
    out = [""] * n
    for i in rows[given[rows]].tolist():
        out[i] = explicit[i]
    for i, name, twice in zip(made_rows.tolist(), names.tolist(), shared[made_rows].tolist(),
                              strict=True):
        out[i] = f"{name} · {str(ids[i])[:6]}" if twice else name
    return out, auto.tolist()


def _row_codes(keys: np.ndarray) -> np.ndarray:
    """One int64 per row, equal exactly when the rows are: the columns in mixed radix,
    renumbered (`numpy.unique`) whenever the next column would overflow. `unique(axis=0)`
    sorts rows as bytes, ten times slower at 100,000 runs."""
    import numpy as np

    acc = np.zeros(len(keys), dtype=np.int64)
    span = 1
    for j in range(keys.shape[1]):
        col = keys[:, j] + 1  # -1 (not in the name) becomes 0
        width = int(col.max()) + 1 if len(col) else 1
        if span * width >= 1 << 62:
            _, acc = np.unique(acc, return_inverse=True)
            acc = acc.reshape(-1).astype(np.int64, copy=False)
            span = int(acc.max()) + 1
        acc = acc * width + col
        span *= width
    return acc


def names_by_id(df: pd.DataFrame, only: list[str] | None = None) -> dict[str, str]:
    """The made-up name of every run of `df` (explicit names are the runs' own), or of the
    runs `only` lists."""
    import pandas as pd

    names, auto = default_names(df, plan_params(df))
    ids = df["id"]
    if only is None:
        rows = range(len(df))
    else:
        rows = [i for i in pd.Index(ids).get_indexer(only).tolist() if i >= 0]
    return {str(ids.iloc[i]): names[i] for i in rows if auto[i]}


def logical_frame(df: pd.DataFrame, plan: ParamPlan,
                  known: dict[str, str] | None = None) -> pd.DataFrame:
    """The runs with one `params.<label>` column per logical parameter (recorded copies
    dropped), `name` filled with default names, `name_auto` saying which were made up."""
    import pandas as pd

    base = df[[c for c in df.columns if not c.startswith(PARAM)]].copy()
    extra: dict[str, Any] = {}
    for key, p in plan.params.items():
        if len(p.sources) == 1:
            extra[key] = df[p.sources[0]].array  # the recorded column as is: no copy
            continue
        vals = take(p.coded.uniques, p.coded.codes, None)
        try:
            extra[key] = pd.array(vals)
        except (TypeError, ValueError):
            extra[key] = pd.array(vals, dtype=object)
    names, auto = default_names(df, plan, known)
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
