"""scikit-learn autologging: metric calls, `score`, cross-validation, searches, which model.

Modelled on MLflow's sklearn autolog: while tracking is on, `sklearn.metrics` scorers and
losses, estimator methods (`fit`, `predict*`, `decision_function`, `transform`, `score`) and
the cross-validation helpers are wrapped; every call made by the notebook's own code (not by
scikit-learn calling itself: a depth counter skips nested calls) reports what it computed to a
sink. Unpatching puts every original object back, so identity checks hold after `%track off`.

Two callers share this file: the kernel's recorder, and the exported `train.py`, which embeds
this module's source so a script recomputes exactly the metrics the notebook recorded, under
exactly the same names. So it imports only the standard library at module level, and names are
chosen from the code (call sites, variable names), never from run-time accidents.

Why a metric's name has a data suffix only sometimes: `accuracy_score` is what a person calls
the test accuracy they computed; only when one cell computes the same metric on two data sets
(train and test, or two slices) do the names need the data (`accuracy_score_X_test`).
"""

from __future__ import annotations

import ast  # loaded with IPython already: not an import cost at `%load_ext`
import contextlib
import copy
import functools
import importlib.abc
import importlib.machinery
import re
import sys
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from itertools import compress, repeat
from operator import is_, itemgetter
from typing import Any

# Estimator methods whose output is traced back to the estimator (which model predicted).
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function",
                   "transform")
CV_FUNCTIONS = ("cross_val_score", "cross_validate", "validation_curve", "learning_curve",
                "permutation_test_score")
_NOT_METRICS = frozenset({"make_scorer", "get_scorer", "check_scoring", "get_scorer_names",
                          "confusion_matrix", "multilabel_confusion_matrix"})
_REPORT = "classification_report"
# Four results in one call: precision, recall and F-beta (each a metric), and the support.
_PRFS = "precision_recall_fscore_support"
_MAX_PER_CLASS = 20  # more classes than this with `average=None`: no metric per class
# Metrics whose names do not say so: scalar scores all the same. `auc(fpr, tpr)` is the area
# under whatever curve it is given: named `auc`, its model traced through the curve's arrays.
_OTHER_METRICS = frozenset({"log_loss", "matthews_corrcoef", "auc"})
# Curves: not metrics, but their arrays carry the model of the scores they were computed from.
_CURVES = frozenset({"roc_curve", "precision_recall_curve", "det_curve"})
# Estimator attributes that hold what a *CV estimator chose (`RidgeCV().alpha_`).
_CHOSEN = ("alpha_", "C_", "l1_ratio_", "gamma_", "n_neighbors_", "n_components_")
_MAX_TRACED = 256
_MAX_NAMED = 256
_MAX_FRAMES = 12


class Call:
    """One metric-like value computed by the notebook's code, before it is named.

    A plain class, not a dataclass: an export runs this module's source as `_mlops_autolog`
    without registering it in `sys.modules`, and `dataclass` looks its module up there."""

    __slots__ = ("_est", "data", "extra", "fn", "kind", "labels", "model", "site", "steps",
                 "value")

    def __init__(self, kind: str, fn: str, site: Any, data: str | None, value: Any,
                 model: str | None = None, steps: list[Any] | None = None,
                 extra: dict[str, Any] | None = None, est: Any = None,
                 labels: bool = False) -> None:
        self.kind = kind  # "metric" | "search" | "params" | "evaluated" (cross-validated)
        self.fn = fn
        self.site = site
        self.data = data
        # `data` names the true labels (`y_test`), not the inputs of the predictions (`X_test`):
        # they were made by a model the autolog does not see (the notebook's own class)
        self.labels = labels
        self.value = value
        self.model = model
        self.steps = steps
        self.extra = extra
        # The estimator itself, named after the cell if it had no name yet: held weakly, but
        # the unfitted one a cross-validation was handed (its record is read after the cell)
        self._est = est if kind == "evaluated" else _hold(est)

    @property
    def est(self) -> Any:
        return _held(self._est)


def _hold(obj: Any) -> Any:
    """`obj` weakly where it can be: what capture remembers during a cell must not keep a
    loop's models (or arrays) alive after the notebook let them go. A loop fitting twenty
    forests kept all twenty until the cell ended; untracked, each is freed when the next is
    bound."""
    if obj is None:
        return None
    try:
        return weakref.ref(obj)
    except TypeError:
        return obj


def _held(held: Any) -> Any:
    return held() if type(held) is weakref.ref else held


# -- the state shared by every wrapper --------------------------------------------------------
class _State:
    def __init__(self) -> None:
        self.depth = 0
        self.sink: Callable[[Call], None] | None = None
        # id(output) -> (ref, est, X) and id(obj) -> (obj, name), objects held as `_hold` does
        self.traced: dict[int, tuple[Any, Any, str | None]] = {}
        self.names: dict[int, tuple[Any, str | None]] = {}
        self.last_model: Any = None
        self.root_globals: dict[str, Any] | None = None

    def reset_cell(self) -> None:
        self.traced.clear()
        self.names.clear()
        self.last_model = None

    def __reduce__(self) -> Any:
        """Pickled, as a notebook's own estimator class is with its wrapped methods when
        cloudpickle sends it to joblib's workers (`GridSearchCV(..., n_jobs=-1)`), the state is
        `False`: no tracking there, and nothing of this process (the sink holds the kernel's
        shell, its history database connection) goes along."""
        return (bool, ())

    def after_method(self, est: Any, method: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any], result: Any) -> None:
        """What a wrapped estimator method does after the call, reached through the state so
        the wrapper refers to nothing else (`_after_method`, looked up when called: the
        benchmark's clock wraps it in the module)."""
        _after_method(est, method, args, kwargs, result)


STATE = _State()


def _frames() -> list[Any]:
    """The notebook's frames from the innermost user frame outward to the cell's module frame.

    Frames of this file are skipped; the walk stops at the first module-level frame, which is
    the cell (kernel) or the script (export), so names are looked up where the user wrote them.
    """
    out = []
    f = sys._getframe(2)
    here = __file__ if "__file__" in globals() else None
    for _ in range(_MAX_FRAMES):
        if f is None:
            break
        if f.f_code.co_filename != here:
            out.append(f)
            if f.f_locals is f.f_globals:
                break
        f = f.f_back
    return out


def _library_internal(frames: list[Any]) -> bool:
    """The call was made by scikit-learn itself on the notebook's behalf, outside its metrics
    package: `permutation_importance` scoring each permuted copy of the data, a display
    or a selector evaluating internally. Those scores are how the function works, not the
    notebook's metrics (it recorded `score_X_te` and `score_X_permuted`, after its own local
    variable). A scorer the notebook calls (`get_scorer("f1")(clf, X, y)`) runs in
    `sklearn.metrics` and counts; so does a metric inside a helper module of the project."""
    where = _SKLEARN_DIRS[0]
    if where is None:
        module = sys.modules.get("sklearn")
        path = getattr(module, "__file__", None)
        if not path:
            return False
        root = path[: -len("__init__.py")]
        where = _SKLEARN_DIRS[0] = (root, root + "metrics")
    root, metrics = where
    for f in frames:
        name = f.f_code.co_filename
        if name.startswith(root) and not name.startswith(metrics):
            return True
    return False


_SKLEARN_DIRS: list[tuple[str, str] | None] = [None]


def _site(frames: list[Any]) -> Any:
    """Where the call was written: the same call in a loop is one metric, two calls are two.

    The whole chain of frames counts, so a helper called on train then on test from two lines
    is two sites. Values are only compared within one cell, never stored. Each frame's file
    name says which text its line is a line of (`bound_names`): the cell's, or a magic's
    body compiled on its own (`%%time`'s `<timed exec>`).
    """
    return tuple((id(f.f_code), f.f_lineno, f.f_lasti, f.f_code.co_filename) for f in frames)


def _name_of(obj: Any, frames: list[Any]) -> str | None:
    """The variable that holds `obj`, outermost frame first (`X_test`, not a helper's `X`)."""
    if obj is None:
        return None
    key = id(obj)
    hit = STATE.names.get(key)
    if hit is not None and _held(hit[0]) is obj:
        return hit[1]
    found = _held_by(obj, frames)
    if len(STATE.names) < _MAX_NAMED:
        STATE.names[key] = (_hold(obj), found)
    return found


def _held_by(obj: Any, frames: list[Any]) -> str | None:
    """A global of the notebook (or script) that the code running mentions and that holds
    `obj`, from the outermost frame in; else a local of a function on the way.

    Only the names the code on the stack mentions (`co_names`) are looked up, never the whole
    namespace: a notebook's grows by IPython's `_i7` and `_7` with every cell run, and reading
    each of its values costs a cache miss, so a scan made naming a model cost more with each
    cell of the session (0.4 ms a `score` after 1,500 cells). The name is the one the code
    uses, too, not whichever alias the session bound first, so the exported script, where only
    the cells the run depended on bind names, finds the same one.
    """
    if not frames:
        return None
    outer = frames[-1]
    if outer.f_locals is outer.f_globals:  # the cell's (or script's) module frame
        for f in reversed(frames):
            name = name_holding(outer.f_globals, obj, among=f.f_code.co_names)
            if name is not None:
                return name
    for f in reversed(frames):
        if f.f_locals is not f.f_globals:  # a function's locals are few: scanned
            name = name_holding(f.f_locals, obj)
            if name is not None:
                return name
    return None


def name_holding(space: dict[str, Any], obj: Any, among: Iterable[str] | None = None
                 ) -> str | None:
    """The first name not starting with `_` that holds `obj` in `space`: of the names `among`,
    each looked up, or of the whole mapping, compared by identity in C."""
    if among is not None:
        held = space.get
        return next((n for n in among if held(n) is obj and not n.startswith("_")), None)
    return next((n for n in compress(space.keys(), map(is_, space.values(), repeat(obj)))
                 if not n.startswith("_")), None)


def _trace(out: Any, est: Any, xname: str | None) -> None:
    try:
        ref: Any = weakref.ref(out)
    except TypeError:
        ref = out
    if len(STATE.traced) >= _MAX_TRACED:
        STATE.traced.pop(next(iter(STATE.traced)))
    STATE.traced[id(out)] = (ref, _hold(est), xname)


def _traced(obj: Any) -> tuple[Any, str | None] | None:
    hit = STATE.traced.get(id(obj))
    if hit is None:  # a view of a prediction (`predict_proba(X)[:, 1]`) is that prediction's
        base = getattr(obj, "base", None)
        if base is None or type(obj).__module__ != "numpy":
            return None
        hit = STATE.traced.get(id(base))
        if hit is None:
            return None
        return (_held(hit[1]), None) if _held(hit[0]) is base else None  # a part of X
    ref, est, xname = hit
    return (_held(est), xname) if _held(ref) is obj else None


def numeric(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        if getattr(value, "shape", None) == () and hasattr(value, "item"):
            item = value.item()
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                return item
    except Exception:
        return None
    return None


def _emit(call: Call) -> None:
    sink = STATE.sink
    if sink is not None:
        sink(call)


# -- metric functions -------------------------------------------------------------------------
class MetricWrapper:
    """Stands in for a `sklearn.metrics` function; pickles as the original (make_scorer)."""

    def __init__(self, original: Callable[..., Any], kind: str) -> None:
        functools.update_wrapper(self, original)
        self.original = original
        self.kind = kind

    def __reduce__(self) -> Any:  # `copy.copy` of a function is the function: no mlops_nb
        return (copy.copy, (self.original,))  # needed where it is unpickled (model serving)

    def __get__(self, obj: Any, owner: Any = None) -> Any:  # behave like a function in a class
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        st = STATE
        if st.depth or st.sink is None:
            return self.original(*args, **kwargs)
        st.depth += 1
        try:
            result = self.original(*args, **kwargs)
        finally:
            st.depth -= 1
        try:  # noqa: SIM105 (suppress() costs a context manager on a hot path)
            _observe(self, args, kwargs, result)
        except Exception:  # capture must never break the user's call
            pass
        return result


def _observe(w: MetricWrapper, args: tuple[Any, ...], kwargs: dict[str, Any],
             result: Any) -> None:
    frames = _frames()
    if w.kind in ("metric", "report", "prfs") and _library_internal(frames):
        return
    site = _site(frames)
    if w.kind == "metric":
        value = numeric(result)
        if value is None:
            return
        y_true = args[0] if args else next(iter(kwargs.values()), None)
        y_pred = args[1] if len(args) > 1 else None
        if y_pred is None:
            for k in ("y_pred", "y_score", "y_prob", "y_proba", "probas_pred", "labels_pred",
                      "X"):
                if k in kwargs:
                    y_pred = kwargs[k]
                    break
        _emit(_metric_call(w.__name__, site, frames, value, y_true, y_pred))
    elif w.kind == "report":
        report = result
        if isinstance(result, str):
            kw = dict(kwargs, output_dict=True)
            STATE.depth += 1
            try:
                report = w.original(*args, **kw)
            finally:
                STATE.depth -= 1
        y_true = args[0] if args else kwargs.get("y_true")
        y_pred = args[1] if len(args) > 1 else kwargs.get("y_pred")
        for key, value in _report_metrics(report).items():
            _emit(_metric_call(f"report_{key}", site, frames, value, y_true, y_pred))
    elif w.kind == "prfs":
        _observe_prfs(site, frames, args, kwargs, result)
    elif w.kind in CV_FUNCTIONS:
        _observe_cv(w.kind, site, frames, args, kwargs, result)
    elif w.kind == "curve" and isinstance(result, tuple):
        scores = args[1] if len(args) > 1 else next(
            (kwargs[k] for k in ("y_score", "probas_pred") if k in kwargs), None)
        traced = _traced(scores) if scores is not None else None
        if traced is None:  # as a metric call would: the last model, the labels' name
            y_true = args[0] if args else kwargs.get("y_true")
            traced = (STATE.last_model, _name_of(y_true, frames))
        for part in result:  # `fpr, tpr, _ = roc_curve(...)`; `auc(fpr, tpr)` finds them
            _trace(part, *traced)


def _metric_call(fn: str, site: Any, frames: list[Any], value: Any, y_true: Any,
                 y_pred: Any) -> Call:
    traced = _traced(y_pred) if y_pred is not None else None
    labels = False
    if traced is not None:
        est, data = traced
        if data is None:
            data, labels = _name_of(y_true, frames), True
    else:
        est, data, labels = STATE.last_model, _name_of(y_true, frames), True
    return Call("metric", fn, site, data, value, model=_model_name(est, frames), est=est,
                labels=labels)


def _observe_prfs(site: Any, frames: list[Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any], result: Any) -> None:
    """`p, r, f, _ = precision_recall_fscore_support(y, pred, average='binary')`: a tuple,
    no one number, so no metric at all (its name does not end in `_score` either). Its
    parts are named as it documents them, `precision`, `recall` and `fbeta_score` (`f1`
    at its default beta of 1, as everyone calls it); the support is a count, not a metric.
    With `average=None` each is an array over the classes: one metric per class
    (`precision_setosa`, labels as scikit-learn orders them), up to _MAX_PER_CLASS."""
    if not (isinstance(result, tuple) and len(result) == 4):
        return
    y_true = args[0] if args else kwargs.get("y_true")
    y_pred = args[1] if len(args) > 1 else kwargs.get("y_pred")
    beta = kwargs.get("beta", 1.0)
    names = ("precision", "recall", "f1" if beta == 1 else "fbeta_score")
    values = [numeric(v) for v in result[:3]]
    if None not in values:
        parts = list(zip(names, values, strict=True))
    else:
        parts = _per_class(names, result[:3], kwargs.get("labels"), y_true, y_pred)
    for name, value in parts:
        call = _metric_call(name, site, frames, value, y_true, y_pred)
        call.extra = {"part": name}  # its own series, never another part's (`bound_names`)
        _emit(call)


def _per_class(names: tuple[str, ...], arrays: tuple[Any, ...], labels: Any, y_true: Any,
               y_pred: Any) -> list[tuple[str, Any]]:
    try:
        if labels is None:
            from sklearn.utils.multiclass import unique_labels  # what the metric used

            labels = unique_labels(y_true, y_pred)
        labels = list(labels)
        columns = [[numeric(v) for v in arr] for arr in arrays]
    except Exception:
        return []
    if not 0 < len(labels) <= _MAX_PER_CLASS or any(
            len(col) != len(labels) or None in col for col in columns):
        return []
    tags = [re.sub(r"\W+", "_", str(label)).strip("_") or str(i)
            for i, label in enumerate(labels)]
    if len(set(tags)) != len(tags):  # labels that read alike (`a b`, `a-b`): by position
        tags = [str(i) for i in range(len(labels))]
    return [(f"{name}_{tag}", v) for name, col in zip(names, columns, strict=True)
            for tag, v in zip(tags, col, strict=True)]


def _model_name(est: Any, frames: list[Any]) -> str | None:
    if est is None:
        return None
    name = _name_of(est, frames)
    if name is None:
        return None
    return name


def _report_metrics(report: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(report, dict):
        return out
    if numeric(report.get("accuracy")) is not None:
        out["accuracy"] = numeric(report["accuracy"])
    for avg, prefix in (("macro avg", "macro"), ("weighted avg", "weighted"),
                        ("micro avg", "micro")):
        block = report.get(avg)
        if isinstance(block, dict):
            for k, short in (("precision", "precision"), ("recall", "recall"),
                             ("f1-score", "f1")):
                v = numeric(block.get(k))
                if v is not None:
                    out[f"{prefix}_{short}"] = v
    return out


def _scoring_names(estimator: Any, scoring: Any) -> list[str]:
    if isinstance(scoring, str):
        return [scoring]
    if isinstance(scoring, (list, tuple, set)):
        return [str(s) for s in scoring]
    if isinstance(scoring, dict):
        return [str(k) for k in scoring]
    if scoring is None:
        kind = getattr(estimator, "_estimator_type", None)
        try:
            from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier, is_regressor

            kind = ("classifier" if is_classifier(estimator) else
                    "regressor" if is_regressor(estimator) else kind)
            if kind is None:  # `class KDEClassifier(BaseEstimator, ClassifierMixin)`: mixins
                # in the wrong order hide the tags, but the default scorer is still the
                # mixin's `score`: accuracy, or R^2
                score = getattr(type(estimator), "score", None)
                kind = ("classifier" if score is ClassifierMixin.score else
                        "regressor" if score is RegressorMixin.score else None)
        except Exception:
            pass
        return ["accuracy" if kind == "classifier" else "r2" if kind == "regressor"
                else "score"]
    return [getattr(scoring, "__name__", None) or getattr(
        getattr(scoring, "_score_func", None), "__name__", "score")]


def _mean_std(values: Any) -> tuple[Any, Any, list[Any]] | None:
    import numpy as np  # loaded already: scikit-learn returned these values

    try:
        arr = np.asarray(values, dtype=float).ravel()
    except Exception:
        return None
    if arr.size == 0:
        return None
    # np.mean/np.std: the very arithmetic notebooks print (`scores.mean()`), bit for bit.
    return float(arr.mean()), float(arr.std()), [float(v) for v in arr]


def _observe_cv(fn: str, site: Any, frames: list[Any], args: tuple[Any, ...],
                kwargs: dict[str, Any], result: Any) -> None:
    estimator = args[0] if args else kwargs.get("estimator")
    scoring = kwargs.get("scoring")
    data = _name_of(args[1] if len(args) > 1 else kwargs.get("X"), frames)
    model = None  # CV fits clones: no fitted model stands behind these scores
    names = _scoring_names(estimator, scoring)

    def put(metric: str, values: Any, pick: str = "mean") -> None:
        ms = _mean_std(values)
        if ms is None:
            return
        mean, std, folds = ms
        # each its own part: `acc = cross_val_score(...).mean()` names the mean, and the std
        # of the same call site must not follow it under that name (`bound_names`)
        _emit(Call("metric", f"{metric}_mean", site, data, mean, model=model, steps=folds,
                   extra={"part": "mean"}))
        _emit(Call("metric", f"{metric}_std", site, data, std, model=model,
                   extra={"part": "std"}))

    if estimator is not None and callable(getattr(estimator, "get_params", None)):
        # what was cross-validated: the run's model and hyper-parameters, though unfitted
        _emit(Call("evaluated", fn, site, data, None, model=_name_of(estimator, frames),
                   est=estimator))
    if fn == "cross_val_score":
        put(f"cv_{names[0]}", result)
    elif fn == "cross_validate" and isinstance(result, dict):
        for key, values in result.items():
            if not isinstance(key, str) or not key.startswith(("test_", "train_")):
                continue
            split, _, which = key.partition("_")
            which = names[0] if which == "score" else which
            put(f"cv_{split}_{which}" if split == "train" else f"cv_{which}", values)
    elif fn in ("validation_curve", "learning_curve") and isinstance(result, tuple):
        test = result[-1] if fn == "validation_curve" else result[2]
        train = result[-2] if fn == "validation_curve" else result[1]
        prefix = "vc" if fn == "validation_curve" else "lc"
        for split, scores in (("test", test), ("train", train)):
            try:
                means = [float(sum(r) / len(r)) for r in scores.tolist()]
            except Exception:
                continue
            if not means:
                continue
            value = max(means) if fn == "validation_curve" else means[-1]
            label = "best" if fn == "validation_curve" else "last"
            _emit(Call("metric", f"{prefix}_{split}_{names[0]}_{label}", site, data, value,
                       model=model, steps=means))
    elif fn == "permutation_test_score" and isinstance(result, tuple) and len(result) == 3:
        score, _null, pvalue = result  # the null distribution is 100 scores of shuffled labels
        for metric, value in ((f"permutation_{names[0]}", score),
                              (f"permutation_{names[0]}_pvalue", pvalue)):
            if numeric(value) is not None:
                _emit(Call("metric", metric, site, data, numeric(value), model=model))


# -- estimator methods ------------------------------------------------------------------------
def _wrap_method(original: Callable[..., Any], method: str) -> Callable[..., Any]:
    # A real function (scikit-learn's metadata routing asks `inspect.isfunction`), reaching
    # nothing but `STATE` and its closure: a notebook's class is pickled by value with it.
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        st = STATE
        if not st or st.depth or st.sink is None:  # `False` where it was unpickled
            return original(self, *args, **kwargs)
        st.depth += 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            st.depth -= 1
        try:  # noqa: SIM105 (suppress() costs a context manager on a hot path)
            st.after_method(self, method, args, kwargs, result)
        except Exception:  # capture must never break the user's call
            pass
        return result

    wrapper.__mnb_original__ = original  # type: ignore[attr-defined]
    return wrapper


class _WrappedDescriptor:
    """Wraps a descriptor such as sklearn's `available_if`, keeping `hasattr` truthful."""

    def __init__(self, original: Any, method: str) -> None:
        self.original = original
        self.method = method
        self.__doc__ = getattr(original, "__doc__", None)

    def __set_name__(self, owner: Any, name: str) -> None:
        pass

    def __reduce__(self) -> Any:  # a notebook's class pickled by value: the original goes
        return (copy.copy, (self.original,))

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        bound = self.original.__get__(obj, owner)  # raises AttributeError when unavailable
        if obj is None:
            return bound
        method = self.method

        @functools.wraps(bound)
        def call(*args: Any, **kwargs: Any) -> Any:
            st = STATE
            if st.depth or st.sink is None:
                return bound(*args, **kwargs)
            st.depth += 1
            try:
                result = bound(*args, **kwargs)
            finally:
                st.depth -= 1
            with contextlib.suppress(Exception):
                _after_method(obj, method, args, kwargs, result)
            return result

        return call


def _after_method(est: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                  result: Any) -> None:
    if method in PREDICT_METHODS or method == "fit_predict":
        frames = _frames()
        X = args[0] if args else kwargs.get("X")
        _trace(result, est, _name_of(X, frames))
        STATE.last_model = est
    elif method == "score":
        value = numeric(result)
        if value is None:
            return
        frames = _frames()
        if _library_internal(frames):
            return
        X = args[0] if args else kwargs.get("X")
        loop_var = _loop_variable(est, frames[0]) if frames else None
        fn = f"{loop_var or type(est).__name__}_score"
        _emit(Call("metric", fn, _site(frames), _name_of(X, frames), value,
                   model=_model_name(est, frames), est=est))
    elif method in ("fit", "fit_transform"):
        STATE.last_model = est
        if hasattr(est, "cv_results_") and hasattr(est, "best_params_"):
            _observe_search(est)
        else:
            _observe_chosen(est, args, kwargs)


_LOOP_TARGETS: dict[str, frozenset[str]] = {}
_FOR_WORD = re.compile(r"\bfor\b")


def _loop_variable(est: Any, frame: Any) -> str | None:
    """The `for` variable holding `est` where its `score` was called, if one does.

    `for name, model in models.items(): model.score(...)` scores a different class each time:
    named after the variable (`model_score`), every iteration's run has the same metric, and
    the exported script, running one iteration, names it the same. The loop variables come
    from the source of the frame's file (a cell, or train.py), parsed once per file.
    """
    filename = frame.f_code.co_filename
    targets = _LOOP_TARGETS.get(filename)
    if targets is None:
        targets = frozenset()
        with contextlib.suppress(Exception):
            import linecache

            source = "".join(linecache.getlines(filename))
            # each cell is a file of its own: most have no loop to parse (and `for` inside
            # `fit_transform` or `format` is no loop)
            if _FOR_WORD.search(source):
                tree = ast.parse(source)
                targets = frozenset(n.id for node in ast.walk(tree)
                                    if isinstance(node, (ast.For, ast.comprehension))
                                    for n in ast.walk(node.target) if isinstance(n, ast.Name))
        if len(_LOOP_TARGETS) >= _MAX_NAMED:
            _LOOP_TARGETS.clear()
        _LOOP_TARGETS[filename] = targets
    if not targets:
        return None
    space = frame.f_locals
    return next((t for t in sorted(targets) if space.get(t) is est), None)


def _observe_search(search: Any) -> None:
    frames = _frames()
    model = _model_name(search, frames)
    scoring = getattr(search, "scoring", None)
    refit = getattr(search, "refit", True)
    if isinstance(refit, str):
        name = refit
    else:
        name = _scoring_names(getattr(search, "estimator", None), scoring)[0]
    best = numeric(getattr(search, "best_score_", None))
    params = {k: v for k, v in dict(getattr(search, "best_params_", {}) or {}).items()}
    candidates = _candidates(search, refit if isinstance(refit, str) else "score")
    _emit(Call("search", f"best_cv_{name}", _site(frames), None, best, model=model,
               extra={"params": params, "candidates": candidates, "metric": f"cv_{name}"},
               est=search))


def _candidates(search: Any, key: str) -> list[dict[str, Any]]:
    """Every candidate of a search as {params, metrics, rank}, best first."""
    res = getattr(search, "cv_results_", None)
    if not isinstance(res, dict):
        return []
    rank = res.get(f"rank_test_{key}")
    params = res.get("params")
    if rank is None or params is None:
        return []
    out = []
    for i, p in enumerate(params):
        metrics = {}
        for k, values in res.items():
            if k.startswith(("mean_test_", "std_test_", "mean_train_")):
                v = numeric(values[i])
                if v is not None:
                    metrics[k] = v
        out.append({"params": dict(p), "metrics": metrics, "rank": int(rank[i])})
    out.sort(key=lambda c: c["rank"])
    return out


def _observe_chosen(est: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
                    ) -> None:
    if not type(est).__name__.endswith("CV"):
        return
    chosen = {a: numeric(getattr(est, a, None)) for a in _CHOSEN}
    chosen = {a: v for a, v in chosen.items() if v is not None}
    if "C_" not in chosen and getattr(est, "C_", None) is not None:  # one C per class
        with contextlib.suppress(Exception):
            cs = {float(c) for c in est.C_}
            if len(cs) == 1:
                chosen["C_"] = cs.pop()
    best = numeric(getattr(est, "best_score_", None))
    folds = _cv_folds(est)
    if not chosen and best is None and folds is None:
        return
    frames = _frames()
    model = _model_name(est, frames)
    site = _site(frames)
    if folds is not None:  # as cross_val_score would name it: `cv_accuracy_mean`, folds as steps
        metric, values = folds
        ms = _mean_std(values)
        if ms is not None:
            X = args[0] if args else (kwargs or {}).get("X")
            data = _name_of(X, frames)
            _emit(Call("metric", f"cv_{metric}_mean", site, data, ms[0], model=model,
                       steps=ms[2], est=est))
            _emit(Call("metric", f"cv_{metric}_std", site, data, ms[1], model=model, est=est))
    _emit(Call("params", f"{type(est).__name__}", site, None, best, model=model,
               extra={"params": chosen}, est=est))


def _cv_folds(est: Any) -> tuple[str, Any] | None:
    """(scoring, fold scores at the chosen value) of a *CV estimator that keeps its folds:
    `LogisticRegressionCV.scores_` (folds x Cs), `LassoCV`/`ElasticNetCV.mse_path_`
    (alphas x folds). The chosen value is the best mean over folds, as the estimator chose."""
    import numpy as np  # loaded already: scikit-learn fitted the estimator

    try:
        scores = getattr(est, "scores_", None)
        if isinstance(scores, dict) and scores:
            grid = np.asarray(next(iter(scores.values())), dtype=float)
            grid = grid.reshape(grid.shape[0], -1)  # folds x candidates
            best = int(np.argmax(grid.mean(axis=0)))
            scoring = getattr(est, "scoring", None)
            default = scoring is None or (isinstance(scoring, str) and scoring == "warn")
            name = "accuracy" if default else _scoring_names(est, scoring)[0]
            return name, grid[:, best]
        path = getattr(est, "mse_path_", None)
        if path is not None:
            grid = np.asarray(path, dtype=float)
            grid = grid.reshape(-1, grid.shape[-1])  # candidates x folds
            best = int(np.argmin(grid.mean(axis=1)))
            return "mse", grid[best]
    except Exception:
        return None
    return None


# -- installing and removing patches ----------------------------------------------------------
class Patcher:
    """Every patch applied, so `unpatch` puts back exactly what was there."""

    def __init__(self) -> None:
        self.module_attrs: list[tuple[Any, str, Any]] = []  # (module, name, original)
        self.class_attrs: list[tuple[type, str, Any]] = []
        self.ns_swaps: list[tuple[dict[str, Any], str, Any, Any]] = []
        # the notebook's own modules' namespaces (`swap_modules`), by id
        self.spaces: dict[int, dict[str, Any]] = {}
        self.wrappers: dict[int, Any] = {}  # id(original) -> wrapper
        self.patched_classes: set[type] = set()
        self.patched_methods: set[tuple[type, str]] = set()
        self.init_subclass: tuple[type, Any] | None = None
        self.finder: ImportWatcher | None = None
        self.metrics_done = False
        self.cv_done = False
        self.base_done = False

    @property
    def active(self) -> bool:
        return bool(self.module_attrs or self.class_attrs or self.finder or self.init_subclass)

    # module-level functions ------------------------------------------------------------------
    def _swap(self, module: Any, name: str, kind: str) -> None:
        original = getattr(module, name, None)
        if original is None or isinstance(original, MetricWrapper) or not callable(original):
            return
        wrapper = self.wrappers.get(id(original))
        if wrapper is None:
            wrapper = MetricWrapper(original, kind)
            self.wrappers[id(original)] = wrapper
        self.module_attrs.append((module, name, original))
        setattr(module, name, wrapper)

    def patch_metrics(self, metrics: Any) -> None:
        if self.metrics_done:
            return
        self.metrics_done = True
        for name in list(getattr(metrics, "__all__", dir(metrics))):
            if name.startswith("_") or name in _NOT_METRICS:
                continue
            obj = getattr(metrics, name, None)
            if not callable(obj) or isinstance(obj, type):
                continue
            if name == _REPORT:
                self._swap(metrics, name, "report")
            elif name == _PRFS:
                self._swap(metrics, name, "prfs")
            elif name in _CURVES:
                self._swap(metrics, name, "curve")
            elif name.endswith(("_score", "_error", "_loss")) or name in _OTHER_METRICS:
                self._swap(metrics, name, "metric")

    def patch_model_selection(self, ms: Any) -> None:
        if self.cv_done:
            return
        self.cv_done = True
        for name in CV_FUNCTIONS:
            self._swap(ms, name, name)

    # estimator classes -------------------------------------------------------------------------
    def patch_class(self, cls: type) -> None:
        """Wrap the estimator methods `cls` has, where they are defined (often a mixin)."""
        if cls in self.patched_classes:
            return
        self.patched_classes.add(cls)
        for method in (*PREDICT_METHODS, "fit", "fit_predict", "fit_transform", "score"):
            for klass in cls.__mro__:
                if method in klass.__dict__:
                    if klass is not object:
                        self._patch_method(klass, method)
                    break

    def _patch_method(self, cls: type, method: str) -> None:
        if (cls, method) in self.patched_methods:
            return
        self.patched_methods.add((cls, method))
        if True:
            attr = cls.__dict__.get(method)
            if attr is None or getattr(attr, "__mnb_original__", None) is not None:
                return
            if isinstance(attr, _WrappedDescriptor):
                return
            if isinstance(attr, (staticmethod, classmethod, property)):
                return
            if callable(attr) and hasattr(attr, "__get__") and hasattr(attr, "__code__"):
                new: Any = _wrap_method(attr, method)
            elif hasattr(attr, "__get__"):
                new = _WrappedDescriptor(attr, method)
            else:
                return
            self.class_attrs.append((cls, method, attr))
            setattr(cls, method, new)

    def patch_estimators(self, base_module: Any) -> None:
        base = getattr(base_module, "BaseEstimator", None)
        if base is None or self.base_done:
            return
        self.base_done = True
        self._hook_subclasses(base)
        stack = [base]
        while stack:
            cls = stack.pop()
            try:
                subs = cls.__subclasses__()
            except TypeError:
                subs = []
            stack.extend(subs)
            self.patch_class(cls)

    def _hook_subclasses(self, base: type) -> None:
        """Classes defined later (`import sklearn.ensemble` in a later cell) are patched when
        they are created, through `BaseEstimator.__init_subclass__`."""
        previous = base.__dict__.get("__init_subclass__")
        patcher = self

        def __init_subclass__(cls: type, **kwargs: Any) -> None:
            if previous is not None:
                previous.__get__(None, cls)(**kwargs)
            else:
                super(base, cls).__init_subclass__(**kwargs)
            with contextlib.suppress(Exception):
                patcher.patch_class(cls)

        self.init_subclass = (base, previous)
        base.__init_subclass__ = classmethod(__init_subclass__)  # type: ignore[assignment]

    # the notebook's namespace -----------------------------------------------------------------
    def swap_namespace(self, ns: dict[str, Any]) -> None:
        """`from sklearn.metrics import accuracy_score` before tracking bound the original."""
        if not self.wrappers:
            return
        for name, value in list(ns.items()):
            wrapper = self.wrappers.get(id(value))
            if wrapper is not None and wrapper.original is value:
                ns[name] = wrapper
                self.ns_swaps.append((ns, name, value, wrapper))

    def swap_modules(self, modules: Iterable[Any]) -> None:
        """The same for the notebook's own modules (the caller says which: never a library's,
        whose internals call the originals on purpose): a helper that ran `from
        sklearn.metrics import accuracy_score` before the patch holds the original, and its
        `evaluate(model, X, y)` would go unseen. Each module is swapped now, again when more
        functions are patched, and put back by `unpatch`."""
        for module in modules:
            try:
                space = vars(module)
            except TypeError:
                continue
            if not isinstance(space, dict) or id(space) in self.spaces:
                continue
            self.spaces[id(space)] = space
            self.swap_namespace(space)

    # everything at once -------------------------------------------------------------------------
    def patch_loaded(self, ns: dict[str, Any] | None = None) -> None:
        """Patch what scikit-learn has loaded so far and watch for the rest being imported."""
        if self.base_done and self.metrics_done and self.cv_done:
            return
        mods = sys.modules
        before = len(self.module_attrs)
        if "sklearn.base" in mods:
            self.patch_estimators(mods["sklearn.base"])
        if "sklearn.metrics" in mods:
            self.patch_metrics(mods["sklearn.metrics"])
        if "sklearn.model_selection" in mods:
            self.patch_model_selection(mods["sklearn.model_selection"])
        if len(self.module_attrs) != before:
            if ns is not None:
                self.swap_namespace(ns)
            for space in list(self.spaces.values()):
                self.swap_namespace(space)
        if self.finder is None and not (self.base_done and self.metrics_done and self.cv_done):
            self.finder = ImportWatcher(_PATCH_ON_IMPORT, self.on_import)
            sys.meta_path.insert(0, self.finder)

    def on_import(self, name: str, module: Any) -> None:
        try:
            if name == "sklearn.base":
                self.patch_estimators(module)
            elif name == "sklearn.metrics":
                self.patch_metrics(module)
            elif name == "sklearn.model_selection":
                self.patch_model_selection(module)
        except Exception:
            pass
        if self.base_done and self.metrics_done and self.cv_done:
            self._remove_finder()

    def _remove_finder(self) -> None:
        if self.finder is not None:
            while self.finder in sys.meta_path:
                sys.meta_path.remove(self.finder)
            self.finder = None

    def unpatch(self) -> None:
        self._remove_finder()
        for ns, name, original, wrapper in reversed(self.ns_swaps):
            if ns.get(name) is wrapper:
                ns[name] = original
        wrappers = {id(w): w for w in self.wrappers.values()}
        for module, name, original in reversed(self.module_attrs):
            setattr(module, name, original)
        # Modules imported while patched may have bound a wrapper (`from ..metrics import f`),
        # scikit-learn's own and the notebook's.
        spaces = [getattr(module, "__dict__", {}) for mod_name, module in list(sys.modules.items())
                  if mod_name.startswith("sklearn") and module is not None]
        for space in [*spaces, *self.spaces.values()]:
            for k, v in list(space.items()):
                if id(v) in wrappers and wrappers[id(v)] is v:
                    space[k] = v.original
        for cls, name, original in reversed(self.class_attrs):
            setattr(cls, name, original)
        if self.init_subclass is not None:
            base, previous = self.init_subclass
            if previous is None:
                del base.__init_subclass__
            else:
                base.__init_subclass__ = previous  # type: ignore[misc]
        self.__init__()  # type: ignore[misc]


_PATCH_ON_IMPORT = frozenset({"sklearn.base", "sklearn.metrics", "sklearn.model_selection"})


class ImportWatcher(importlib.abc.MetaPathFinder):
    """Calls `on_import(name, module)` as soon as a module of `targets` has been imported,
    even mid-cell: `sklearn.metrics` & co. are patched before the cell's next line calls them
    (and io_watch wraps `pandas.read_parquet` in the cell that imports pandas)."""

    def __init__(self, targets: frozenset[str], on_import: Callable[[str, Any], None]) -> None:
        self.targets = targets
        self.on_import = on_import

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.targets:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        on_import = self.on_import
        original_exec = loader.exec_module

        class _Loader(importlib.abc.Loader):
            def __getattr__(self, name: str) -> Any:  # get_source, is_package, resources...
                return getattr(loader, name)

            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                original_exec(module)
                on_import(fullname, module)

        spec.loader = _Loader()
        return spec


# -- naming -------------------------------------------------------------------------------------
def name_calls(calls: list[Call]) -> list[tuple[str, Call]]:
    """A stable, readable metric name for each call, in call order.

    One series per (function, call site, data): the same call repeated in a loop is one metric
    with steps; the same function on different data gets the data's name as a suffix
    (`accuracy_score_X_test`), on the same data by different models the model's name
    (`accuracy_score_scaled_clf`), else a number in order of first call.
    """
    series: dict[str, list[tuple[Any, str | None]]] = {}
    model_of: dict[tuple[str, Any, str | None], str | None] = {}
    data_of = _same_split(calls)
    for c in calls:
        if c.kind != "metric":
            continue
        keys = series.setdefault(c.fn, [])
        key = (c.site, data_of.get(id(c), c.data))
        if key not in keys:
            keys.append(key)
            model_of[(c.fn, *key)] = c.model
    names: dict[tuple[str, Any, str | None], str] = {}
    for fn, keys in series.items():
        if len(keys) == 1:
            names[(fn, *keys[0])] = fn
            continue
        datas = [d for _, d in keys]
        models = [model_of[(fn, *k)] for k in keys]
        by_model = None not in models and len(set(models)) == len(models)
        used: set[str] = set()
        for i, (site, data) in enumerate(keys):
            if data is not None and datas.count(data) == 1:
                name = f"{fn}_{data}"
            elif by_model:
                name = f"{fn}_{models[i]}"
            elif data is not None:
                name = f"{fn}_{data}_{datas[:i + 1].count(data)}"
            else:
                name = f"{fn}_{i + 1}"
            while name in used:
                name += "_"
            used.add(name)
            names[(fn, site, data)] = name
    out = []
    for c in calls:
        if c.kind == "metric":
            out.append((names[(c.fn, c.site, data_of.get(id(c), c.data))], c))
        else:
            out.append((c.fn, c))
    return out


def _same_split(calls: list[Call]) -> dict[int, str]:
    """{id(call): data} for a call named by its true labels (`y_test`) at a call site where
    another call's predictions were traced to their inputs (`X_test`): the same split.

    `mean_squared_error(y, pred)` in a loop over a baseline class of the notebook's own and a
    forest: the forest's predictions are traced to `X`, the baseline's are not (its `predict`
    is not scikit-learn's), and `y` and `X` made two series, `mean_squared_error_y` and
    `_X`, one per model, so the two runs could not be compared. The labels' name stands for
    the inputs' when swapping its leading `y` for `X` gives a name traced at that site."""
    traced: dict[tuple[str, Any], set[str]] = {}
    for c in calls:
        if c.kind == "metric" and not c.labels and c.data:
            traced.setdefault((c.fn, c.site), set()).add(c.data)
    out: dict[int, str] = {}
    if not traced:
        return out
    for c in calls:
        inputs = traced.get((c.fn, c.site)) if c.kind == "metric" and c.labels else None
        if inputs and c.data and c.data[0] in "yY":
            for x in ("X" + c.data[1:], "x" + c.data[1:]):
                if x in inputs:
                    out[id(c)] = x
                    break
    return out


def metrics_of(calls: list[Call]) -> dict[str, Any]:
    """{name: last value} for a cell's calls: what the exported script compares."""
    out: dict[str, Any] = {}
    for name, c in name_calls(calls):
        if c.kind in ("metric", "search") and c.value is not None:
            out[name] = c.value
    return out


# -- the exported script's side ---------------------------------------------------------------
class ScriptAutolog:
    """In train.py: collect each cell's calls and name them exactly as the kernel did."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.patcher = Patcher()

    def start(self, ns: dict[str, Any], modules: Iterable[Any] = ()) -> None:
        """Patch, swapping the wrappers into the script's namespace and into `modules`, the
        notebook's own (imported from `lib/` before this cell, unpatched)."""
        STATE.sink = self.calls.append
        self.patcher.patch_loaded(ns)
        self.patcher.swap_modules(modules)

    def begin_cell(self, ns: dict[str, Any]) -> None:
        self.calls.clear()
        STATE.reset_cell()
        self.patcher.patch_loaded(ns)

    def end_cell(self, metrics: dict[str, Any], explicit: set[str]) -> None:
        for name, value in metrics_of(self.calls).items():
            if name not in explicit:
                metrics[name] = value
        self.calls.clear()
        STATE.reset_cell()


# -- values the cell already named --------------------------------------------------------------
Span = tuple[str, int, int]  # (variable or logged name, first line, last line)
# (depth, visit order) of a node in its statement's breadth-first walk, and what it bound
_Keyed = tuple[int, int, Span]
_Statement = tuple[int, int, tuple[_Keyed, ...], tuple[_Keyed, ...]]


def _statement_spans(stmt: Any) -> _Statement:
    """(first line, last line, binds, logs) of one statement: `name = <expr>` bindings and
    `log_metric("name", <expr>)` calls anywhere in it, each keyed by where `ast.walk` (breadth
    first) meets it, so statements walked one by one merge into the order of one walk over
    them all (`_merge`), without its generators, and without descending into what holds no
    binding or call: names, constants, contexts, operators."""
    binds: list[_Keyed] = []
    logs: list[_Keyed] = []

    def bind(target: Any, value: Any, depth: int, order: int) -> None:
        if isinstance(target, ast.Name):
            binds.append((depth, order, (target.id, value.lineno,
                                         value.end_lineno or value.lineno)))
        elif (isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple,
              ast.List)) and len(target.elts) == len(value.elts)):
            for t, v in zip(target.elts, value.elts, strict=True):
                bind(t, v, depth, order)
        elif isinstance(target, (ast.Tuple, ast.List)) and _unpacks_parts(value):
            # `prec, rec, f1, _ = precision_recall_fscore_support(...)`: each name holds one
            # of its metrics, which one its value says. Not any call unpacked: `score, perm,
            # pvalue = permutation_test_score(...)` keeps its documented `permutation_*`
            for t in target.elts:
                if isinstance(t, ast.Name):
                    bind(t, value, depth, order)

    nodes: deque[tuple[Any, int]] = deque([(stmt, 0)])
    leaves = _leaves()
    order = 0
    while nodes:
        node, depth = nodes.popleft()
        order += 1
        below = depth + 1
        for field in node._fields:
            value = getattr(node, field, None)
            if type(value) is list:
                nodes.extend((v, below) for v in value
                             if type(v) not in leaves and isinstance(v, ast.AST))
            elif type(value) not in leaves and isinstance(value, ast.AST):
                nodes.append((value, below))
        if isinstance(node, ast.Assign):
            for target in node.targets:
                bind(target, node.value, depth, order)
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            bind(node.target, node.value, depth, order)
        elif isinstance(node, ast.Call):
            f = node.func
            callee = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if (callee == "log_metric" and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                logs.append((depth, order, (node.args[0].value, node.lineno,
                                            node.end_lineno or node.lineno)))
    return stmt.lineno, stmt.end_lineno or stmt.lineno, tuple(binds), tuple(logs)


def _unpacks_parts(value: Any) -> bool:
    """`value` is a call of a metric function whose parts are metrics of their own."""
    if not isinstance(value, ast.Call):
        return False
    f = value.func
    return (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")) == _PRFS


def _merge(statements: list[tuple[_Statement, int]], lines: set[int]
           ) -> tuple[list[Span], list[Span]]:
    """Binds and logs of the statements spanning one of `lines` (a span holding a line lies
    within such a statement: the rest of the cell need not be walked), in `ast.walk`'s order
    over those statements together: by depth, then statement, then order within it. Each
    statement comes with the shift that moves its line numbers to the cell's (a part of the
    cell parsed on its own is numbered from 1)."""
    binds: list[tuple[int, int, int, Span]] = []
    logs: list[tuple[int, int, int, Span]] = []
    for k, ((lo, hi, b, g), shift) in enumerate(statements):
        if any(lo + shift <= line <= hi + shift for line in lines):
            for out, spans in ((binds, b), (logs, g)):
                out.extend((depth, k, order, (name, first + shift, last + shift))
                           for depth, order, (name, first, last) in spans)
    binds.sort(key=_WALK_ORDER)  # stable: the names a tuple binds stay in order
    logs.sort(key=_WALK_ORDER)
    return [e[3] for e in binds], [e[3] for e in logs]


_WALK_ORDER = itemgetter(0, 1, 2)  # (depth, statement, order): a key made in C


def _spans(tree: Any, lines: set[int]) -> tuple[list[Span], list[Span]]:
    """(variable, first line, last line) of `name = <expr>` bindings, and of
    `log_metric("name", <expr>)` calls, anywhere in the top-level statements of the cell that
    span one of `lines`."""
    return _merge([(_statement_spans(stmt), 0) for stmt in tree.body], lines)


@functools.cache
def _leaves() -> frozenset[type]:
    """Node types `_statement_spans` does not descend into: no binding or call is under them."""
    kinds: set[type] = {type(None), ast.Name, ast.Constant, ast.Load, ast.Store, ast.Del,
                        ast.alias}
    for base in (ast.operator, ast.unaryop, ast.cmpop, ast.boolop):
        kinds.update(base.__subclasses__())
    return frozenset(kinds)


_PART_CACHE_CHARS = 1024  # longer statements are parsed each time, not kept


@functools.lru_cache(maxsize=256)  # at most 256 KB of statement text
def _part_spans(text: str) -> tuple[_Statement, ...] | None:
    """The statements of one cut-out part of a cell, numbered from its first line; None when
    it does not parse on its own. Cached by text: a scoring line is the same from one run of
    a cell to the next while the parameters above it change, and parsing it again was most
    of what naming its metric cost."""
    try:
        part = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    return tuple(_statement_spans(stmt) for stmt in part.body)


def _cut_spans(code: str, bounds: list[int], lines: set[int]
               ) -> tuple[list[Span], list[Span]] | None:
    """`_spans` of the top-level statements of `code` that span one of `lines`, each part of
    the cell parsed on its own (`bounds`: the first and last line of each top-level statement,
    flat); None when they cannot be cut out on their own (a statement sharing a line with
    another across lines, a line break `split` does not see)."""
    if "\r" in code or "\f" in code or "\v" in code:
        return None
    pairs = zip(bounds[::2], bounds[1::2], strict=False)  # first and last lines, flat
    if len(lines) == 1:  # one scoring line, most often: no generator per statement
        (line,) = lines
        spans = sorted({(lo, hi) for lo, hi in pairs if lo <= line <= hi})
    else:
        spans = sorted({(lo, hi) for lo, hi in pairs if any(lo <= n <= hi for n in lines)})
    if not spans:
        return None
    text = code.split("\n")
    statements: list[tuple[_Statement, int]] = []
    for lo, hi in spans:
        part = "\n".join(text[lo - 1:hi])
        parsed = (_part_spans(part) if len(part) <= _PART_CACHE_CHARS
                  else _part_spans.__wrapped__(part))
        if parsed is None:
            return None
        statements.extend((stmt, lo - 1) for stmt in parsed)
    return _merge(statements, lines)


def bound_names(code: str, named: list[tuple[str, Call]], bound: dict[str, Any],
                explicit: dict[str, Any], bounds: list[int] | None = None) -> dict[str, str]:
    """Autologged series whose value the cell itself named: {series: variable, or "" to drop}.

    `r2 = model.score(X, y)` would otherwise be recorded twice, as `r2` (a metric-named
    variable) and as `Ridge_score`; `mnb.log_metric("acc", accuracy_score(...))` as `acc` and
    `accuracy_score`. The cell's own name wins: the series takes the variable's name (keeping
    its steps and model), or is dropped when an explicit log_metric already recorded it.
    A series matches when its last call sits on the line(s) of that binding and computed
    exactly the value the variable holds, so a coincidentally equal metric elsewhere stays.
    `bounds`: the first and last line of each top-level statement of `code`, flat, when the
    recorder has them: only the statements holding those lines are parsed again.
    """
    if not (bound or explicit):
        return {}
    last: dict[str, Call] = {}
    for name, call in named:
        if call.kind == "metric":
            last[name] = call
    where: dict[str, tuple[tuple[str, ...], int]] = {}  # series: (texts, line in each)
    lines: dict[str, set[int]] = {}
    magics = "_magic(" in code  # `run_cell_magic(`, `run_line_magic(`: bodies of their own
    for name, call in last.items():
        if call.site and name not in bound and name not in explicit:
            # most cells call no magic: the call is on a line of the cell, with no file's
            # text to read back and compare (3% of a fit-and-score cell's recorder)
            texts, line = _statement_texts(call.site, code) if magics else \
                ((code,), call.site[-1][1])
            where[name] = texts, line
            for text in texts:
                lines.setdefault(text, set()).add(line)
    if not lines:
        return {}
    spans_of: dict[str, tuple[list[Span], list[Span]]] = {}
    for text, at in lines.items():
        found = _cut_spans(code, bounds, at) if bounds and text is code else None
        if found is None:
            try:
                found = _spans(ast.parse(text), at)
            except (SyntaxError, ValueError):
                continue
        spans_of[text] = found
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name, call in last.items():
        if name not in where:
            continue
        texts, line = where[name]
        value = numeric(call.value)
        if value is None:
            continue
        for binds, logs in (spans_of[t] for t in texts if t in spans_of):
            hit = None
            for names, drop, spans in ((explicit, True, logs), (bound, False, binds)):
                hit = next((var for var, lo, hi in reversed(spans)
                            if lo <= line <= hi and var in names and var not in taken
                            and _same(names[var], value)), None)
                if hit is not None:
                    out[name] = "" if drop else hit
                    taken.add(hit)
                    break
            if hit is not None:
                break
    # The same call bound in a loop over models is one series per model class (`KNN_score`,
    # `SVC_score`): the one that matched brings the others of its call site along.
    # The parts of one call (`precision_recall_fscore_support`) are series of their own.
    sites = {(last[name].site, _part(last[name])): var for name, var in out.items()}
    for name, call in last.items():
        if name not in out and name not in bound and name not in explicit:
            var = sites.get((call.site, _part(call)))
            if var is not None:
                out[name] = var
    return out


# The file names IPython compiles a Python-bodied magic's code under, and the magics whose
# body each is: `%%time`/`%time` (`<timed exec>`, `<timed eval>` for a last expression),
# `%%timeit`/`%timeit` (the body inside a function, `inner`), `%%prun`/`%prun` (a string).
_MAGIC_FILES = {"<timed exec>": ("time",), "<timed eval>": ("time",),
                "<magic-timeit>": ("timeit",), "<string>": ("prun",)}


def _statement_texts(site: Any, code: str) -> tuple[tuple[str, ...], int]:
    """The texts whose lines a call at `site` is on, and its line there: the cell's `code`,
    or the body of a magic in it. A `%%time` or `%%capture` cell's body is compiled on its
    own, numbered from its first line, not the cell's (where the magic line shifts it; a
    `%time` line's statement is line 1 of its own code), so a metric bound there was not found
    bound and was recorded twice. The frame is the cell's top-level code: the outermost one,
    or inside a magic, the magic body's (`%%timeit`'s runs in a function under IPython's
    frames). A file IPython keeps the text of (a `%%capture` body, run as a cell of its own)
    is read back exactly; `%%time`'s is none, so its text is each such magic's body the cell
    holds (several `%time` lines: each, its value tells them apart)."""
    frame = next((f for f in reversed(site) if len(f) > 3 and f[3] in _MAGIC_FILES), site[-1])
    line = frame[1]
    filename = frame[3] if len(frame) > 3 else None
    if filename is None:
        return (code,), line
    magics = _MAGIC_FILES.get(filename)
    if magics is not None:
        return tuple(body for magic, body in _magic_bodies(code) if magic in magics), line
    import linecache  # loaded with IPython, whose cells it holds

    entry = linecache.cache.get(filename)
    text = "".join(entry[2]) if entry and len(entry) > 2 else None
    if text is None or text.rstrip("\n") == code.rstrip("\n"):
        return (code,), line
    return (text,), line


@functools.lru_cache(maxsize=64)
def _magic_bodies(code: str) -> tuple[tuple[str, str], ...]:
    """(magic, body) of the Python-bodied magics a cell calls, as IPython transformed them
    (`get_ipython().run_cell_magic('time', '', body)`, `run_line_magic('time', stmt)`), in
    order."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return ()
    out: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run_cell_magic", "run_line_magic") and node.args):
            continue
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if len(args) != len(node.args) or not all(isinstance(a, str) for a in args):
            continue
        body = args[-1] if node.func.attr == "run_line_magic" or len(args) == 3 else None
        if body is not None and len(args) >= 2:
            out.append((args[0], body))
    return tuple(out)


def _part(call: Call) -> Any:
    extra = call.extra
    return extra.get("part") if isinstance(extra, dict) else None


def _same(recorded: Any, value: Any) -> bool:
    try:
        return bool(float(recorded) == float(value))
    except (TypeError, ValueError):
        return False
