"""`mlops-nb export` and `show` of the last run of a long session, at several N: N chained
cells (`x = x + 1`, each depending on the last: the slice is the whole session) and N re-runs
of `acc = clf.score(X, y)` after a fit (each a run; its slice is three cells, but the
lineage replay still reads every record of the session).

Issue 8's target: `show`/`export` of any run <= 1 s and <= 200 MB at 20,000 chained cells. Each
session is recorded in a real tracked InteractiveShell; then `mlops-nb export` and `mlops-nb
show` of its last run run in fresh processes (after a warm-up run, so bytecode is cached):
CPU time spent in `main()` and peak RSS (`VmHWM`) are what is printed, since wall time on a
shared machine says more about the neighbours. The baseline, measured in the same run and
also in a fresh process: reading the session's segment files once with `json.loads`, the
least any export of that run must do (the lineage replay reads every record of the session,
and the chain's slice is all of it). The ratio is printed.

    python -m benchmarks.export_long [--cells 1000,5000,20000] [--cases chain,rerun] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import bench_env, write_out

_RECORD = """
import os, sys
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
cells, case = int(sys.argv[1]), sys.argv[2]
cfg = Config()
cfg.HistoryManager.hist_file = ":memory:"
ip = InteractiveShell.instance(config=cfg)
ip.run_cell("%load_ext mlops_nb", store_history=True)
ip.run_cell("%track on --experiment long", store_history=True)
if case == "chain":
    ip.run_cell("x = 0", store_history=True)
    for _ in range(cells - 2):
        ip.run_cell("x = x + 1", store_history=True)
    ip.run_cell("score = x * 2", store_history=True)
else:  # N re-runs of one scoring cell, each a run
    ip.run_cell("from sklearn.linear_model import LogisticRegression\\nimport numpy as np\\n"
                "X = np.random.default_rng(0).random((50, 3))\\ny = (X[:, 0] > 0.5).astype(int)",
                store_history=True)
    ip.run_cell("clf = LogisticRegression().fit(X, y)", store_history=True)
    for _ in range(cells):
        ip.run_cell("acc = clf.score(X, y)", store_history=True)
tracker = ip._mlops_nb_tracker
assert tracker.flush(600)
print(tracker.session)
tracker.close()
"""

# CPU seconds (user + system) of the measured part, and the process's peak RSS in MB.
_MEASURE = """
import resource, sys, time
def peak_mb():
    hwm = [ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')]
    return int(hwm[0]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
what = sys.argv[1]
if what == "baseline":
    import glob, json
    files = sorted(glob.glob(sys.argv[2] + "/sessions/*/*.json"))
    c = time.process_time()
    n = sum(len(json.loads(open(f, "rb").read()).get("cell_runs", {})) for f in files)
    rc = 0 if n else 1
else:
    from mlops_nb.cli import main
    c = time.process_time()
    try:
        rc = main(sys.argv[2:])
    except SystemExit as e:
        rc = e.code
print("BENCH", rc, time.process_time() - c, peak_mb(), file=sys.stderr)
"""


def _measured(home: Path, *args: str) -> dict[str, float]:
    env = bench_env(home)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    best: dict[str, float] | None = None
    for _ in range(2):  # the first also warms bytecode and the page cache: keep the best
        proc = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True,
                              text=True, timeout=900, env=env, cwd=home, check=False)
        line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("BENCH")), None)
        if line is None:
            raise RuntimeError(proc.stderr[-3000:])
        _, rc, cpu, rss = line.split()
        if rc not in ("0", "None"):
            raise RuntimeError(f"{args} exited {rc}: {proc.stderr[-3000:]}")
        got = {"cpu_s": float(cpu), "peak_mb": float(rss)}
        best = got if best is None or got["cpu_s"] < best["cpu_s"] else best
    assert best is not None
    return best


def measure(cells: int, work: Path, case: str = "chain") -> dict[str, Any]:
    home = work / f"{case}-{cells}"
    home.mkdir(parents=True)
    # the store named, not found: a `.mlops_nb/` above the temp folder must not be used
    env = bench_env(home, MLOPS_NB_HOME=str(home / ".mlops_nb"))
    proc = subprocess.run([sys.executable, "-c", _RECORD, str(cells), case], capture_output=True,
                          text=True, timeout=7200, env=env, cwd=home, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    store = home / ".mlops_nb"
    from mlops_nb.store.reader import StoreReader

    reader = StoreReader(store)
    last = max((cr for cr in reader.iter_cell_runs() if cr.is_run), key=lambda c: c.seq)
    out = home / "exp"
    export = _measured(home, "cli", "--home", str(store), "export", last.id, "-o", str(out),
                       "--force")
    show = _measured(home, "cli", "--home", str(store), "show", last.id)
    base = _measured(home, "baseline", str(store))
    script = (out / "train.py").read_text()
    return {"case": case, "cells": cells, "export": export, "show": show, "read_json": base,
            "export_vs_read_json": export["cpu_s"] / base["cpu_s"],
            "show_vs_read_json": show["cpu_s"] / base["cpu_s"],
            "script_lines": script.count("\n"), "store_mb": sum(
                p.stat().st_size for p in store.rglob("*") if p.is_file()) / 1e6}


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["export/show of the last run of N cells (chain: `x = x + 1`; rerun: "
             "`acc = clf.score(X, y)`), fresh process, CPU in main() and peak RSS "
             "(target at 20,000: <= 1 s, <= 200 MB);",
             "baseline: json.loads of the session's segment files, same run",
             f"{'case':>6} {'cells':>7} {'export':>16} {'show':>16} {'json.loads':>11} "
             f"{'export/json':>11} {'train.py':>9}"]
    for r in rows:
        e, s, j = r["export"], r["show"], r["read_json"]
        lines.append(f"{r.get('case', 'chain'):>6} {r['cells']:>7,} "
                     f"{e['cpu_s']:>7.2f} s {e['peak_mb']:>4.0f} MB "
                     f"{s['cpu_s']:>7.2f} s {s['peak_mb']:>4.0f} MB {j['cpu_s']:>9.2f} s"
                     f" {r['export_vs_read_json']:>10.2f}x {r['script_lines']:>6} lines")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.export_long")
    parser.add_argument("--cells", default="1000,5000,20000",
                        help="comma-separated chain lengths")
    parser.add_argument("--cases", default="chain,rerun",
                        help="comma-separated: chain (x = x + 1), rerun (acc = clf.score(X, y))")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.cells.split(",") if n.strip()]
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - {"chain", "rerun"}
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="mnb-export-long-") as tmp:
        rows = [measure(n, Path(tmp), case) for case in cases for n in sizes]
    print(render(rows))
    if args.out:
        write_out(args.out, {"rows": rows})
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    raise SystemExit(main())
