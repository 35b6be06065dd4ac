"""The recorder's cost per cell in simulated CPU cycles: a figure a busy machine cannot move.

`phases` times the recorder in CPU seconds, and on a shared two-core machine those move by
+-30% from run to run, more than most changes it is asked to judge. This benchmark runs the
same cells under valgrind's callgrind with its cache and branch simulation, counting only
inside the recorder's hooks and autolog's work inside the cell's own fit and score calls (each
is called through `_operator.call`, the one C function callgrind is told to toggle collection
on), and prints per cell: instructions, L1 and last-level cache misses, mispredicted branches,
and estimated cycles (instructions + 10 per L1 miss + 10 per mispredict + 100 per last-level
miss, callgrind's own weighting). The
baseline, from the same run: the whole untracked cell (IPython's parse, compile and the cell's
own code), so the ratio says what tracking adds to a cell, on any machine, to within about 1%.

    python -m benchmarks.hook_cycles [--cells 20] [--kinds fifty,workload,sklearn]

Needs `valgrind` (Debian's package); without it, it says so and exits 0. The garbage collector
is off in the measured processes (its collections are counted by `phases`) and the writer
thread's work is left out (printed per cell by `phases`): these are the kernel thread's hooks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_EVENTS_L1 = ("I1mr", "D1mr", "D1mw")
_EVENTS_LL = ("ILmr", "DLmr", "DLmw")
_EVENTS_BRANCH = ("Bcm", "Bim")
WARMUP = 5


def _child(kind: str, cells: int, tracked: bool) -> None:
    """Run inside callgrind: warm up, then call the measured part through `_operator.call`."""
    import _operator
    import gc

    from .overhead import (
        SETUP,
        SKLEARN_SETUP,
        _HookClock,
        _magic,
        _run,
        fifty_statement_cell,
        make_shell,
        sklearn_cell,
        workload_cell,
        wrap_hooks,
    )

    make = {"fifty": fifty_statement_cell, "workload": workload_cell, "sklearn": sklearn_cell}
    cell = make[kind]
    gc.disable()
    ip = make_shell()
    _run(ip, SETUP)
    _run(ip, SKLEARN_SETUP)
    call = _operator.call
    measuring = [False]
    if tracked:
        _magic(ip, "%load_ext mlops_nb")
        tracker = ip._mlops_nb_tracker
        _magic(ip, "%track on --experiment cycles")
        def counted(fn: Any) -> Any:
            return lambda *a: call(fn, *a) if measuring[0] else fn(*a)

        wrap_hooks(tracker, counted)
        from mlops_nb.capture import autolog  # its work inside the cell's fit and score too

        for name in _HookClock.AUTOLOG:
            setattr(autolog, name, counted(getattr(autolog, name)))
        tracker.flush(None)
        tracker.writer.append = lambda *a, **k: True  # the writer's work is not the kernel's
    else:
        run_cell = ip.run_cell
        ip.run_cell = lambda *a, **k: call(run_cell, *a, **k) if measuring[0] else \
            run_cell(*a, **k)
    for i in range(WARMUP):
        _run(ip, cell(i))
    measuring[0] = True
    for i in range(WARMUP, WARMUP + cells):
        _run(ip, cell(i))
    os._exit(0)  # nothing after the cells: no flush, no shutdown in the figures


def _measure(kind: str, cells: int, tracked: bool, workdir: Path) -> dict[str, float]:
    out = workdir / f"{kind}-{'tracked' if tracked else 'plain'}.callgrind"
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MLOPS_NB_HOME": str(workdir / ".mlops_nb"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).absolute().parents[1]),
                                                       os.environ.get("PYTHONPATH")]))}
    cmd = ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--branch-sim=yes",
           "--collect-atstart=no", "--toggle-collect=_operator_call",
           f"--callgrind-out-file={out}", sys.executable, "-m", "benchmarks.hook_cycles",
           "--child", kind, "--cells", str(cells)] + ([] if tracked else ["--plain"])
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"callgrind run failed: {proc.stderr[-2000:]}")
    return _per_cell(out.read_text(), cells)


def _per_cell(text: str, cells: int) -> dict[str, float]:
    events: list[str] = []
    totals: list[int] = []
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("summary:", "totals:")) and not totals:
            totals = [int(x) for x in line.split()[1:]]
    got = dict(zip(events, totals, strict=False))
    l1 = sum(got.get(e, 0) for e in _EVENTS_L1)
    ll = sum(got.get(e, 0) for e in _EVENTS_LL)
    branch = sum(got.get(e, 0) for e in _EVENTS_BRANCH)
    ir = got.get("Ir", 0)
    return {"instructions": ir / cells, "l1_misses": l1 / cells, "ll_misses": ll / cells,
            "mispredicts": branch / cells,
            "cycles": (ir + 10 * l1 + 10 * branch + 100 * ll) / cells}


def run(kinds: list[str], cells: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    with tempfile.TemporaryDirectory(prefix="mnb-cycles-") as tmp:
        jobs = [(kind, tracked) for kind in kinds for tracked in (True, False)]
        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as ex:
            results = list(ex.map(lambda job: _measure(job[0], cells, job[1], Path(tmp)),
                                  jobs))
    out: dict[str, Any] = {}
    for (kind, tracked), res in zip(jobs, results, strict=True):
        out.setdefault(kind, {})["hooks" if tracked else "cell"] = res
    return out


def print_table(res: dict[str, Any]) -> None:
    print(f"{'per cell (simulated)':<22} {'hooks: instr':>13} {'cycles':>10} "
          f"{'cell untracked: cycles':>23} {'hooks / cell':>13}")
    for kind, r in res.items():
        hooks, cell = r["hooks"], r["cell"]
        print(f"{kind:<22} {hooks['instructions'] / 1e3:12.0f}K {hooks['cycles'] / 1e3:9.0f}K "
              f"{cell['cycles'] / 1e3:22.0f}K {hooks['cycles'] / cell['cycles']:12.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=20, help="measured cells per kind")
    ap.add_argument("--kinds", default="fifty,workload,sklearn")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.cells, tracked=not args.plain)
        return 0
    if shutil.which("valgrind") is None:
        print("hook cycles: skipped (valgrind is not installed: apt-get install valgrind)")
        return 0
    print_table(run(args.kinds.split(","), args.cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
