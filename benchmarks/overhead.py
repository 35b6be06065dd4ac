"""Critical-path cost of `%track on`, measured in a real InteractiveShell.

Each cell goes through `shell.run_cell(code, store_history=True)` exactly like a notebook cell
in a kernel, timed from the call to its return (wall clock; the main thread's CPU time is kept
too, as a figure that a loaded machine disturbs less). One process runs the same sequence of
cells either as the baseline (IPython alone, no extension), with the extension loaded but
tracking never turned on, or tracked (`%load_ext mlops_nb` then `%track on`); the driver
(benchmarks/main.py) runs the processes in a palindromic order so a drift of the machine hits
all alike, and reports the median of the tracked cells minus the median of the baseline cells.
Separate processes, not `%track off`/`on` blocks in one shell: cells run while tracking is off
are back-filled at the next `%track on`, which would change the session the tracked cells see.

The background writer runs while the tracked cells run (it coalesces and rewrites segment files
every ~50 ms): whatever it takes from the main thread is included, as it would be in "Run all".

    python -m benchmarks.overhead pure|loaded|tracked [--home STORE] [--cells 250] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import write_out

SETUP = "import math\nimport random\nhistory = []\n"


def trivial_cell(i: int) -> str:
    return f"pass  # cell {i}"


def empty_cell(i: int) -> str:
    return ""


def fifty_statement_cell(i: int, *, chained: bool = False) -> str:
    """50 top-level statements of the kind a notebook cell has; distinct per `i`.

    Literal parameters, arithmetic on earlier names, containers, calls, an f-string, a draw
    from `random` (so the RNG state is captured), and a metric at the end, so each cell run is a
    *run* (lineage, effective parameters and an index row are computed for it).

    `chained=True` also appends to a list the setup cell defined (`history.append(...)`), as
    notebooks do with a results list or a DataFrame mutated cell after cell. A mutation makes
    the cell depend on the name's previous definer (the cell before), so a run's lineage is the
    whole session so far: that variant shows how the cost grows with the session's length.
    """
    lines = [
        f"learning_rate = {0.001 * (i + 1)!r}",
        f"max_depth = {i % 7 + 2}",
        f"criterion = {['gini', 'entropy', 'log_loss'][i % 3]!r}",
        f"n_estimators = {100 + i}",
        f"label = 'cell {i}'",
    ]
    for k in range(30):
        lines.append(f"a{k} = {'max_depth' if k == 0 else f'a{k - 1}'} * {k + 1} + {i}")
    lines += [
        "items = [a0, a1, a2, a3]",
        "history.append(a4)" if chained else "items = items + [a4]",
        "cfg = {'depth': max_depth, 'lr': learning_rate}",
        "cfg['n'] = n_estimators",
        "total = sum(items)",
        "root = math.sqrt(abs(total))",
        "ratio = a29 / (1 + total)",
        "text = f'{label}: {total}'",
        "pairs = sorted(cfg)",
        "biggest = max(items)",
        "noise = random.random()",
        "count = len(pairs)",
        "flag = biggest > 10",
        "scale = root * learning_rate",
        "accuracy = 1 / (1 + abs(ratio) + scale)",
    ]
    assert len(lines) == 50, len(lines)
    return "\n".join(lines)


def chained_fifty(i: int) -> str:
    return fifty_statement_cell(i, chained=True)


def workload_cell(i: int) -> str:
    """MLflow's benchmark workload as a notebook cell: 20 parameters and 5 metrics."""
    lines = [f"p{k} = {(i * 31 + k) % 97}" for k in range(20)]
    lines += [f"{m} = {((i * 7 + k) % 1000) / 1000!r}" for k, m in
              enumerate(("accuracy", "f1", "precision", "recall", "val_loss"))]
    return "\n".join(lines)


def identical_fifty(i: int) -> str:
    return fifty_statement_cell(0)


KINDS: dict[str, Callable[[int], str]] = {
    "empty": empty_cell,
    "trivial": trivial_cell,
    "fifty": fifty_statement_cell,
    "fifty_identical": identical_fifty,
    "fifty_chained": chained_fifty,
    "workload": workload_cell,
}


def make_shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"  # both sides alike; keeps sqlite out of the way
    InteractiveShell.clear_instance()
    return InteractiveShell.instance(config=cfg)


def _run(ip: Any, code: str, cpu: list[float] | None = None) -> float:
    c0 = time.thread_time()
    t0 = time.perf_counter()
    res = ip.run_cell(code, store_history=True)
    dt = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(time.thread_time() - c0)
    if not res.success:
        raise RuntimeError(f"benchmark cell failed: {res.error_before_exec or res.error_in_exec!r}")
    return dt


def _magic(ip: Any, line: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        _run(ip, line)


def measure(mode: str, cells: int, experiment: str, kinds: list[str],
            durable: int = 50) -> dict[str, Any]:
    """Per-cell times of each kind in one fresh shell.

    mode: `pure` (IPython alone: the baseline), `loaded` (`%load_ext mlops_nb`, tracking never
    turned on) or `tracked` (`%load_ext mlops_nb` and `%track on`).
    """
    ip = make_shell()
    _run(ip, SETUP)
    tracker = None
    if mode != "pure":
        _magic(ip, "%load_ext mlops_nb")
        tracker = ip._mlops_nb_tracker
    if mode == "tracked":
        _magic(ip, f"%track on --experiment {experiment}")
        tracker.flush(None)
    results: dict[str, Any] = {"mode": mode}
    counter = 0
    for kind in kinds:
        make = KINDS[kind]
        for _ in range(20):  # warm up (first-use imports, caches) before timing
            _run(ip, make(counter))
            counter += 1
        if tracker is not None:
            tracker.flush(None)
        times: list[float] = []
        cpu: list[float] = []
        for _ in range(cells):
            times.append(_run(ip, make(counter), cpu))
            counter += 1
        res: dict[str, Any] = {"times_s": times, "cpu_s": cpu}
        if tracker is not None:
            t0 = time.perf_counter()
            tracker.flush(None)
            res["drain_s"] = time.perf_counter() - t0
        if kind == "workload" and durable and mode == "tracked":
            # Until the cell run is on disk (fsynced), as MLflow's log calls are when they return.
            dtimes = []
            for _ in range(durable):
                t0 = time.perf_counter()
                _run(ip, make(counter))
                tracker.flush(None)
                dtimes.append(time.perf_counter() - t0)
                counter += 1
            res["durable_times_s"] = dtimes
        results[kind] = res
    if tracker is not None:
        results["cell_runs_recorded"] = tracker.recorded
        results["writer_error"] = repr(tracker.writer.error) if tracker.writer else None
        results["home"] = str(tracker.home) if tracker.home else None
        tracker.close()
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("pure", "loaded", "tracked"))
    ap.add_argument("--home", type=Path, help="store to track into (MLOPS_NB_HOME)")
    ap.add_argument("--cells", type=int, default=250, help="timed cells per kind")
    ap.add_argument("--experiment", default="churn")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--durable", type=int, default=50)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if args.home:
        os.environ["MLOPS_NB_HOME"] = str(args.home)
    res = measure(args.mode, args.cells, args.experiment, args.kinds.split(","), args.durable)
    write_out(args.out, res)


if __name__ == "__main__":
    main()
