"""What a cell run left in the namespace: metrics, fitted estimators, data, widget values.

Plain functions of a namespace dict and the cell's analysis, so they are tested without a
kernel; the recorder calls them between cells. They look only at the names the cell touched,
never at the whole namespace, and they never raise for a strange object: a problem becomes a
warning in the list they are given.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Container, Iterable
from typing import Any

from ..metrics import is_metric_name
from .analysis import CellAnalysis, is_plain_literal
from .fingerprint import FingerprintCache, data_kind, fingerprint, fingerprint_file
from .guard import ObjectTimeout, object_budget, time_budget
from .values import (
    JSON_AS_IS,
    PLAIN_TYPES,
    SCALAR_TYPES,
    jsonable,
    metric_value,
    not_plain,
    numeric_scalar,
)


def read_metrics(
    ns: dict[str, Any],
    analysis: CellAnalysis,
    *,
    by_name: bool,
    watched: Iterable[str] = (),
    present: Iterable[str] = (),
    required: Iterable[str] = (),
    warnings: list[str],
) -> dict[str, Any]:
    """Metrics the cell produced.

    `by_name`: numeric scalars the cell bound to metric-like names (`%track on` mode).
    `watched`: names given by `--metric`, taken when the cell (re)bound or mutated them.
    `present`: names taken whenever they exist (session `--metric` names in a `%%track` cell).
    `required`: names the user asked for on this very cell (`%%track --metric f1`), taken
    whatever the cell did, with a warning when they do not exist.
    """
    metrics: dict[str, Any] = {}

    def take(name: str) -> None:
        metrics[name], problem = metric_value(ns[name])
        if problem:
            warnings.append(f"{name}: {problem}")

    if by_name:  # `is_metric_name` is cached in C: the filter makes no Python call per name
        for name in filter(is_metric_name, analysis.defs):
            if numeric_scalar(ns.get(name)) is not None:
                take(name)
    if watched:
        touched = set(analysis.defs) | set(analysis.mutations)
        for name in watched:
            if name in ns and name in touched:
                take(name)
    for name in present:
        if name in ns:
            take(name)
    for name in required:
        if name in ns:
            take(name)
        else:
            warnings.append(f"--metric {name}: no such variable after the cell ran")
    return metrics


def is_fitted_estimator(obj: Any) -> bool:
    """scikit-learn's own test (`check_is_fitted`, which asks a Pipeline or meta-estimator
    through `__sklearn_is_fitted__`); attributes ending in `_` for look-alikes without it."""
    cls = type(obj)
    if cls in PLAIN_TYPES:  # most names a cell binds: numbers, text, containers
        return False
    if not (hasattr(cls, "get_params") and hasattr(cls, "fit")):
        return False
    asks_itself = hasattr(cls, "__sklearn_is_fitted__")
    if not asks_itself and _has_fitted_attrs(obj):
        # what `check_is_fitted` concludes for such an object whatever its tags say, without
        # the tags (`get_tags` is most of the time it takes, after every fit cell)
        return True
    if "sklearn.utils.validation" in sys.modules:  # loaded with the estimator; never import it
        validation = sys.modules["sklearn.utils.validation"]
        try:
            validation.check_is_fitted(obj)
            return True
        except Exception as exc:
            if type(exc).__name__ == "NotFittedError":
                return False
    return asks_itself and _has_fitted_attrs(obj)  # the others were looked at above


def _has_fitted_attrs(obj: Any) -> bool:
    """scikit-learn's convention: fitting sets attributes ending in `_`."""
    try:
        attrs = vars(obj)
    except TypeError:
        return False
    return any(k.endswith("_") and not k.startswith("__") for k in attrs)


def read_estimators(ns: dict[str, Any], names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{name: {'class', 'params'}} for the fitted estimators among `names`."""
    out: dict[str, dict[str, Any]] = {}
    for name in not_plain(ns, dict.fromkeys(names)):
        obj = ns.get(name)
        if not is_fitted_estimator(obj):
            continue
        # the exact-type test first: no call for the usual number, text or None
        params = {k: v for k, v in _get_params(obj).items()
                  if type(v) in SCALAR_TYPES or is_plain_literal(v)}
        cls = type(obj)
        out[name] = {"class": f"{cls.__module__}.{cls.__qualname__}", "params": params}
    return out


# Parameter names per estimator class: scikit-learn finds them with `inspect.signature` on
# every `get_params` call, the largest part of reading a fitted model after each cell.
_PARAM_NAMES: weakref.WeakKeyDictionary[type, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _get_params(obj: Any) -> dict[str, Any]:
    """`obj.get_params(deep=True)`, with the class's parameter names remembered when the class
    keeps scikit-learn's own `get_params` and `_get_param_names` (the same walk, same result);
    a nested estimator or any override goes through the object's own method."""
    cls = type(obj)
    base = sys.modules.get("sklearn.base")
    own = getattr(base, "BaseEstimator", None)
    if (own is None or getattr(cls, "get_params", None) is not own.get_params
            or getattr(getattr(cls, "_get_param_names", None), "__func__", None)
            is not own._get_param_names.__func__):
        return obj.get_params(deep=True)
    names = _PARAM_NAMES.get(cls)
    if names is None:
        names = _PARAM_NAMES[cls] = tuple(cls._get_param_names())
    out: dict[str, Any] = {}
    plain = PLAIN_TYPES  # most parameters: numbers, text, None; no get_params to ask for
    for key in names:
        value = getattr(obj, key)
        if type(value) not in plain and hasattr(value, "get_params") \
                and not isinstance(value, type):
            return obj.get_params(deep=True)  # a nested estimator: its own walk
        out[key] = value
    return out


def estimator_params(estimators: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Hyper-parameters as run parameters: `model.max_depth`. (Most are floats, text, flags
    and None, taken as they are without a call each: an estimator has a dozen or more.)"""
    return {f"{name}.{k}": v if type(v) in JSON_AS_IS else jsonable(v)
            for name, est in estimators.items() for k, v in est["params"].items()}


def read_data(
    ns: dict[str, Any],
    names: Iterable[str],
    files_read: Iterable[str],
    *,
    warn_missing_files: bool,
    warnings: list[str],
    profiler: Any = None,
    cache: FingerprintCache | None = None,
    changed: Container[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Fingerprints of the DataFrames, Series and arrays among `names`, and of files read.

    With a `cache`, an object whose name is not in `changed` (what the cell could have
    changed: effects.possibly_changed) keeps its cached fingerprint while its guard holds.
    `profiler(obj, fp)` (validate/hook.py) adds a profile reference to new fingerprints.
    """
    out: dict[str, dict[str, Any]] = {}
    names = dict.fromkeys(names)
    if cache is not None and changed is not None:
        # changed but not read here: hash it afresh when next read (only data is cached)
        for name in not_plain(ns, [name for name in changed if name not in names]):
            cache.forget(ns.get(name))
    budget: float | None = None  # read at the first data object: most cells have none
    for name in not_plain(ns, names):
        obj = ns.get(name)
        kind = data_kind(obj)
        if kind is None:
            continue
        if budget is None:
            budget = object_budget()
        fresh = changed is None or name in changed
        if cache is not None and cache.too_slow(obj, changed=fresh):
            warnings.append(f"{name} not fingerprinted: hashing it took longer than "
                            f"{budget:g} s before and nothing changed it since")
            continue
        try:
            if budget and _may_be_slow(obj, kind):
                with time_budget(budget, ObjectTimeout):
                    fp = _fingerprint(obj, kind, cache, fresh)
            else:  # small numbers: one pass, no timer to arm
                fp = _fingerprint(obj, kind, cache, fresh)
        except ObjectTimeout:
            if cache is not None:
                cache.note_slow(obj)
            warnings.append(f"{name} not fingerprinted: hashing it took longer than "
                            f"{budget:g} s (a huge object, or values with a slow __str__ or "
                            "__repr__?); MLOPS_NB_OBJECT_BUDGET sets the limit")
            continue
        except Exception as exc:
            warnings.append(f"could not fingerprint {name}: {exc!r}")
            continue
        if fp is not None:
            out[name] = fp
            if profiler is not None:
                profiler(obj, fp)
    for path in files_read:
        fp = fingerprint_file(path)
        if fp is not None:
            out[f"file:{path}"] = fp
        elif warn_missing_files:
            warnings.append(f"read {path!r} but it is not a file now")
    if profiler is not None:
        profiler.link_files(out)
    return out


_SMALL_ARRAY_BYTES = 1 << 20


def _may_be_slow(obj: Any, kind: str) -> bool:
    """Worth a timer of its own: frames (object columns call into Python per value), arrays
    of objects, and arrays too big to hash in a blink. A small numeric array is not."""
    if kind != "ndarray":
        return True
    return bool(obj.dtype.hasobject) or obj.nbytes > _SMALL_ARRAY_BYTES


def _fingerprint(obj: Any, kind: str, cache: FingerprintCache | None, changed: bool
                 ) -> dict[str, Any] | None:
    if cache is not None:
        return cache.fingerprint(obj, changed=changed, kind=kind)
    return fingerprint(obj)


def read_widget_values(
    ns: dict[str, Any], value_reads: dict[str, str], warnings: list[str]
) -> dict[str, Any]:
    """`depth = slider.value`: the value the widget had, frozen for export to replay."""
    out: dict[str, Any] = {}
    for name, source in value_reads.items():
        if not type(ns.get(source)).__module__.startswith("ipywidgets"):
            continue
        value = ns.get(name)
        if is_plain_literal(value):
            out[name] = value
        else:
            warnings.append(f"{name} = {source}.value is a {type(value).__name__}, "
                            "not a literal: export cannot freeze it")
    return out
