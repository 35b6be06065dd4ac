"""The tracker: one kernel session's recording state, and the cell's way from the IPython
events to a record handed to the writer.

Everything here runs on the kernel's main thread between the user's cells, so it is budgeted:
the AST comes from IPython's own parse (hooks.py), analyses are cached by code, only names
the cell touched are inspected (build.py), and the durable write happens on the store's
writer thread. Any failure inside capture becomes a warning on the cell run; the user's cell
never sees it. The parts live beside this file: hooks.py (plugging into IPython), context.py
(the cell in progress), build.py (the record and namespace capture), figures.py, loops.py
(loop iterations as runs) and backfill.py (cells run while tracking was off).
"""

from __future__ import annotations

import ast
import copy
import gc
import logging
import os
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from itertools import chain
from operator import attrgetter
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..lineage import SessionLog, externalize_large_values, note_functions
from ..records import (
    MODE_AUTO,
    MODE_BACKFILLED,
    MODE_CALLBACK,
    MODE_EXPLICIT,
    STATUS_ERROR,
    CellRun,
)
from ..server.live_path import LivePath, kernel_connection_file
from ..store.location import home_for_writing
from ..validation.hook import Profiler
from . import autolog, environment, figures, hooks, interact, loops, printed
from .analysis import NO_EFFECTS, CellAnalysis, analyze, for_lineage, is_plain_literal
from .backfill import history_cells, is_control_cell
from .build import (
    apply_autolog,
    blob,
    candidate_run,
    capture_namespace,
    code_blobs,
    error_of,
    iteration_run,
    new_run_id,
)
from .context import CellContext, from_older_thread, logged_name, refuse_thread
from .deferred import DeferredSteps
from .effects import real_mutations
from .fingerprint import FingerprintCache
from .guard import CaptureTimeout
from .io_watch import IoWatcher
from .loops import note_iteration, recorded_iterations, rewrite_sweeps, series_key
from .pinned_builtins import pin_builtins
from .project_modules import ProjectModules
from .redaction import redact_cell_run, scrub_session, withhold
from .rng import RngWatcher
from .run_scripts import with_run_scripts
from .sweeps import loop_metrics, loop_models, loop_targets, may_sweep, sweep_loops
from .values import jsonable, metric_value, numeric_scalar, safe_repr

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell

    from ..store.writer import SessionWriter

__all__ = ["Tracker", "active_tracker", "is_control_cell", "new_session_id"]

log = logging.getLogger(__name__)

_ANALYSIS_CACHE_SIZE = 32  # re-runs of recent cells; bounded: memory per run stays flat
_SEEN_CODES = _ANALYSIS_CACHE_SIZE  # hashes of recent cell texts: a re-run is one of them
_ACTIVE: Tracker | None = None


def active_tracker() -> Tracker | None:
    return _ACTIVE


def new_session_id() -> str:
    """Sortable by start time and unique across machines: `20261126T071501-3f9a1c2e`."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(4).hex()


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
        self._session_cwd: str | None = None  # the session's recorded working directory
        self._log = SessionLog()  # completed on the writer thread: read it through `log`
        self._steps = DeferredSteps()
        self._seq = 0  # the next cell run's seq (the log catches up when settled)
        self.last_id: str | None = None  # the last cell run handed to the writer
        self.last_experiment: str | None = None  # and its experiment
        # The kernel thread's own copy of the functions the session has defined (what the
        # lineage index keeps too), for the data capture of the next cell without waiting
        # for the index.
        self.functions: dict[str, Any] = {}
        self.rng = RngWatcher()
        self.io = IoWatcher()
        self.project_modules = ProjectModules()
        self.profiler = Profiler()  # one profile per new data fingerprint (validate/hook.py)
        self.fingerprints = FingerprintCache()
        self.recorded = 0
        self._notebook = LivePath(_notebook_path(shell), kernel_connection_file())
        self._experiment_default: str | None = None
        self.patcher = autolog.Patcher()
        self.search_children = _search_children()
        self._ctx: CellContext | None = None
        self._depth = 0
        self._last_count = 0
        self._modules_seen = 0
        self._analyses: OrderedDict[str, CellAnalysis] = OrderedDict()
        self._seen: dict[int, None] = {}  # hash of each recent cell text analysed once
        self._registered = False
        self._display = figures.DisplayWatch()

    @property
    def log(self) -> SessionLog:
        """The session's lineage index, complete up to the last cell run recorded (what the
        writer thread has not finished yet is finished here first)."""
        self._steps.settle()
        return self._log

    @property
    def next_seq(self) -> int:
        return self._seq

    @property
    def in_cell(self) -> bool:
        """True while a tracked cell runs (logging calls land on it)."""
        return self._ctx is not None

    @property
    def current_cell(self) -> CellContext | None:
        """The running tracked cell (None between cells): what `mnb.set_run_name` names."""
        return self._ctx

    # -- registration (hooks.py) --------------------------------------------------------------
    def register(self) -> None:
        """Install the hooks once, however many times the extension is (re)loaded."""
        global _ACTIVE
        self.unregister()
        hooks.install(self)
        self._registered = True
        _ACTIVE = self

    def unregister(self) -> None:
        global _ACTIVE
        hooks.uninstall(self)
        self._registered = False
        self.io.stop()
        self.unpatch()
        self._display.unwatch()
        if _ACTIVE is self:
            _ACTIVE = None

    def parsed(self, tree: ast.AST, source: Any = None) -> None:
        """IPython parsed code: if it is the cell's own parse (not `%time`'s or a nested
        run_cell's), analyse it now, so the cell is never parsed twice, and let the tree go.
        IPython frees it before the cell ends, as it does untracked: kept until the record
        was built, its hundreds of nodes were freed in the recorder's hook instead (a tenth
        of a millisecond for a 50-statement cell), or, handed to the writer thread, outlived
        the next cell's garbage collections, which then ran once a cell."""
        ctx = self._ctx
        if not (self._registered and ctx is not None and isinstance(tree, ast.Module)
                and isinstance(source, str)):
            return
        if ctx.code is not None or self._depth:  # `%%time`'s parse of its body, `%%capture`'s
            if ctx.body is None and "print" in source:  # run_cell: the cell's own prints
                self._rewrite_prints(tree)
            return
        ctx.code = source  # the cell's own parse is the first: later ones are `%time`'s...
        ctx.parse_objects = gc.get_count()[0] - ctx.gc_count  # < 0: it collected meanwhile
        try:  # inside IPython's compile step: nothing may reach the user's cell
            code, analysis = self._analysed(source, tree)
            # where each top-level statement is, for autolog's names: read in C (a loop here
            # was 4% of a 50-statement cell's recorder, in bytecodes)
            bounds = list(chain.from_iterable(map(_LINES, tree.body)))
            if None in bounds:  # an AST transformer's statements without end positions
                bounds = [b if b is not None else bounds[i - 1] for i, b in enumerate(bounds)]
        except Exception as exc:  # analysed from the text once the cell ran, warned there
            log.debug("mlops-nb could not analyse the cell as parsed: %r", exc)
            self._rng_objects(ctx, None, source)
            return
        ctx.code, ctx.analysis, ctx.bounds = code, analysis, bounds
        self._rng_objects(ctx, analysis, source)
        if not may_sweep(tree.body):  # no loop: a metric need not parse the cell again
            ctx.loop_names = []
        else:
            self._rewrite_sweeps(ctx, tree)
        if "print" in analysis.load_counts:  # a metric it only prints (printed.py)
            self._rewrite_prints(tree)

    def _rewrite_prints(self, tree: ast.Module) -> None:
        try:
            if printed.wrap(printed.labelled_values(tree.body), printed.through_seen):
                printed.HOOK[0] = self._printed
                self.shell.user_ns_hidden[printed.SEEN_NAME] = printed.seen
                self.shell.user_ns[printed.SEEN_NAME] = printed.seen
        except Exception as exc:  # the prints run as written
            log.debug("mlops-nb could not read the printed metrics: %r", exc)

    def _printed(self, name: str, value: Any) -> None:
        """A value the cell printed under a metric label: a number, unless the cell computed
        it with a function autolog already named (`print("AUC", roc_auc_score(...))`)."""
        ctx = self._ctx
        if ctx is None:
            return
        stored = numeric_scalar(value)
        if stored is None:
            return
        calls = ctx.auto_calls
        if calls:
            for call in calls[-4:]:  # computed in the print itself: just before
                if call.kind == "metric" and numeric_scalar(call.value) == stored:
                    return
        values = ctx.printed.get(name)
        if values is None:
            ctx.printed[name] = [stored]
        else:
            values.append(stored)
        if ctx.loop_names != [] and name not in ctx.metrics:  # explicit logging wins
            self._note_iteration(ctx, name, stored)

    def _rewrite_sweeps(self, ctx: CellContext, tree: ast.Module) -> None:
        """Sweep loops whose bodies bind metric-named variables iterate through
        `loops.sweep`, which tells `_sweep_end` each iteration's end: a run per iteration of
        `for lr in lrs: val_loss = train(lr)` with no metric function called."""
        try:
            found = sweep_loops(tree)
            metrics = loop_metrics(found)
            if not metrics:
                return
            ctx.loop_names, ctx.loop_metrics = loop_targets(found), metrics
            ctx.loop_models = loop_models(found)
            if rewrite_sweeps(found, metrics):
                loops.SWEEP_HOOKS[0] = (self._sweep_begin, self._sweep_end,
                                        self._sweep_overflow)
        except Exception as exc:  # the loop runs as written
            log.debug("mlops-nb could not rewrite the sweep loops: %r", exc)

    def _sweep_begin(self) -> CellContext | None:
        ctx = self._ctx
        if ctx is None or self._depth:
            return None
        loops.begin_sweep(ctx, self.shell.user_ns)
        return ctx

    def _sweep_end(self, cell: CellContext | None) -> None:
        ctx = self._ctx
        if ctx is not None and ctx is cell and not self._depth:
            loops.mark_iteration(ctx, self.shell.user_ns,
                                 lambda: ctx.transformed or self._transform(ctx.raw))

    def _sweep_overflow(self, cell: CellContext | None) -> None:
        if self._ctx is not None and self._ctx is cell:
            self._ctx.sweep_overflow = True

    def _rng_objects(self, ctx: CellContext, analysis: CellAnalysis | None,
                     source: str) -> None:
        """The states of the generator objects the cell reads, before it runs: the names
        its analysis found it loads, those the functions it defines read or change (drawn
        when it calls them), or, without an analysis, every word of its text."""
        if not ctx.rng_objects_pending:
            return
        ctx.rng_objects_pending = False
        ns = self.shell.user_ns
        try:
            if analysis is None:
                ctx.rng.update(self.rng.object_states(source, ns))
                return
            names = dict.fromkeys(analysis.load_counts)
            for effects in analysis.functions.values():
                names.update(dict.fromkeys(effects.reads | effects.mutates | effects.writes))
            ctx.rng.update(self.rng.named_states(names, ns))
        except Exception as exc:  # inside IPython's compile step: never the user's problem
            log.debug("mlops-nb could not read the generators' states: %r", exc)

    # -- scikit-learn autolog (see autolog.py) ------------------------------------------------
    def patch(self) -> None:
        """Wrap scikit-learn while tracking is on; sklearn is never imported here, only
        patched once a cell has imported it (at once if already loaded)."""
        autolog.STATE.sink = self._on_autolog
        self.patcher.patch_loaded(self.shell.user_ns)
        self.swap_project_modules()

    def swap_project_modules(self, *, unscanned: bool = False) -> None:
        """The wrappers into the notebook's own modules too (the ones an export copies to
        `lib/`), as into its namespace: a helper imported before `%track on` bound the
        original metric functions. The export's script does the same (`swap_modules`)."""
        try:
            self.patcher.swap_modules(self.project_modules.loaded(unscanned=unscanned))
        except Exception as exc:  # never let capture break the cell
            log.debug("mlops-nb could not patch the notebook's own modules: %r", exc)

    def unpatch(self) -> None:
        if autolog.STATE.sink == self._on_autolog:
            autolog.STATE.sink = None
        installed = loops.SWEEP_HOOKS[0]
        if installed is not None and installed[1] == self._sweep_end:
            loops.SWEEP_HOOKS[0] = None
        if printed.HOOK[0] == self._printed:
            printed.HOOK[0] = None
        for names in (self.shell.user_ns, self.shell.user_ns_hidden):  # left as found
            names.pop(printed.SEEN_NAME, None)
        self.patcher.unpatch()

    def _on_autolog(self, call: autolog.Call) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        ctx.auto_calls.append(call)
        if call.kind != "metric" or call.value is None or ctx.loop_names == []:
            return  # (no sweep loop in the cell: no iteration to file it under, no key needed)
        try:
            self._note_iteration(ctx, series_key(call), call.value, call.est, call.model)
        except Exception as exc:  # never let capture break the cell
            ctx.warnings.append(f"loop iteration capture failed: {exc!r}")

    # -- control ------------------------------------------------------------------------------
    @property
    def notebook(self) -> str | None:
        """The notebook's current path: follows File > Rename (server/live_path.py)."""
        return self._notebook.get()

    @notebook.setter
    def notebook(self, value: str | None) -> None:
        self._notebook = LivePath(value)
        self._experiment_default = None

    def default_experiment(self) -> str:
        """The notebook's stem when first asked: a rename keeps its runs in one experiment."""
        if self._experiment_default is None:
            nb = self.notebook
            self._experiment_default = (Path(nb).stem or "default") if nb else "default"
        return self._experiment_default

    def ensure_writer(self) -> SessionWriter:
        if self.writer is None:
            from ..store.writer import SessionWriter  # at `%track on`, not `%load_ext`

            self.home = self.home or home_for_writing()
            self.writer = SessionWriter(self.home, self.session,
                                        flush_interval=_flush_interval())
            self.io.ignore_under(self.home)
            cwd = self._session_cwd = os.getcwd()
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
        self.swap_project_modules(unscanned=True)  # what the back-fill adopted, too
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
        self._steps.settle()  # what a dead writer left: the session log stays whole

    def _current_count(self) -> int:
        """The execution count of the cell now running (IPython already moved past it)."""
        return max(int(self.shell.execution_count) - 1, 0)

    # -- `%%track` ----------------------------------------------------------------------------
    def run_tracked_cell(self, body: str, *, name: str | None = None,
                         metrics: list[str] | None = None, experiment: str | None = None,
                         allow_params: list[str] | None = None) -> Any:
        """Run a `%%track` cell's body in the user namespace as this cell, recording it like
        `%track on` would; returns the value of a last expression, as a cell does."""
        shell = self.shell
        transformed = shell.transform_cell(body)
        tree = shell.transform_ast(ast.parse(transformed))
        ctx = self._ctx
        if ctx is not None:  # "this cell only": its options are the cell's, not the session's
            ctx.name = name
            ctx.metric_names = list(metrics or ())
            ctx.experiment = experiment or None
            ctx.allowed_params = frozenset(allow_params or ())
            ctx.body = body
            ctx.transformed = transformed
            ctx.body_tree = tree
            ctx.loop_names = None  # the body's loops, not the magic call's (`parsed`)
        run = tree
        if ctx is not None and "print" in transformed:  # a metric it only prints: read from
            run = copy.deepcopy(tree)  # a copy, the analysis reads the body as written
            self._rewrite_prints(run)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(run.body.pop().value)
            if run is not tree:
                tree.body.pop()
        filename = shell.compile.cache(transformed)
        exec(compile(run, filename, "exec"), shell.user_ns)
        if last is not None:
            return eval(compile(last, filename, "eval"), shell.user_ns)
        return None

    # -- explicit logging ---------------------------------------------------------------------
    def log_metric(self, name: str, value: Any) -> Any:
        ctx = self._ctx
        if ctx is not None and from_older_thread(ctx):
            refuse_thread("log_metric", name, ctx)
            return value
        if ctx is None:
            warnings.warn(
                f"log_metric({safe_repr(name)}) outside a tracked cell was not recorded: "
                "run `%track on` or put the cell under `%%track`",
                stacklevel=3,
            )
            return value
        try:
            key = logged_name(name, ctx)
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

    def _note_iteration(self, ctx: CellContext, key: str, stored: Any, model: Any = None,
                        model_name: str | None = None) -> None:
        """A metric was logged: inside a sweep loop it belongs to an iteration (loops.py)."""
        note_iteration(ctx, self.shell.user_ns, key, stored,
                       lambda: ctx.transformed or self._transform(ctx.raw), model, model_name)

    def log_param(self, name: str, value: Any) -> Any:
        ctx = self._ctx
        if ctx is not None and from_older_thread(ctx):
            refuse_thread("log_param", name, ctx)
            return value
        if ctx is None:
            warnings.warn(
                f"log_param({safe_repr(name)}) outside a tracked cell was not recorded: "
                "run `%track on` or put the cell under `%%track`",
                stacklevel=3,
            )
            return value
        try:
            key = logged_name(name, ctx)
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
            self._begin(info, raw, explicit, parse_follows=hooks.parses_through(self))
        except Exception as exc:
            log.warning("mlops-nb could not start recording this cell: %r", exc)
            self._ctx = None

    def _begin(self, info: ExecutionInfo, raw: str, explicit: bool,
               parse_follows: bool) -> None:
        if explicit and self.experiment is None:
            self.experiment = self.default_experiment()
        self.ensure_writer()
        if getattr(info, "store_history", True):
            self.backfill(self._current_count() - 1)
        ctx = CellContext(
            raw=raw,
            transformed=getattr(info, "transformed_cell", None),
            cell_id=getattr(info, "cell_id", None),
            started=time.time(),
            t0=time.perf_counter(),
            explicit=explicit,
            thread=threading.get_ident(),
            threads_before=_thread_idents(),
        )
        ctx.rng = self.rng.changed_lazily()  # serialised by `_finish`
        if explicit or not parse_follows:  # a `%%track` body, a widget callback: the words
            ctx.rng.update(self.rng.object_states(raw, self.shell.user_ns))
        else:  # from the names the parse finds the cell reads (`parsed`): no pass over words
            ctx.rng_objects_pending = True
        autolog.STATE.reset_cell()
        self.patch()
        self._display.watch(self.shell, lambda: self._ctx)
        ctx.figs_before = figures.open_figures()
        self._ctx = ctx
        self.io.start()
        self.io.begin_cell()
        ctx.gc_count = gc.get_count()[0]

    def post_execute(self) -> None:
        """Note the figures this cell drew; rendering waits: the inline backend publishes them
        to the frontend next, and that PNG is what we keep (figures.py)."""
        if self._ctx is not None:
            figures.note_drawn(self._ctx)

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
            interact.wrap_new_widgets(self, ctx.raw)
            if not self.auto:  # a `%%track` cell: patched for this cell only
                self.unpatch()
            parse_objects = ctx.parse_objects
            # The context and the analysis it holds die here, not after being walked (and
            # promoted) by the collection below: a 50-statement cell's are ~60 objects.
            del ctx
            collect_early(parse_objects)

    def run_callback(self, code: str, params: dict[str, Any], call: Callable[[], Any]) -> Any:
        """Record `call`, a widget callback running outside any cell (the user moved an
        `interact` slider), as a cell run of `code`, the call it amounts to, with the widget
        values as parameters (capture/interact.py)."""
        info = SimpleNamespace(raw_cell=code, transformed_cell=code, cell_id=None,
                               store_history=False)
        try:
            self._begin(info, code, explicit=False,  # type: ignore[arg-type]
                        parse_follows=False)
        except Exception as exc:
            log.warning("mlops-nb could not start recording a widget callback: %r", exc)
            self._ctx = None
            return call()
        if self._ctx is not None:
            self._ctx.mode = MODE_CALLBACK
            self._ctx.params.update(params)
        result = SimpleNamespace(error_before_exec=None, error_in_exec=None,
                                 execution_count=None)
        try:
            return call()
        except BaseException as exc:
            result.error_in_exec = exc
            raise
        finally:
            self.post_run_cell(result)  # type: ignore[arg-type]

    # -- building the record (build.py) -------------------------------------------------------
    def _analysis(self, ctx: CellContext) -> tuple[str, CellAnalysis]:
        if ctx.body is not None:
            return self._analysed(ctx.transformed or ctx.body, ctx.body_tree)
        if ctx.analysis is not None and ctx.code is not None:  # analysed as IPython parsed it
            return ctx.code, ctx.analysis
        # Not parsed (a syntax error) or parsed by someone else's compiler: from the text.
        code = ctx.transformed if ctx.transformed is not None else self._transform(ctx.raw)
        return self._analysed(code, None)

    def _analysed(self, code: str, tree: ast.AST | None) -> tuple[str, CellAnalysis]:
        cached = self._analyses.get(code)
        if cached is not None:
            self._analyses.move_to_end(code)
            return code, cached
        analysis = analyze(tree if isinstance(tree, ast.Module) else code)
        # Only a text run before is cached: a cached analysis outlives many cells, so caching
        # every new cell's would make the kernel's garbage collector run more often and
        # longer (the ints of `_seen` are nothing to it).
        key = hash(code)
        if key in self._seen:
            self._analyses[code] = analysis
            if len(self._analyses) > _ANALYSIS_CACHE_SIZE:
                self._analyses.popitem(last=False)
        else:
            self._seen[key] = None
            if len(self._seen) > _SEEN_CODES:
                del self._seen[next(iter(self._seen))]
        return code, analysis

    def _transform(self, raw: str) -> str:
        try:
            return self.shell.transform_cell(raw)
        except Exception:
            return raw

    def _record(self, ctx: CellContext, result: ExecutionResult) -> None:
        duration = time.perf_counter() - ctx.t0
        warnings_: list[str] = list(ctx.warnings)
        try:  # before capture opens files itself
            reads, writes, left_out = self.io.end_cell()
        except Exception as exc:
            reads, writes, left_out = [], [], 0
            warnings_.append(f"file capture failed: {exc!r}")
        if not self.auto:
            self.io.stop()  # a `%%track` cell with tracking off: nothing stays wrapped
        ns = self.shell.user_ns
        code, analysis = self._analysis(ctx)
        scripts: list[dict[str, Any]] = []
        if analysis.run_lines:  # `%run helpers.py`: what the script bound is the cell's
            analysis, scripts = with_run_scripts(analysis, os.getcwd())
        if analysis.syntax_error:
            warnings_.append(f"could not analyse the cell: {analysis.syntax_error}")
        error = result.error_before_exec or result.error_in_exec
        blobs: dict[str, bytes] = {}
        raw_blob, python = code_blobs(blobs, ctx.raw, code)
        cr = CellRun.from_analysis(
            analysis,
            id=new_run_id(),
            session=self.session,
            experiment=ctx.experiment or self.experiment or self.default_experiment(),
            seq=self._seq,
            started_at=ctx.started,
            duration_s=round(duration, 6),
            mode=ctx.mode or (MODE_EXPLICIT if ctx.explicit else MODE_AUTO),
            name=ctx.name,
            notebook=self._notebook.get(ctx.cell_id),
            cell_id=ctx.cell_id,
            execution_count=result.execution_count,
            code=raw_blob,
            python=python,
            mutations=real_mutations(analysis, ns),
            params={**analysis.params, **ctx.params},
            metric_steps=ctx.metric_steps,
            warnings=warnings_,
        )
        if error is not None:
            cr.status = STATUS_ERROR
            cr.error = error_of(error)
        cr.reads, cr.writes = reads, writes
        if reads or writes or analysis.files_read or analysis.files_written:
            cr.cwd = _moved_cwd(self._session_cwd)
        if scripts:
            seen = {r.get("path") for r in reads}
            cr.reads = [*reads, *(r for r in scripts if r["path"] not in seen)]
        if left_out:
            warnings_.append(f"read or wrote {left_out} more files than were recorded")
        try:
            cr.modules, sources = self.project_modules.scan()
            blobs.update(sources)
            if analysis.imports:  # its own modules the notebook imported before `%load_ext`
                adopted, sources = self.project_modules.adopt(analysis.imports)
                cr.modules.extend(adopted)
                blobs.update(sources)
        except Exception as exc:
            warnings_.append(f"project module capture failed: {exc!r}")
        capture_namespace(self, cr, ctx, analysis, ns, warnings_)
        blobs.update(self.profiler.take_blobs())  # data profiles (validate/hook.py)
        children: list[dict[str, Any]] = []
        try:
            children = apply_autolog(  # a `%%track` body's tree lost its last expression
                cr, ctx, ns, self.search_children, code,
                ctx.bounds if ctx.body is None else None)
        except Exception as exc:
            warnings_.append(f"capture_autolog failed: {exc!r}")
        if ctx.printed:
            printed.file_printed(cr.metrics, cr.metric_steps, ctx.printed, analysis.defs)
        cr.figures = [blob(blobs, png) for png in (*ctx.figures, *figures.rendered(ctx, warnings_))]
        iterations = recorded_iterations(ctx, ns)
        if iterations:  # the runs are the iterations; the loop's cell run keeps the steps
            cr.metrics = {}
        # The cell's parse is not kept: IPython frees it when the cell ends, as it does
        # untracked. (Handing it to the writer thread to free cost far more than freeing it:
        # its nodes outlived the next cell's collections, which ran once a cell instead of
        # once in thirty and promoted them, doubling the kernel's added CPU per cell.)
        allowed = frozenset(self.allowed_params.union(ctx.allowed_params)  # once, for its
                            if ctx.allowed_params else self.allowed_params)  # children too
        self._append(cr, analysis, blobs, rng=ctx.rng, allowed=allowed)
        for k, it in enumerate(iterations):
            child_blobs: dict[str, bytes] = {}
            rng = iterations[k - 1]["rng_after"] if k else None
            self._append(iteration_run(cr, self._seq, k, it, rng, child_blobs),
                         NO_EFFECTS, child_blobs, parent=cr, allowed=allowed)
        for cand in children:
            self._append(candidate_run(cr, self._seq, cand), NO_EFFECTS, {}, parent=cr,
                         allowed=allowed)
        if result.execution_count:
            self._last_count = max(self._last_count, int(result.execution_count))
        modules = len(sys.modules)
        if modules != self._modules_seen and self.writer is not None:
            self._modules_seen = modules
            pin_builtins()  # in our modules loaded since `%track on` (pinned_builtins.py)
            self.writer.update_session(packages=environment.imported_packages)

    def _append(self, cr: CellRun, analysis: CellAnalysis, blobs: dict[str, bytes],
                parent: CellRun | None = None, rng: dict[str, Any] | None = None,
                allowed: frozenset[str] | None = None) -> None:
        """The one way out: hand the record to the writer, which completes it on its thread
        (RNG states serialised, redact, move large values to blobs, add to the lineage
        index: `_finish`) before anything keeps it. A child run (`parent`) takes its parent's
        code once that is redacted."""
        self._seq += 1
        self.last_id = cr.id
        self.last_experiment = cr.experiment  # a `%%track -e` cell's own
        note_functions(self.functions, cr.defs, analysis.functions)
        analysis = for_lineage(analysis)
        if allowed is None:  # a back-filled cell: the session's names only
            allowed = frozenset(self.allowed_params)
        # partials, not closures: a closure allocates a cell per name it captures, and each
        # object a record holds until the writer is done makes the kernel's collector run
        # sooner in back-to-back cells
        k = self._steps.add(partial(self._finish, cr, analysis, blobs, allowed, parent, rng))
        if not self.ensure_writer().append(cr, blobs, finish=partial(self._steps.run_upto, k)):
            self._steps.run_upto(k)  # dropped (the store has been failing): index it still
        self.recorded += 1

    def _finish(self, cr: CellRun, analysis: CellAnalysis, blobs: dict[str, bytes],
                allowed: frozenset[str], parent: CellRun | None,
                rng: dict[str, Any] | None = None) -> bool:
        """Complete a record (any thread, in seq order: capture/deferred.py). A record whose
        secrets could not be checked keeps its place in the session and nothing else."""
        try:
            if rng:  # the states before the cell, copied then; serialised now
                cr.rng = {name: blob(blobs, payload() if callable(payload) else payload)
                          for name, payload in rng.items()}
            if parent is not None:
                cr.code, cr.python = parent.code, parent.python
            redact_cell_run(cr, blobs, allowed=allowed)
            externalize_large_values(cr, blobs)
        except Exception as exc:
            log.warning("mlops-nb could not check a cell run for secrets: %r", exc)
            withhold(cr, blobs, exc)
        self._log.add(cr, analysis)
        return True

    # -- back-fill (backfill.py) --------------------------------------------------------------
    def backfill(self, upto: int) -> int:
        """Record inputs `_last_count+1 .. upto` from IPython's history as backfilled runs."""
        if upto <= self._last_count:
            return 0
        added = 0
        for n, raw, code in history_cells(self.shell, self._last_count, upto, self._transform):
            analysis = analyze(code)
            scripts: list[dict[str, Any]] = []
            if analysis.run_lines:
                analysis, scripts = with_run_scripts(analysis, os.getcwd())
            blobs: dict[str, bytes] = {}
            raw_blob, python = code_blobs(blobs, raw, code)
            cr = CellRun.from_analysis(
                analysis,
                id=new_run_id(),
                session=self.session,
                experiment=self.experiment or self.default_experiment(),
                seq=self._seq,
                started_at=time.time(),
                mode=MODE_BACKFILLED,
                notebook=self.notebook,
                execution_count=n,
                code=raw_blob,
                python=python,
                mutations=real_mutations(analysis, self.shell.user_ns),
            )
            cr.reads = scripts
            if analysis.syntax_error:
                cr.warnings.append(f"could not analyse the cell: {analysis.syntax_error}")
            if analysis.imports:  # modules it imported before `%load_ext`: the export needs them
                try:
                    cr.modules, sources = self.project_modules.adopt(analysis.imports)
                    blobs.update(sources)
                except Exception as exc:
                    cr.warnings.append(f"project module capture failed: {exc!r}")
            self._append(cr, analysis, blobs)
            added += 1
        self._last_count = max(self._last_count, upto)
        return added


# What a cell adds to the collector's count beside its parse: the recorder's context and
# analysis (about 55 objects for a 50-statement cell) and IPython's compile.
_CELL_HEADROOM = 150


def collect_early(parse_objects: int) -> None:
    """Collect the young generation now, at the end of a cell, when a next cell like this one
    would pass the collector's threshold in its own parse or compile. The records a cell
    hands the writer thread stay counted until that thread next runs, which in back-to-back
    cells is after the next cell's parse; there the collection walks the whole parse tree
    (0.09 ms for a 50-statement cell, every second such cell), here only what is young now.
    The same collection, made where it is cheap: of the middle generation too when its count
    is over its threshold, as the collector itself would choose (the oldest one is left to
    the collector, which weighs it by what survived); none when the user turned the
    collector off or set no threshold. Nor for a short cell (a parse under a quarter of the
    threshold): a collection inside its parse walks little more than one anywhere else, and
    made early it wastes the headroom left, so the kernel collects more often (19-20 young
    collections in 250 twenty-parameter cells, against 11-12 when they are left to the
    collector, wherever the count crosses its threshold)."""
    if parse_objects <= 0:
        return
    thresholds = gc.get_threshold()
    counts = gc.get_count()
    if (thresholds[0] and parse_objects * 4 >= thresholds[0]
            and counts[0] + parse_objects + _CELL_HEADROOM > thresholds[0]
            and gc.isenabled()):
        gc.collect(1 if counts[1] > thresholds[1] else 0)


_LINES = attrgetter("lineno", "end_lineno")


def _thread_idents() -> frozenset[int]:
    """The threads running now (`context.from_older_thread`), read from threading's own
    table of them in one C call; `threading.enumerate()` takes a lock, builds a list, and
    reads each thread's `ident` property, before every cell."""
    active = getattr(threading, "_active", None)
    if isinstance(active, dict):
        return frozenset(active)
    return frozenset(t.ident for t in threading.enumerate() if t.ident)


def _moved_cwd(session_cwd: str | None) -> str | None:
    """The working directory now, when the notebook moved from the session's (`os.chdir`,
    `%cd`): what the cell's relative paths meant; None when it did not."""
    try:
        cwd = os.getcwd()
    except OSError:  # the folder was removed under the kernel
        return None
    return None if session_cwd is None or cwd == session_cwd else cwd


def _flush_interval() -> float:
    """How long the writer gathers cell runs into one write (MLOPS_NB_FLUSH_INTERVAL)."""
    from .. import config

    return float(config.read(config.FLUSH_INTERVAL))


def _search_children() -> int:
    """How many of a search's best candidates become child runs (MLOPS_NB_SEARCH_CHILDREN)."""
    from .. import config

    return int(config.read(config.SEARCH_CHILDREN))


def _notebook_path(shell: Any) -> str | None:
    """The notebook this kernel serves, where the frontend tells us."""
    for source in (os.environ.get("JPY_SESSION_NAME"),
                   shell.user_ns.get("__vsc_ipynb_file__"),
                   shell.user_ns.get("__session__")):
        if isinstance(source, str) and source.endswith(".ipynb"):
            return source
    return None
