"""Library annotations: which calls leave their receiver and arguments as they were.

The analysis (analysis.py) sees `df.head()` and cannot know whether `head` changes `df`; the
safe default is that any method call mutates its receiver. That default chained every re-run
of `acc = clf.score(X, y)` onto the last one and re-hashed a 2M-row frame after `df.head()`.
Like ipyflow's annotation files, these tables name the common pandas, numpy, scikit-learn and
builtin methods that do NOT mutate, keyed by the receiver's runtime type, which the recorder
checks after the cell ran (one `type()` and a few set lookups per call site).

Anything not listed stays a mutation: a missing entry only makes a slice longer, a wrong one
makes it wrong. `inplace=True` and `out=` always mutate, whatever the method.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import CallSite, CellAnalysis

# -- pandas -------------------------------------------------------------------------------------
_PANDAS_COMMON = frozenset({
    "abs", "add", "add_prefix", "add_suffix", "agg", "aggregate", "align", "all", "any",
    "apply", "applymap", "map", "asfreq", "astype", "at_time", "between_time", "bfill",
    "clip", "combine", "combine_first", "compare", "copy", "corr", "corrwith", "count", "cov",
    "cummax", "cummin", "cumprod", "cumsum", "describe", "diff", "div", "divide", "dot",
    "drop", "drop_duplicates", "droplevel", "dropna", "duplicated", "eq", "equals", "ewm",
    "expanding", "explode", "ffill", "fillna", "filter", "first", "first_valid_index",
    "floordiv", "ge", "get", "groupby", "gt", "head", "idxmax", "idxmin", "infer_objects",
    "info", "interpolate", "isin", "isna", "isnull", "items", "iterrows", "itertuples",
    "keys", "kurt", "last", "last_valid_index", "le", "lt", "mask", "max", "mean", "median",
    "melt", "memory_usage", "merge", "min", "mod", "mode", "mul", "multiply", "ne",
    "nlargest", "notna", "notnull", "nsmallest", "nunique", "pct_change", "pipe", "pivot",
    "pivot_table", "pow", "prod", "product", "quantile", "radd", "rank", "rdiv", "reindex",
    "reindex_like", "rename", "rename_axis", "reorder_levels", "replace", "resample",
    "reset_index", "rfloordiv", "rmod", "rmul", "rolling", "round", "rpow", "rsub",
    "rtruediv", "sample", "select_dtypes", "sem", "set_axis", "set_index", "shift", "skew",
    "sort_index", "sort_values", "squeeze", "stack", "std", "sub", "subtract", "sum",
    "swapaxes", "swaplevel", "tail", "take", "to_dict", "to_list", "to_numpy", "to_records",
    "to_string", "to_markdown", "to_html", "to_latex", "tolist", "transform", "transpose",
    "truediv", "truncate", "tz_convert", "tz_localize", "unique", "unstack", "value_counts",
    "var", "where", "xs", "join", "assign", "query", "eval", "between",
    "argmax", "argmin", "argsort", "searchsorted", "factorize", "repeat", "ravel", "view",
    "is_unique", "hist", "plot", "boxplot", "to_frame", "to_period", "to_timestamp",
    "convert_dtypes", "isetitem_copy", "style", "iteritems", "cut",
    # writers read the frame and write a file (files are tracked separately)
    "to_csv", "to_parquet", "to_json", "to_excel", "to_pickle", "to_feather", "to_hdf",
    "to_sql", "to_xml", "to_clipboard", "to_stata", "to_orc",
})
# Methods of objects pandas hands out (groupby, rolling, .str, .dt, .cat, Index): none of the
# names below mutates the frame they came from.
_PANDAS_DERIVED = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit", "contains", "startswith",
    "endswith", "len", "slice", "extract", "extractall", "findall", "match", "fullmatch", "pad",
    "zfill", "title", "capitalize", "casefold", "swapcase", "cat", "join", "get_dummies",
    "normalize", "strftime", "floor", "ceil", "day_name", "month_name", "size", "ngroup",
    "cumcount", "first", "last", "nth", "ohlc", "get_group", "codes", "categories",
    "as_ordered", "as_unordered", "remove_unused_categories", "to_pydatetime", "isocalendar",
    "get_level_values", "get_loc", "get_indexer", "difference", "union", "intersection",
    "symmetric_difference", "to_series", "to_flat_index", "wrap", "find", "rfind", "index",
    "rindex", "translate", "encode", "decode", "isalpha", "isdigit", "isnumeric", "isspace",
    "isupper", "islower", "istitle", "isalnum", "isdecimal", "removeprefix", "removesuffix",
    "repeat", "center", "ljust", "rjust", "partition", "rpartition", "count",
})
# Methods that change the receiver itself, on any pandas object: never pure through a chain.
_PANDAS_MUTATING = frozenset({
    "update", "insert", "pop", "set_flags", "__setitem__", "__delitem__", "isetitem",
})

# -- numpy --------------------------------------------------------------------------------------
_NUMPY_PURE = frozenset({
    "all", "any", "argmax", "argmin", "argpartition", "argsort", "astype", "byteswap_copy",
    "choose", "clip", "compress", "conj", "conjugate", "copy", "cumprod", "cumsum",
    "diagonal", "dot", "dump", "dumps", "flatten", "getfield", "item", "max", "mean", "min",
    "nonzero", "prod", "ptp", "ravel", "repeat", "reshape", "round", "searchsorted", "squeeze",
    "std", "sum", "swapaxes", "take", "tobytes", "tofile", "tolist", "tostring", "trace",
    "transpose", "var", "view", "nanmean", "__array__", "__len__", "__repr__", "__str__",
})
# In place: sort, fill, resize, put, itemset, partition, setfield, setflags, byteswap(True)
_NUMPY_MUTATING = frozenset({
    "sort", "fill", "resize", "put", "itemset", "partition", "setfield", "setflags",
    "byteswap", "__setitem__", "__iadd__",
})

# -- scikit-learn estimators --------------------------------------------------------------------
# Prediction and scoring read the fitted state; fit, partial_fit, fit_* and set_params write it.
_ESTIMATOR_PURE = frozenset({
    "predict", "predict_proba", "predict_log_proba", "decision_function", "score",
    "score_samples", "transform", "inverse_transform", "get_params", "get_feature_names_out",
    "staged_predict", "staged_predict_proba", "staged_decision_function", "apply",
    "decision_path", "kneighbors", "radius_neighbors", "get_metadata_routing", "__repr__",
    "__sklearn_tags__", "_more_tags", "__sklearn_is_fitted__", "mahalanobis",
    "get_covariance", "get_precision", "predict_joint_log_proba",
})
# Prediction leaves its arguments alone too; `transform` with `copy=False` may not.
_ESTIMATOR_ARG_SAFE = _ESTIMATOR_PURE - {"transform", "inverse_transform"}
# Fitting writes the estimator, not X and y (scikit-learn validates its input into a copy
# when it must change it), unless a `copy*` parameter is False (`LinearRegression(copy_X=
# False)` centres X in place) or the estimator holds others (a Pipeline's steps fit on X).
_FIT_ARG_SAFE = frozenset({"fit", "partial_fit"})

# -- builtins -----------------------------------------------------------------------------------
_IMMUTABLE = (str, bytes, int, float, complex, bool, tuple, frozenset, range, type(None))
_LIST_PURE = frozenset({"copy", "count", "index", "__len__", "__contains__", "__getitem__"})
_DICT_PURE = frozenset({"copy", "get", "items", "keys", "values", "__len__", "__contains__",
                        "__getitem__"})
_SET_PURE = frozenset({"copy", "difference", "intersection", "isdisjoint", "issubset",
                       "issuperset", "symmetric_difference", "union", "__len__",
                       "__contains__"})

# Plain functions (called by name) that neither mutate their arguments nor keep them.
PURE_FUNCTIONS = frozenset({
    "len", "print", "display", "repr", "str", "type", "isinstance", "issubclass", "id",
    "hash", "sorted", "list", "tuple", "set", "frozenset", "dict", "sum", "min", "max",
    "any", "all", "enumerate", "zip", "range", "reversed", "abs", "round", "format", "bool",
    "int", "float", "complex", "divmod", "pow", "iter", "map", "filter", "hasattr",
    "getattr", "callable", "vars", "dir", "ascii", "ord", "chr", "bin", "hex", "oct",
    "memoryview", "bytes", "bytearray", "open", "next",
})
# Module functions of these libraries leave their arguments alone unless listed below.
_LIBRARY_ROOTS = frozenset({"numpy", "pandas", "sklearn", "scipy", "matplotlib", "seaborn",
                            "math", "statistics", "json", "xgboost", "lightgbm", "plotly"})
# Functions (plain or methods, any library) that change their first argument in place.
ARG_MUTATORS = frozenset({"shuffle", "copyto", "put", "place", "putmask", "fill_diagonal",
                          "put_along_axis", "at"})
# `b = a.m()` where `m` may hand back a view of `a`: later writes through `b` reach `a`.
VIEW_METHODS = frozenset({
    "view", "reshape", "ravel", "transpose", "swapaxes", "squeeze", "T", "head", "tail",
    "loc", "iloc", "xs", "get", "__getitem__", "values", "to_numpy", "diagonal", "real",
    "imag", "flat", "filter",
})


_MISSING = object()


def _module_root(obj: Any) -> str:
    return type(obj).__module__.partition(".")[0]


def method_is_pure(obj: Any, method: str, *, direct: bool) -> bool:
    """Whether calling `method` on `obj` (or, when not `direct`, on something reached from
    `obj` by attributes and subscripts: `df["a"].sum()`) leaves `obj` as it was."""
    if isinstance(obj, _IMMUTABLE) and direct:
        return True
    root = _module_root(obj)
    if root == "pandas":
        if method in _PANDAS_MUTATING:
            return False
        return method in _PANDAS_COMMON or (not direct and method in _PANDAS_DERIVED)
    if root == "numpy":
        return method in _NUMPY_PURE and method not in _NUMPY_MUTATING
    if direct:
        if isinstance(obj, list):
            return method in _LIST_PURE
        if isinstance(obj, dict):
            return method in _DICT_PURE
        if isinstance(obj, (set, frozenset)):
            return method in _SET_PURE
        if _is_estimator(obj):
            return method in _ESTIMATOR_PURE
    return False


def _is_estimator(obj: Any) -> bool:
    cls = type(obj)
    return hasattr(cls, "fit") and hasattr(cls, "get_params")


def _holds_estimator(value: Any, depth: int = 0) -> bool:
    if _is_estimator(value):
        return True
    if isinstance(value, (list, tuple)) and depth < 3:
        return any(_holds_estimator(v, depth + 1) for v in value)
    return False


def _fit_leaves_args(obj: Any) -> bool:
    """A fitted estimator whose `fit` leaves X and y alone: no `copy*` setting is False and
    no attribute holds another estimator (see _FIT_ARG_SAFE)."""
    try:
        attrs = vars(obj)
    except TypeError:
        return False
    return not any((key.startswith("copy") and value is False) or _holds_estimator(value)
                   for key, value in attrs.items())


def _call_leaves_args(call: CallSite, ns: Mapping[str, Any]) -> bool:
    """Whether this call leaves the objects passed to it unchanged."""
    if call.inplace or call.func in ARG_MUTATORS:
        return False
    if call.receiver is None:
        if call.maker is not None and call.func in _FIT_ARG_SAFE:  # `Model(C=C).fit(X, y)`
            cls = ns.get(call.maker)
            return (isinstance(cls, type) and hasattr(cls, "fit")
                    and hasattr(cls, "get_params")
                    and not any(_holds_estimator(ns.get(a)) for a in call.maker_args))
        return call.func in PURE_FUNCTIONS
    obj = ns.get(call.receiver, _MISSING)
    if obj is _MISSING:
        return False
    if isinstance(obj, ModuleType):
        return obj.__name__.partition(".")[0] in _LIBRARY_ROOTS
    if _is_estimator(obj) and call.direct:
        return call.func in _ESTIMATOR_ARG_SAFE or (call.func in _FIT_ARG_SAFE
                                                     and _fit_leaves_args(obj))
    return method_is_pure(obj, call.func, direct=call.direct)


def real_mutations(analysis: CellAnalysis, ns: Mapping[str, Any]) -> list[str]:
    """The names a cell may have mutated, given what its names turned out to be.

    A name stays when the cell stored into it, deleted from it, augmented it or passed it to
    a known in-place function; when it was only the receiver of method calls, it stays unless
    every such call is annotated pure for the object's type. Modules are never mutated
    (`np.random.seed(0)` must not tie every later numpy cell to this one).
    """
    hard = set(analysis.hard_mutations)
    receivers: dict[str, list[CallSite]] = {}
    for call in analysis.calls:
        if call.receiver is not None:
            receivers.setdefault(call.receiver, []).append(call)
    out: list[str] = []
    for name in analysis.mutations:
        obj = ns.get(name, _MISSING)
        if isinstance(obj, ModuleType):
            continue
        if name in hard or name not in receivers or obj is _MISSING:
            out.append(name)
            continue
        if any(c.inplace or not method_is_pure(obj, c.func, direct=c.direct)
               for c in receivers[name]):
            out.append(name)
    return out


def possibly_changed(analysis: CellAnalysis, ns: Mapping[str, Any],
                     mutated: Iterable[str]) -> set[str]:
    """Names whose objects this cell may have changed: a superset of `mutated`, adding the
    arguments of calls not known to leave their arguments alone (`train(df)`). A cached
    fingerprint of any other object the cell touched is still valid."""
    changed = set(mutated) | set(analysis.defs)
    for call in analysis.calls:
        if call.args and not _call_leaves_args(call, ns):
            changed.update(call.args)
    return changed
