"""Building a cell run's record once the cell ended: the record itself, what the cell left in
the namespace (each step under the capture budget), autologged metrics, and child runs.

Everything the user's objects are asked goes through a budgeted step: a hanging `__repr__`
skips its step with a warning on the run; the run is still recorded.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from typing import TYPE_CHECKING, Any

from ..lineage import cell_effects
from ..records import STATUS_ERROR, CellRun
from ..redact import REDACTED
from ..store.blobs import blob_hash
from . import autolog
from .analysis import CellAnalysis
from .context import CellContext
from .effects import possibly_changed
from .guard import CaptureTimeout, capture_budget, time_budget
from .loops import model_record, rename_metrics, series_key
from .namespace import (
    estimator_params,
    read_data,
    read_estimators,
    read_metrics,
    read_widget_values,
)
from .redaction import password_reads
from .values import jsonable, metric_value, not_plain

if TYPE_CHECKING:
    from .recorder import Tracker


# Run ids draw from a private generator seeded from the OS once per process (and again in a
# forked child): 128 bits as `uuid4().hex` gives, without a system call per cell (a call
# that releases the GIL hands the kernel thread's turn to the writer) and without touching
# the user's `random` state.
_IDS = random.Random(os.urandom(32))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(32)))


def new_run_id() -> str:
    return f"{_IDS.getrandbits(128):032x}"


def blob(blobs: dict[str, bytes], payload: str | bytes) -> str:
    """Put `payload` among the run's blobs; its content hash is what the record holds."""
    data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    digest = blob_hash(data)
    blobs[digest] = data
    return digest


def code_blobs(blobs: dict[str, bytes], raw: str, python: str) -> tuple[str, str]:
    """The blobs of a cell's text and of the Python IPython made of it. Most cells are plain
    Python (IPython only adds a newline): such code is stored, and hashed, once."""
    code = blob(blobs, raw)
    if python.rstrip("\n") == raw.rstrip("\n"):
        return code, code
    return code, blob(blobs, python)


def safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__} with unprintable message>"


def error_of(error: BaseException) -> dict[str, str]:
    return {"type": type(error).__name__, "message": safe_str(error)[:2000]}


def child_run(parent: CellRun, seq: int, **fields: Any) -> CellRun:
    """A run inside `parent`'s cell (a loop iteration, a search candidate): same cell, code
    and time, its own parameters and metrics."""
    base: dict[str, Any] = dict(
        id=new_run_id(), session=parent.session, experiment=parent.experiment,
        seq=seq, started_at=parent.started_at, status=parent.status, mode=parent.mode,
        name=parent.name, notebook=parent.notebook, cell_id=parent.cell_id,
        execution_count=parent.execution_count, code=parent.code, python=parent.python,
        parent=parent.id,
    )
    base.update(fields)
    return CellRun(**base)


def iteration_run(parent: CellRun, seq: int, k: int, it: dict[str, Any],
                  rng: dict[str, bytes] | None, blobs: dict[str, bytes]) -> CellRun:
    """Iteration k of a loop; `rng` is the state where iteration k-1 ended."""
    models = it.get("models") or {}  # the loop's model variables: class and parameters
    child = child_run(
        parent, seq, params={**it["loop"], **estimator_params(models)},
        metrics=dict(it["metrics"]), iteration=k, estimators=dict(models),
        metric_models={m: v for m, v in parent.metric_models.items() if m in it["metrics"]},
    )
    if rng:
        child.rng = {name: blob(blobs, payload) for name, payload in rng.items()}
    return child


def candidate_run(parent: CellRun, seq: int, cand: dict[str, Any]) -> CellRun:
    """One of a search's best candidates: a child run with its own parameters and scores.
    Named by its place, best first: scikit-learn's rank gives tied candidates one number
    (two runs named `grid #1`, none `grid #2`)."""
    return child_run(
        parent, seq, name=f"{cand['search']} #{cand['place']}",
        params={k: jsonable(v) for k, v in cand["params"].items()},
        metrics=dict(cand["metrics"]),
    )


# -- what the cell left in the namespace (see namespace.py) -----------------------------------
def capture_namespace(tracker: Tracker, cr: CellRun, ctx: CellContext,
                      analysis: CellAnalysis, ns: dict[str, Any],
                      warnings_: list[str]) -> None:
    """Run the capture steps within one time budget (armed once per cell: arming costs a
    few syscalls). A step that runs out of it, or is interrupted, is skipped with a
    warning; after a timeout the remaining steps get a fresh budget."""
    budget: Any = time_budget
    steps = [_capture_metrics, _capture_estimators, _capture_data, _capture_widgets]
    if _meets_only_plain(tracker, ctx, analysis, ns):
        # No estimator, data or widget can be among plain values, and reading the metrics
        # from them runs none of the user's code: the metrics alone, with no budget armed.
        budget, steps = contextlib.nullcontext, [_capture_metrics]
    i = 0
    while i < len(steps):
        try:
            with budget():
                while i < len(steps):
                    capture = steps[i]
                    i += 1
                    try:
                        capture(tracker, cr, ctx, analysis, ns, warnings_)
                    except Exception as exc:
                        warnings_.append(f"{capture.__name__.lstrip('_')} failed: {exc!r}")
        except CaptureTimeout:
            warnings_.append(
                f"{_step(steps[i - 1])} skipped: it took longer than {capture_budget():g} s "
                "calling into the cell's objects (a hanging __getattr__, __repr__ or "
                "get_params?); MLOPS_NB_CAPTURE_BUDGET sets the limit")
        except KeyboardInterrupt:  # the user stopped a capture that hung: keep the run
            warnings_.extend(f"{_step(s)} skipped: interrupted (KeyboardInterrupt)"
                             for s in steps[i - 1:])
            return


def _meets_only_plain(tracker: Tracker, ctx: CellContext, analysis: CellAnalysis,
                      ns: dict[str, Any]) -> bool:
    """True when every name the capture steps look at holds a plain value (numbers, text,
    containers, functions, modules: nothing in reading them runs the user's code), no file
    was read, no widget read, no metric asked for by this cell, and no notebook function
    called or passed on (the names it mutates would be looked at too). Then the steps that
    look for estimators, data and widgets have nothing to find, and the time budget (four
    system calls to arm and disarm) has nothing to guard."""
    if analysis.files_read or analysis.value_reads or ctx.metric_names:
        return False
    functions = tracker.functions
    own = analysis.functions
    if (functions or own) and any(name in functions or name in own
                                  for name in analysis.load_counts):
        return False
    return not not_plain(ns, (*analysis.uses, *analysis.defs, *analysis.mutations,
                              *tracker.metric_names))


def _step(capture: Any) -> str:
    return capture.__name__.removeprefix("_capture_") + " capture"


def _capture_metrics(tracker: Tracker, cr: CellRun, ctx: CellContext, analysis: CellAnalysis,
                     ns: dict[str, Any], warnings_: list[str]) -> None:
    cr.metrics = read_metrics(
        ns, analysis, by_name=tracker.auto and not ctx.explicit,
        watched=[] if ctx.explicit else tracker.metric_names,
        present=tracker.metric_names if ctx.explicit else [],
        required=ctx.metric_names,
        warnings=warnings_,
    )
    cr.metrics.update(ctx.metrics)
    missing = ctx.metric_names and [n for n in ctx.metric_names if n not in cr.metrics]
    if missing:  # asked for on this cell: said here, not only in a record it may not list
        print(f"mlops-nb: warning: --metric {', '.join(missing)}: no such variable after the "
              "cell ran", file=sys.stderr)
    for name in cr.metrics:  # a literal assigned to a metric name is a result, not a knob
        if name not in ctx.params:
            cr.params.pop(name, None)


def _capture_estimators(tracker: Tracker, cr: CellRun, ctx: CellContext,
                        analysis: CellAnalysis, ns: dict[str, Any],
                        warnings_: list[str]) -> None:
    cr.estimators = read_estimators(ns, (*analysis.defs, *cr.mutations))
    for key, value in estimator_params(cr.estimators).items():
        cr.params.setdefault(key, value)


def _capture_data(tracker: Tracker, cr: CellRun, ctx: CellContext, analysis: CellAnalysis,
                  ns: dict[str, Any], warnings_: list[str]) -> None:
    _, mutated = cell_effects(analysis.uses, cr.mutations, analysis, tracker.functions)
    cr.data = read_data(ns, (*analysis.uses, *analysis.defs, *cr.mutations),
                        analysis.files_read, warn_missing_files=cr.status != STATUS_ERROR,
                        warnings=warnings_, profiler=tracker.profiler,
                        cache=tracker.fingerprints,
                        changed=possibly_changed(analysis, ns, mutated))


def _capture_widgets(tracker: Tracker, cr: CellRun, ctx: CellContext, analysis: CellAnalysis,
                     ns: dict[str, Any], warnings_: list[str]) -> None:
    cr.widget_values = read_widget_values(ns, analysis.value_reads, warnings_)
    for name in password_reads(ns, analysis.value_reads):  # whatever the name
        if name in cr.widget_values:
            cr.widget_values[name] = REDACTED
    cr.params.update({k: jsonable(v) for k, v in cr.widget_values.items()})


# -- scikit-learn autolog (see autolog.py) ----------------------------------------------------
def _bound_by_cell(obj: Any, defs: list[str], ns: dict[str, Any]) -> str | None:
    """The name an object nobody held while it was fitted ended up in: one the cell bound
    first, read by name (the namespace grows with the session: `autolog._held_by`); then,
    for an estimator a helper bound with `global`, any name holding it."""
    return autolog.name_holding(ns, obj, among=defs) or autolog.name_holding(ns, obj)


def _evaluated(cr: CellRun, call: autolog.Call) -> None:
    """An estimator the cell cross-validated (`cross_val_score(pipe, X, y)`): CV fits clones,
    so the notebook's object stays unfitted and was not among the run's fitted estimators;
    the run had metrics and no model nor hyper-parameters. It is recorded, `cross_validated`
    (`--save-model` and the model registry take the others only)."""
    key = call.model or type(call.est).__name__
    if key in cr.estimators:
        return
    entry = model_record(call.est)
    cr.estimators[key] = {**entry, "cross_validated": True}
    for attr, value in entry["params"].items():
        cr.params.setdefault(f"{key}.{attr}", value)


def apply_autolog(cr: CellRun, ctx: CellContext, ns: dict[str, Any],
                  search_children: int, code: str | None = None,
                  bounds: list[int] | None = None) -> list[dict[str, Any]]:
    """Metrics, CV results and searches scikit-learn computed in this cell, named.

    Explicit `log_metric` values win, and a value the cell bound to a metric-named variable
    is recorded once, under that name (`autolog.bound_names`); a loop's per-iteration metrics
    get their names too. Returns the search candidates to record as child runs.
    """
    if not ctx.auto_calls:
        return []
    children: list[dict[str, Any]] = []
    renames: dict[str, str] = {}
    counts: dict[str, int] = {}
    named = autolog.name_calls(ctx.auto_calls)  # before late model names: as the script
    aliases = autolog.bound_names(  # `r2 = model.score(...)`: one metric, named `r2`
        code if code is not None else (ctx.transformed or ctx.raw), named,
        {k: v for k, v in cr.metrics.items() if k not in ctx.metrics}, ctx.metrics,
        bounds if code is not None else None)
    searches: dict[str, list[dict[str, Any]]] = {}
    for call in ctx.auto_calls:  # `grid = GridSearchCV(...).fit(X, y)`: named only now
        if call.model is None and call.est is not None:
            call.model = _bound_by_cell(call.est, cr.defs, ns)
    for name, call in named:
        if call.kind == "evaluated":
            _evaluated(cr, call)
            continue
        if call.kind == "params":
            for attr, value in (call.extra or {}).get("params", {}).items():
                cr.params[f"{call.model or call.fn}.{attr}"] = value
            if call.value is not None:
                name = f"best_cv_score_{call.fn}"
            else:
                continue
        if call.kind == "metric" and name in aliases:
            if not aliases[name]:  # an explicit log_metric recorded this very value
                continue
            name = aliases[name]
            if counts.get(name) is None:
                counts[name] = 0
                cr.metrics.pop(name, None)  # the series brings its steps and model
        if name in ctx.metrics:  # explicit logging wins
            continue
        if call.kind == "metric":
            renames[series_key(call)] = name
        stored, problem = metric_value(call.value)
        if problem:
            cr.warnings.append(f"{name}: {problem}")
        counts[name] = counts.get(name, 0) + 1
        if counts[name] > 1:
            cr.metric_steps.setdefault(name, [cr.metrics[name]]).append(stored)
        elif call.steps:
            cr.metric_steps[name] = list(call.steps)
        cr.metrics[name] = stored
        if call.model:
            cr.metric_models[name] = call.model
        if call.kind == "search":
            extra = call.extra or {}
            for k, v in extra.get("params", {}).items():
                cr.params[f"{call.model or 'search'}.best_params.{k}"] = jsonable(v)
            # a search repeated in a loop: the last one's candidates, not n times as many
            searches[name] = [{**cand, "search": call.model or "search", "place": i + 1}
                              for i, cand in enumerate(
                                  extra.get("candidates", [])[:search_children])]
    for found in searches.values():
        children.extend(found)
    rename_metrics(ctx, renames)
    for name in cr.metrics:
        cr.params.pop(name, None)
    return children
