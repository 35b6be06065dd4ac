"""The state of the cell now being recorded, and who may add to it.

One `CellContext` lives from `pre_run_cell` to `post_run_cell`; logging calls, autolog, figure
and loop capture write into it, and the record is built from it once the cell ends. It is
dropped then, so nothing per cell stays in the kernel.
"""

from __future__ import annotations

import ast
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from .values import safe_repr


@dataclass
class CellContext:
    raw: str
    transformed: str | None
    cell_id: str | None
    started: float
    t0: float
    explicit: bool
    # state before the cell: JSON bytes, or a call making them (serialised off the cell)
    rng: dict[str, Any] = field(default_factory=dict)
    # the generator objects' states are still to be read, from the names the cell's parse
    # reads (recorder.parsed): the parse comes before the cell runs
    rng_objects_pending: bool = False
    figs_before: dict[int, Any] = field(default_factory=dict)
    figures: list[bytes] = field(default_factory=list)
    seen_figs: set[int] = field(default_factory=set)
    metrics: dict[str, Any] = field(default_factory=dict)
    metric_steps: dict[str, list[Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    name: str | None = None
    metric_names: list[str] = field(default_factory=list)
    # a `%%track` cell's `--experiment` and `--allow-param`: for that cell only
    experiment: str | None = None
    allowed_params: frozenset[str] = frozenset()
    body: str | None = None  # a `%%track` cell: its body, as IPython transformed it
    body_tree: ast.Module | None = None
    loop_names: list[str] | None = None  # targets of a literal `for` loop; [] when none
    iterations: list[dict[str, Any]] = field(default_factory=list)
    # Metric-named variables the sweep loops' bodies bind (`auc = evaluate(params)`), and the
    # object each held when last filed under an iteration (loops.py)
    loop_metrics: list[str] = field(default_factory=list)
    # Variables the sweep loops' bodies may hold each iteration's model in (`m = Ridge(alpha=a)
    # .fit(...)`): read into the iteration at its metrics, so it has its own hyper-parameters
    loop_models: list[str] = field(default_factory=list)
    loop_metric_seen: dict[str, Any] = field(default_factory=dict)
    sweep_overflow: bool = False  # a rewritten loop ran past loops.MAX_SWEEP_ITERATIONS
    thread: int = 0  # the thread the cell runs on, and the threads alive when it started
    threads_before: frozenset[int] = frozenset()
    auto_calls: list[Any] = field(default_factory=list)  # autolog.Call, scikit-learn autolog
    # Values printed under a metric label (`print(f"accuracy: {...}")`), by metric, in order
    printed: dict[str, list[Any]] = field(default_factory=dict)
    published: list[bytes] = field(default_factory=list)  # PNGs the frontend was sent
    candidates: list[Any] = field(default_factory=list)  # figures to render if none were
    mode: str | None = None  # MODE_CALLBACK: a widget callback outside any cell
    # The analysis of the cell's own parse, made as IPython parsed it (recorder.parsed), the
    # code it parsed, and the first and last line of each top-level statement, flat.
    analysis: Any = None
    code: str | None = None
    bounds: list[int] | None = None
    # The garbage collector's young-generation count before IPython parsed the cell, then
    # how many objects the parse added (recorder.collect_early)
    gc_count: int = 0
    parse_objects: int = 0


def from_older_thread(ctx: CellContext) -> bool:
    """A log call from a thread that was already running when the cell started.

    Threads the cell itself started (a thread pool inside a training cell) belong to it. An
    older thread would attach its values to whichever cell happens to run now, which is not
    the cell that computed them (that run may be written already), so such calls are refused.
    MLflow faces the same question and keeps the active run per thread.
    """
    ident = threading.get_ident()
    return ident != ctx.thread and ident in ctx.threads_before


def refuse_thread(fn: str, name: Any, ctx: CellContext | None) -> None:
    text = (f"{fn}({safe_repr(name)}) from thread {threading.current_thread().name!r}, "
            "which was running before the current cell started, was not recorded: it would "
            "land on a cell that did not compute it. Log from the cell (join the thread and "
            "log its result) or start the thread in the cell that logs")
    if ctx is not None:
        ctx.warnings.append(text)
    warnings.warn(text, stacklevel=3)


def logged_name(name: Any, ctx: CellContext) -> str:
    """The key a logged name is stored under: a plain str (a subclass may hash or compare with
    a bomb), or the repr of anything else, with a warning."""
    if isinstance(name, str) and name:
        return str.__str__(name)
    text = safe_repr(name, 1000)
    ctx.warnings.append(f"name {text} is not a non-empty string; stored as its repr")
    return text
