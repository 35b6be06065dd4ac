"""IPython event hooks that turn each cell execution into a recorded cell run.

Everything here runs on the kernel's main thread between the user's cells, so it is budgeted:
the AST comes from IPython's own parse (an AST transformer that only looks), analyses are
cached by code, only names the cell touched are inspected, and the durable write happens on
the store's writer thread. Any failure inside capture becomes a warning on the cell run; the
user's cell never sees it.
"""

from __future__ import annotations

import ast
import logging
import os
import sys
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..lineage import SessionLog, cell_effects, externalize_large_values
from ..records import MODE_AUTO, MODE_BACKFILLED, MODE_EXPLICIT, STATUS_ERROR, CellRun
from ..redact import REDACTED
from ..store.blobs import blob_hash
from ..store.location import home_for_writing
from ..store.writer import SessionWriter
from ..validate.hook import Profiler
from . import autolog, environment
from .analysis import CellAnalysis, analyze, is_plain_literal
from .effects import possibly_changed, real_mutations
from .fingerprint import FingerprintCache
from .guard import CaptureTimeout, capture_budget, time_budget
from .io_watch import IoWatcher
from .namespace import (
    estimator_params,
    read_data,
    read_estimators,
    read_metrics,
    read_widget_values,
)
from .project_modules import ProjectModules
from .redaction import password_reads, redact_cell_run, scrub_session
from .rng import RngWatcher
from .sweeps import loop_value, sweep_loop_targets
from .values import jsonable, metric_value, safe_repr

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell

log = logging.getLogger(__name__)

_ANALYSIS_CACHE_SIZE = 512
_CONTROL_PREFIXES = ("%track", "%load_ext", "%reload_ext", "%unload_ext")
_ACTIVE: Tracker | None = None


def active_tracker() -> Tracker | None:
    return _ACTIVE


def new_session_id() -> str:
    """Sortable by start time and unique across machines: `20261126T071501-3f9a1c2e`."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def is_control_cell(raw: str) -> bool:
    """A cell that only drives mlops-nb itself (`%track on`, `%load_ext mlops_nb`)."""
    lines = [ln.strip() for ln in raw.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        return True
    return all(
        ln.startswith(_CONTROL_PREFIXES) and not ln.startswith("%%") for ln in lines
    ) and all(("mlops_nb" in ln) or ln.startswith("%track") for ln in lines)


@dataclass
class _CellContext:
    raw: str
    transformed: str | None
    cell_id: str | None
    started: float
    t0: float
    explicit: bool
    rng: dict[str, bytes] = field(default_factory=dict)
    figs_before: dict[int, Any] = field(default_factory=dict)
    figures: list[bytes] = field(default_factory=list)
    seen_figs: set[int] = field(default_factory=set)
    metrics: dict[str, Any] = field(default_factory=dict)
    metric_steps: dict[str, list[Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    name: str | None = None
    metric_names: list[str] = field(default_factory=list)
    body: str | None = None
    body_tree: ast.Module | None = None
    loop_names: list[str] | None = None  # targets of a literal `for` loop; [] when none
    iterations: list[dict[str, Any]] = field(default_factory=list)
    thread: int = 0  # the thread the cell runs on, and the threads alive when it started
    threads_before: frozenset[int] = frozenset()
    auto_calls: list[autolog.Call] = field(default_factory=list)  # scikit-learn autolog
    published: list[bytes] = field(default_factory=list)  # PNGs the frontend was sent
    candidates: list[Any] = field(default_factory=list)  # figures to render if none were


class _ParseHook:
    """Keeps the module IPython parses for a cell, so we never parse a cell twice.

    It wraps the shell's compiler `ast_parse` rather than joining `ast_transformers`: any
    transformer makes IPython run `ast.fix_missing_locations` over every cell, which alone
    cost 0.3 ms per 50-statement cell, tracked or not.
    """

    def __init__(self, tracker: Tracker, original: Any) -> None:
        self.tracker = tracker
        self.original = original

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tree = self.original(*args, **kwargs)
        # Only the cell's own parse: `%time` and nested run_cell parse more code later.
        t = self.tracker
        if t._registered and t._ctx is not None and t._last_tree is None and not t._depth:
            t._last_tree = tree
        return tree


class Tracker:
    """The recording state of one kernel session; survives `%reload_ext`."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell
        self.session = new_session_id()
        self.experiment: str | None = None
        self.auto = False
        self.metric_names: list[str] = []
        self.allowed_params: set[str] = set()  # `--allow-param`: never redacted
        self.home: Path | None = None
        self.writer: SessionWriter | None = None
        self.log = SessionLog()
        self.rng = RngWatcher()
        self.io = IoWatcher()
        self.project_modules = ProjectModules()
        self.profiler = Profiler()  # one profile per new data fingerprint (validate/hook.py)
        self.fingerprints = FingerprintCache()
        self.recorded = 0
        self.notebook = _notebook_path(shell)
        self._ctx: _CellContext | None = None
        self._depth = 0
        self._last_tree: ast.AST | None = None
        self._last_count = 0
        self._modules_seen = 0
        self._analyses: OrderedDict[str, CellAnalysis] = OrderedDict()
        self._registered = False
        self.patcher = autolog.Patcher()
        self.search_children = _search_children()
        self._publisher: Any = None

    # -- registration -------------------------------------------------------------------------
    def register(self) -> None:
        """Install the hooks once, however many times the extension is (re)loaded."""
        global _ACTIVE
        self.unregister()
        ev = self.shell.events
        ev.register("pre_run_cell", self.pre_run_cell)
        ev.register("post_run_cell", self.post_run_cell)
        # First in line, so figures are seen before the inline backend closes them.
        ev.callbacks["post_execute"].insert(0, self.post_execute)
        compiler = self.shell.compile
        compiler.ast_parse = _ParseHook(self, compiler.ast_parse)
        self._registered = True
        _ACTIVE = self

    def unregister(self) -> None:
        global _ACTIVE
        ev = self.shell.events
        for name, fn in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
            ("post_execute", self.post_execute),
        ):
            callbacks = ev.callbacks.get(name, [])
            while fn in callbacks:
                callbacks.remove(fn)
        compiler = self.shell.compile
        hook = compiler.__dict__.get("ast_parse")
        while isinstance(hook, _ParseHook) and hook.tracker is self:
            # Ours is outermost: unwrap. (Wrapped by someone else later, ours stays inert.)
            if getattr(hook.original, "__func__", None) is type(compiler).ast_parse:
                del compiler.ast_parse  # back to the class's own method
            else:
                compiler.ast_parse = hook.original
            hook = compiler.__dict__.get("ast_parse")
        self._registered = False
        self.io.stop()
        self.unpatch()
        self._unwatch_display()
        if _ACTIVE is self:
            _ACTIVE = None

    # -- scikit-learn autolog (see autolog.py) ------------------------------------------------
    def patch(self) -> None:
        """Wrap scikit-learn while tracking is on; sklearn is never imported here, only
        patched once a cell has imported it (at once if already loaded)."""
        autolog.STATE.sink = self._on_autolog
        self.patcher.patch_loaded(self.shell.user_ns)

    def unpatch(self) -> None:
        if autolog.STATE.sink == self._on_autolog:
            autolog.STATE.sink = None
        self.patcher.unpatch()

    def _on_autolog(self, call: autolog.Call) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        ctx.auto_calls.append(call)
        if call.kind != "metric" or call.value is None:
            return
        try:
            if ctx.loop_names is None:
                ctx.loop_names = sweep_loop_targets(ctx.transformed
                                                    or self._transform(ctx.raw))
            if ctx.loop_names:
                self._note_iteration(ctx, _provisional(call), call.value)
        except Exception as exc:  # never let capture break the cell
            ctx.warnings.append(f"loop iteration capture failed: {exc!r}")

    # -- control ------------------------------------------------------------------------------
    def default_experiment(self) -> str:
        if self.notebook:
            return Path(self.notebook).stem or "default"
        return "default"

    def ensure_writer(self) -> SessionWriter:
        if self.writer is None:
            self.home = self.home or home_for_writing()
            self.writer = SessionWriter(self.home, self.session,
                                        flush_interval=_flush_interval())
            cwd = os.getcwd()
            self.writer.update_session(
                session=self.session,
                notebook=self.notebook,
                started_at=time.time(),
                pid=os.getpid(),
                environment=lambda: scrub_session(environment.collect(cwd)),
            )
        return self.writer

    def start(self, *, experiment: str | None = None, metrics: list[str] | None = None,
              allow_params: list[str] | None = None) -> None:
        """`%track on`: record every later cell; back-fill earlier ones so lineage is whole."""
        self.allowed_params.update(allow_params or ())
        if experiment:
            self.experiment = experiment
        self.experiment = self.experiment or self.default_experiment()
        if metrics:
            self.metric_names = list(dict.fromkeys([*self.metric_names, *metrics]))
        self.ensure_writer()
        self.auto = True
        self.io.start()
        self.patch()
        self.backfill(self._current_count() - 1)
        self._last_count = max(self._last_count, self._current_count())

    def stop(self) -> None:
        self.auto = False
        self.io.stop()
        self.unpatch()
        if self.writer is not None:
            self.writer.flush()

    def flush(self, timeout: float | None = 30.0) -> bool:
        return True if self.writer is None else self.writer.flush(timeout)

    def close(self) -> None:
        self.unregister()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _current_count(self) -> int:
        """The execution count of the cell now running (IPython already moved past it)."""
        return max(int(self.shell.execution_count) - 1, 0)

    # -- explicit logging ---------------------------------------------------------------------
    def log_metric(self, name: str, value: Any) -> Any:
        ctx = self._ctx
        if ctx is not None and _from_older_thread(ctx):
            _refuse_thread("log_metric", name, ctx)
            return value
        if ctx is None:
            warnings.warn(
                f"log_metric({safe_repr(name)}) outside a tracked cell was not recorded: "
                "run `%track on` or put the cell under `%%track`",
                stacklevel=3,
            )
            return value
        try:
            key = _key(name, ctx)
            stored, problem = metric_value(value)
            if problem:
                ctx.warnings.append(f"{key}: {problem}")
            if key in ctx.metrics:
                steps = ctx.metric_steps.setdefault(key, [ctx.metrics[key]])
                steps.append(stored)
            ctx.metrics[key] = stored
        except Exception as exc:  # a hostile name or value must not break the user's cell
            ctx.warnings.append(f"log_metric failed: {safe_repr(exc)}")
            return value
        try:
            self._note_iteration(ctx, key, stored)
        except Exception as exc:  # never let capture break the cell
            ctx.warnings.append(f"loop iteration capture failed: {exc!r}")
        return value

    def _note_iteration(self, ctx: _CellContext, key: str, stored: Any) -> None:
        """Inside a sweep (`for lr in [0.1, 0.01]:`, `for depth in range(1, 10):`, see
        sweeps.py) each iteration's metrics become a run of their own.

        An iteration starts when the loop variables change; a metric repeated with the same
        values (an epoch or fold loop inside the sweep) keeps its last value. The RNG state
        at each log is kept so iteration k can be replayed from where iteration k-1 ended.
        """
        if ctx.loop_names is None:
            ctx.loop_names = sweep_loop_targets(ctx.transformed or self._transform(ctx.raw))
        if not ctx.loop_names:
            return
        ns = self.shell.user_ns
        values = {n: loop_value(ns[n]) for n in ctx.loop_names if n in ns}
        if not values or not all(is_plain_literal(v) for v in values.values()):
            return
        values = {n: jsonable(v) for n, v in values.items()}
        cur = ctx.iterations[-1] if ctx.iterations else None
        if cur is None or cur["loop"] != values:
            cur = {"loop": values, "metrics": {}, "rng_after": None}
            ctx.iterations.append(cur)
        cur["metrics"][key] = stored
        cur["rng_after"] = RngWatcher().changed_states()

    def log_param(self, name: str, value: Any) -> Any:
        ctx = self._ctx
        if ctx is not None and _from_older_thread(ctx):
            _refuse_thread("log_param", name, ctx)
            return value
        if ctx is None:
            warnings.warn(
                f"log_param({safe_repr(name)}) outside a tracked cell was not recorded: "
                "run `%track on` or put the cell under `%%track`",
                stacklevel=3,
            )
            return value
        try:
            key = _key(name, ctx)
            if not is_plain_literal(value):
                ctx.warnings.append(f"param {key}: {type(value).__name__} stored as text")
            ctx.params[key] = jsonable(value)
        except Exception as exc:  # a hostile name or value must not break the user's cell
            ctx.warnings.append(f"log_param failed: {safe_repr(exc)}")
        return value

    # -- IPython events -----------------------------------------------------------------------
    def pre_run_cell(self, info: ExecutionInfo) -> None:
        notice = self.writer.take_notice() if self.writer is not None else None
        if notice:  # once per failure, at the top of the next cell: not lost in an old output
            print(f"mlops-nb: warning: {notice}", file=sys.stderr)
        if self._ctx is not None:
            if not getattr(info, "store_history", False):
                self._depth += 1  # user code calling run_cell: part of the outer cell run
                return
            self._ctx = None  # a cell whose post_run_cell never came: drop it
            self._depth = 0
        raw = info.raw_cell or ""
        explicit = raw.lstrip().startswith("%%track")
        if not (self.auto or explicit) or (not explicit and is_control_cell(raw)):
            return
        try:
            self._begin(info, raw, explicit)
        except Exception as exc:
            log.warning("mlops-nb could not start recording this cell: %r", exc)
            self._ctx = None

    def _begin(self, info: ExecutionInfo, raw: str, explicit: bool) -> None:
        if explicit and self.experiment is None:
            self.experiment = self.default_experiment()
        self.ensure_writer()
        if getattr(info, "store_history", True):
            self.backfill(self._current_count() - 1)
        self._last_tree = None
        ctx = _CellContext(
            raw=raw,
            transformed=getattr(info, "transformed_cell", None),
            cell_id=getattr(info, "cell_id", None),
            started=time.time(),
            t0=time.perf_counter(),
            explicit=explicit,
            thread=threading.get_ident(),
            threads_before=frozenset(t.ident for t in threading.enumerate() if t.ident),
        )
        ctx.rng = self.rng.changed_states()
        autolog.STATE.reset_cell()
        self.patch()
        self._watch_display(ctx)
        pyplot = sys.modules.get("matplotlib._pylab_helpers")
        if pyplot is not None:
            ctx.figs_before = {
                id(m.canvas.figure): m.canvas.figure for m in pyplot.Gcf.get_all_fig_managers()
            }
        self._ctx = ctx
        self.io.start()
        self.io.begin_cell()

    def post_execute(self) -> None:
        """Note the figures this cell drew; rendering waits: the inline backend publishes them
        to the frontend next, and that PNG is what we keep (see `_watch_display`)."""
        ctx = self._ctx
        helpers = sys.modules.get("matplotlib._pylab_helpers")
        if ctx is None or helpers is None:
            return
        try:
            for manager in helpers.Gcf.get_all_fig_managers():
                fig = manager.canvas.figure
                key = id(fig)
                if key in ctx.seen_figs:
                    continue
                if key in ctx.figs_before and not fig.stale:
                    continue
                ctx.seen_figs.add(key)
                ctx.candidates.append(fig)
                fig.stale = False  # seen: only a later change makes it new again
        except Exception as exc:
            ctx.warnings.append(f"figure capture failed: {exc!r}")

    def _watch_display(self, ctx: _CellContext) -> None:
        """Keep the PNGs the kernel sends the frontend, instead of rendering figures again."""
        pub = getattr(self.shell, "display_pub", None)
        if pub is None or self._publisher is not None:
            return
        original = pub.publish
        tracker = self

        def publish(data: Any, *args: Any, **kwargs: Any) -> Any:
            current = tracker._ctx
            if current is not None and isinstance(data, dict) and data.get("image/png"):
                try:
                    current.published.append(_png_bytes(data["image/png"]))
                except Exception as exc:
                    current.warnings.append(f"figure capture failed: {exc!r}")
            return original(data, *args, **kwargs)

        pub.publish = publish
        self._publisher = (pub, original, publish)

    def _unwatch_display(self) -> None:
        if self._publisher is None:
            return
        pub, original, ours = self._publisher
        if pub.__dict__.get("publish") is ours:
            if getattr(original, "__func__", None) is getattr(type(pub), "publish", None):
                del pub.publish
            else:
                pub.publish = original
        self._publisher = None

    def _figures(self, ctx: _CellContext) -> list[bytes]:
        if ctx.published:
            return ctx.published
        out = []
        for fig in ctx.candidates:  # no frontend took them (Agg, a script): render here
            try:
                out.append(_png(fig))
                fig.stale = False  # stored: only a later change makes it new again
            except Exception as exc:
                ctx.warnings.append(f"figure capture failed: {exc!r}")
        return out

    def post_run_cell(self, result: ExecutionResult) -> None:
        if self._depth:
            self._depth -= 1
            return
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        try:
            self._record(ctx, result)
        except (Exception, CaptureTimeout, KeyboardInterrupt) as exc:  # never break the kernel
            log.warning("mlops-nb failed to record a cell run: %r", exc)
        finally:
            autolog.STATE.reset_cell()
            if not self.auto:  # a `%%track` cell: patched for this cell only
                self.unpatch()

    # -- building the record ------------------------------------------------------------------
    def _analysis(self, ctx: _CellContext) -> tuple[str, CellAnalysis]:
        if ctx.body is not None:
            code = ctx.transformed or ctx.body
            tree: ast.AST | None = ctx.body_tree
        else:
            code = ctx.transformed if ctx.transformed is not None else self._transform(ctx.raw)
            tree = self._last_tree
        cached = self._analyses.get(code)
        if cached is not None:
            self._analyses.move_to_end(code)
            return code, cached
        analysis = analyze(tree if isinstance(tree, ast.Module) else code)
        self._analyses[code] = analysis
        if len(self._analyses) > _ANALYSIS_CACHE_SIZE:
            self._analyses.popitem(last=False)
        return code, analysis

    def _transform(self, raw: str) -> str:
        try:
            return self.shell.transform_cell(raw)
        except Exception:
            return raw

    def _record(self, ctx: _CellContext, result: ExecutionResult) -> None:
        duration = time.perf_counter() - ctx.t0
        try:  # before capture opens files itself
            reads, writes, left_out = self.io.end_cell()
        except Exception as exc:
            reads, writes, left_out = [], [], 0
            ctx.warnings.append(f"file capture failed: {exc!r}")
        if not self.auto:
            self.io.stop()  # a `%%track` cell with tracking off: nothing stays wrapped
        ns = self.shell.user_ns
        code, analysis = self._analysis(ctx)
        warnings_: list[str] = list(ctx.warnings)
        if analysis.syntax_error:
            warnings_.append(f"could not analyse the cell: {analysis.syntax_error}")
        mutations = _real_mutations(analysis, ns)
        error = result.error_before_exec or result.error_in_exec
        blobs: dict[str, bytes] = {}
        cr = CellRun(
            id=uuid.uuid4().hex,
            session=self.session,
            experiment=self.experiment or self.default_experiment(),
            seq=len(self.log),
            started_at=ctx.started,
            duration_s=round(duration, 6),
            mode=MODE_EXPLICIT if ctx.explicit else MODE_AUTO,
            name=ctx.name,
            notebook=self.notebook,
            cell_id=ctx.cell_id,
            execution_count=result.execution_count,
            code=_blob(blobs, ctx.raw),
            python=_python_blob(blobs, ctx.raw, code),
            defs=analysis.defs,
            uses=analysis.uses,
            mutations=mutations,
            imports=analysis.imports,
            magics=analysis.magics,
            files_read=analysis.files_read,
            files_written=analysis.files_written,
            params={**analysis.params, **ctx.params},
            metric_steps=ctx.metric_steps,
        )
        if error is not None:
            cr.status = STATUS_ERROR
            cr.error = {"type": type(error).__name__, "message": _safe_str(error)[:2000]}
        cr.reads, cr.writes = reads, writes
        if left_out:
            warnings_.append(f"read or wrote {left_out} more files than were recorded")
        try:
            cr.modules, sources = self.project_modules.scan()
            blobs.update(sources)
        except Exception as exc:
            warnings_.append(f"project module capture failed: {exc!r}")
        self._capture_all(cr, ctx, analysis, ns, warnings_)
        blobs.update(self.profiler.take_blobs())  # data profiles (validate/hook.py)
        children: list[dict[str, Any]] = []
        try:
            children = self._capture_autolog(cr, ctx)
        except Exception as exc:
            warnings_.append(f"capture_autolog failed: {exc!r}")
        cr.figures = [_blob(blobs, png) for png in (*ctx.figures, *self._figures(ctx))]
        if ctx.rng:
            cr.rng = {name: _blob(blobs, payload) for name, payload in ctx.rng.items()}
        cr.warnings = warnings_
        iterations = ctx.iterations if len(ctx.iterations) > 1 else []
        if iterations:  # the runs are the iterations; the loop's cell run keeps the steps
            cr.metrics = {}
        self._append(cr, analysis, blobs)
        for k, it in enumerate(iterations):
            self._append_iteration(cr, k, it, iterations[k - 1]["rng_after"] if k else None)
        for child in children:
            self._append_candidate(cr, child)
        if result.execution_count:
            self._last_count = max(self._last_count, int(result.execution_count))
        modules = len(sys.modules)
        if modules != self._modules_seen and self.writer is not None:
            self._modules_seen = modules
            self.writer.update_session(packages=environment.imported_packages)

    def _append(self, cr: CellRun, analysis: CellAnalysis, blobs: dict[str, bytes]) -> None:
        redact_cell_run(cr, blobs, allowed=self.allowed_params)  # before anything keeps it
        externalize_large_values(cr, blobs)
        self.log.add(cr, analysis)
        self.ensure_writer().append(cr, blobs)
        self.recorded += 1

    def _append_iteration(
        self, parent: CellRun, k: int, it: dict[str, Any], rng: dict[str, bytes] | None
    ) -> None:
        blobs: dict[str, bytes] = {}
        child = CellRun(
            id=uuid.uuid4().hex, session=parent.session, experiment=parent.experiment,
            seq=len(self.log), started_at=parent.started_at, status=parent.status,
            mode=parent.mode, name=parent.name, notebook=parent.notebook,
            cell_id=parent.cell_id, execution_count=parent.execution_count,
            code=parent.code, python=parent.python, params=dict(it["loop"]),
            metrics=dict(it["metrics"]), parent=parent.id, iteration=k,
            metric_models={m: v for m, v in parent.metric_models.items() if m in it["metrics"]},
        )
        if rng:
            child.rng = {name: _blob(blobs, payload) for name, payload in rng.items()}
        self._append(child, CellAnalysis(), blobs)

    def _append_candidate(self, parent: CellRun, cand: dict[str, Any]) -> None:
        """One of a search's best candidates: a child run with its own parameters and scores."""
        child = CellRun(
            id=uuid.uuid4().hex, session=parent.session, experiment=parent.experiment,
            seq=len(self.log), started_at=parent.started_at, status=parent.status,
            mode=parent.mode, name=f"{cand['search']} #{cand['rank']}",
            notebook=parent.notebook, cell_id=parent.cell_id,
            execution_count=parent.execution_count, code=parent.code, python=parent.python,
            params={k: jsonable(v) for k, v in cand["params"].items()},
            metrics=dict(cand["metrics"]), parent=parent.id,
        )
        self._append(child, CellAnalysis(), {})

    def _capture_autolog(self, cr: CellRun, ctx: _CellContext) -> list[dict[str, Any]]:
        """Metrics, CV results and searches scikit-learn computed in this cell, named.

        Explicit `log_metric` values win; a loop's per-iteration metrics get their names too.
        Returns the search candidates to record as child runs.
        """
        if not ctx.auto_calls:
            return []
        children: list[dict[str, Any]] = []
        searches: dict[str, list[dict[str, Any]]] = {}
        renames: dict[str, str] = {}
        counts: dict[str, int] = {}
        by_id: dict[int, str] | None = None
        named = autolog.name_calls(ctx.auto_calls)  # before late model names: as the script
        aliases = autolog.bound_names(  # `r2 = model.score(...)`: one metric, named `r2`
            ctx.transformed or self._transform(ctx.raw), named,
            {k: v for k, v in cr.metrics.items() if k not in ctx.metrics}, ctx.metrics)
        for call in ctx.auto_calls:  # `grid = GridSearchCV(...).fit(X, y)`: named only now
            if call.model is None and call.est is not None:
                if by_id is None:
                    by_id = {}
                    for key, value in self.shell.user_ns.items():
                        if not key.startswith("_"):
                            by_id.setdefault(id(value), key)
                call.model = by_id.get(id(call.est))
        for name, call in named:
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
                renames[_provisional(call)] = name
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
                searches[name] = [{**cand, "search": call.model or "search"}
                                  for cand in extra.get("candidates", [])[: self.search_children]]
        for it in ctx.iterations:
            it["metrics"] = {renames.get(k, k): v for k, v in it["metrics"].items()
                             if k in renames or not k.startswith("\0")}
        for name in cr.metrics:
            cr.params.pop(name, None)
        for found in searches.values():
            children.extend(found)
        return children

    # -- what the cell left in the namespace (see namespace.py) -------------------------------
    def _capture_all(self, cr: CellRun, ctx: _CellContext, analysis: CellAnalysis,
                     ns: dict[str, Any], warnings_: list[str]) -> None:
        """Run the capture steps within one time budget (armed once per cell: arming costs a
        few syscalls). A step that runs out of it, or is interrupted, is skipped with a
        warning; after a timeout the remaining steps get a fresh budget."""
        steps = [self._capture_metrics, self._capture_estimators, self._capture_data,
                 self._capture_widgets]
        i = 0
        while i < len(steps):
            try:
                with time_budget():
                    while i < len(steps):
                        capture = steps[i]
                        i += 1
                        try:
                            capture(cr, ctx, analysis, ns, warnings_)
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

    def _capture_metrics(self, cr: CellRun, ctx: _CellContext, analysis: CellAnalysis,
                         ns: dict[str, Any], warnings_: list[str]) -> None:
        cr.metrics = read_metrics(
            ns, analysis, by_name=self.auto and not ctx.explicit,
            watched=[] if ctx.explicit else self.metric_names,
            present=self.metric_names if ctx.explicit else [],
            required=ctx.metric_names,
            warnings=warnings_,
        )
        cr.metrics.update(ctx.metrics)
        for name in cr.metrics:  # a literal assigned to a metric name is a result, not a knob
            if name not in ctx.params:
                cr.params.pop(name, None)

    def _capture_estimators(self, cr: CellRun, ctx: _CellContext, analysis: CellAnalysis,
                            ns: dict[str, Any], warnings_: list[str]) -> None:
        cr.estimators = read_estimators(ns, (*analysis.defs, *cr.mutations))
        for key, value in estimator_params(cr.estimators).items():
            cr.params.setdefault(key, value)

    def _capture_data(self, cr: CellRun, ctx: _CellContext, analysis: CellAnalysis,
                      ns: dict[str, Any], warnings_: list[str]) -> None:
        _, mutated = cell_effects(analysis.uses, cr.mutations, analysis,
                                  self.log.index.functions)
        cr.data = read_data(ns, (*analysis.uses, *analysis.defs, *cr.mutations),
                            analysis.files_read, warn_missing_files=cr.status != STATUS_ERROR,
                            warnings=warnings_, profiler=self.profiler,
                            cache=self.fingerprints,
                            changed=possibly_changed(analysis, ns, mutated))

    def _capture_widgets(self, cr: CellRun, ctx: _CellContext, analysis: CellAnalysis,
                         ns: dict[str, Any], warnings_: list[str]) -> None:
        cr.widget_values = read_widget_values(ns, analysis.value_reads, warnings_)
        for name in password_reads(ns, analysis.value_reads):  # whatever the name
            if name in cr.widget_values:
                cr.widget_values[name] = REDACTED
        cr.params.update({k: jsonable(v) for k, v in cr.widget_values.items()})

    # -- back-fill ----------------------------------------------------------------------------
    def backfill(self, upto: int) -> int:
        """Record inputs `_last_count+1 .. upto` from IPython's history as backfilled runs.

        Cells run while tracking was off still shaped the namespace: without them a later
        run's lineage would have holes and its export would miss code.
        """
        if upto <= self._last_count:
            return 0
        hm = getattr(self.shell, "history_manager", None)
        if hm is None:
            return 0
        raw_hist = hm.input_hist_raw
        parsed_hist = hm.input_hist_parsed
        added = 0
        for n in range(self._last_count + 1, min(upto, len(raw_hist) - 1) + 1):
            raw = raw_hist[n]
            if is_control_cell(raw):
                continue
            code = parsed_hist[n] if n < len(parsed_hist) else self._transform(raw)
            analysis = analyze(code)
            blobs: dict[str, bytes] = {}
            cr = CellRun(
                id=uuid.uuid4().hex,
                session=self.session,
                experiment=self.experiment or self.default_experiment(),
                seq=len(self.log),
                started_at=time.time(),
                mode=MODE_BACKFILLED,
                notebook=self.notebook,
                execution_count=n,
                code=_blob(blobs, raw),
                python=_python_blob(blobs, raw, code),
                defs=analysis.defs,
                uses=analysis.uses,
                mutations=_real_mutations(analysis, self.shell.user_ns),
                imports=analysis.imports,
                magics=analysis.magics,
                files_read=analysis.files_read,
                files_written=analysis.files_written,
                params=dict(analysis.params),
            )
            if analysis.syntax_error:
                cr.warnings.append(f"could not analyse the cell: {analysis.syntax_error}")
            self._append(cr, analysis, blobs)
            added += 1
        self._last_count = max(self._last_count, upto)
        return added


def _step(capture: Any) -> str:
    return capture.__name__.removeprefix("_capture_") + " capture"


def _from_older_thread(ctx: _CellContext) -> bool:
    """A log call from a thread that was already running when the cell started.

    Threads the cell itself started (a thread pool inside a training cell) belong to it. An
    older thread would attach its values to whichever cell happens to run now, which is not
    the cell that computed them (that run may be written already), so such calls are refused.
    MLflow faces the same question and keeps the active run per thread.
    """
    ident = threading.get_ident()
    return ident != ctx.thread and ident in ctx.threads_before


def _refuse_thread(fn: str, name: Any, ctx: _CellContext | None) -> None:
    text = (f"{fn}({safe_repr(name)}) from thread {threading.current_thread().name!r}, "
            "which was running before the current cell started, was not recorded: it would "
            "land on a cell that did not compute it. Log from the cell (join the thread and "
            "log its result) or start the thread in the cell that logs")
    if ctx is not None:
        ctx.warnings.append(text)
    warnings.warn(text, stacklevel=3)


def _key(name: Any, ctx: _CellContext) -> str:
    if isinstance(name, str) and name:
        return str.__str__(name)  # a plain str: a subclass may hash or compare with a bomb
    text = safe_repr(name, 1000)
    ctx.warnings.append(f"name {text} is not a non-empty string; stored as its repr")
    return text


def _blob(blobs: dict[str, bytes], payload: str | bytes) -> str:
    data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    digest = blob_hash(data)
    blobs[digest] = data
    return digest


def _flush_interval() -> float:
    """MLOPS_NB_FLUSH_INTERVAL (seconds): how long the writer gathers cell runs into one write.
    Longer means fewer writes and more cell runs at stake if the kernel is killed outright."""
    from ..store.writer import DEFAULT_FLUSH_INTERVAL

    try:
        value = float(os.environ.get("MLOPS_NB_FLUSH_INTERVAL", DEFAULT_FLUSH_INTERVAL))
    except ValueError:
        return DEFAULT_FLUSH_INTERVAL
    return value if 0 <= value <= 60 else DEFAULT_FLUSH_INTERVAL


def _real_mutations(analysis: CellAnalysis, ns: dict[str, Any]) -> list[str]:
    """What the cell may have mutated, now that the names' types are known (effects.py)."""
    return real_mutations(analysis, ns)


def _python_blob(blobs: dict[str, bytes], raw: str, python: str) -> str:
    """Most cells are plain Python: IPython only adds a newline. Store such code once."""
    if python.rstrip("\n") == raw.rstrip("\n"):
        return _blob(blobs, raw)
    return _blob(blobs, python)


def _provisional(call: autolog.Call) -> str:
    """A series' key until the cell ends and names are chosen (loop iterations use it)."""
    return "\0" + repr((call.fn, call.site, call.data))


def _search_children() -> int:
    """MLOPS_NB_SEARCH_CHILDREN: how many of a search's best candidates become child runs."""
    try:
        value = int(os.environ.get("MLOPS_NB_SEARCH_CHILDREN", "5"))
    except ValueError:
        return 5
    return max(0, min(value, 1000))


def _png_bytes(payload: Any) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        data = bytes(payload)
        if data.startswith(b"\x89PNG"):
            return data
        payload = data.decode("ascii")
    import base64

    return base64.b64decode(payload)


def _png(fig: Any) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return buf.getvalue()


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__} with unprintable message>"


def _notebook_path(shell: Any) -> str | None:
    """The notebook this kernel serves, where the frontend tells us."""
    for source in (os.environ.get("JPY_SESSION_NAME"),
                   shell.user_ns.get("__vsc_ipynb_file__"),
                   shell.user_ns.get("__session__")):
        if isinstance(source, str) and source.endswith(".ipynb"):
            return source
    return None
