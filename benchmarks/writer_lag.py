"""Writer lag at many fast cells (issue 8, item 8): `python -m benchmarks.writer_lag [--cells N]`.

A real IPython shell runs N fast tracked cells back to back (`step = i; acc = step / 1e6`, each a
run). After every cell we sample how far the background writer is behind: the age of the oldest
cell run not yet on disk (what a SIGKILL at that moment would lose) and how many runs wait.
Two fresh processes, in the same run: the writer with back-pressure (the default: appends wait
when the oldest unsaved run is over 100 ms old) and the same writer with back-pressure turned
off (an unbounded backlog, as before). The ratios: worst lag / the 100 ms target, and the
per-cell time with back-pressure / without (what bounding the lag costs the kernel).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .common import bench_env, run_json


def child(cells: int, max_lag: float, out: str) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    os.environ["MLOPS_NB_HOME"] = str(Path.cwd() / ".mlops_nb")
    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=cfg)
    ip.run_cell("%load_ext mlops_nb", store_history=True)
    ip.run_cell("%track on --experiment lag", store_history=True)
    writer = ip._mlops_nb_tracker.writer
    writer.max_lag = max_lag
    times: list[float] = []
    worst_age, worst_waiting = 0.0, 0
    for i in range(cells):
        t = time.perf_counter()
        ip.run_cell(f"step = {i}\nacc = step / 1e6", store_history=True)
        times.append(time.perf_counter() - t)
        with writer._cond:  # a sample of the writer's state between two cells
            if writer._unsaved:
                oldest = writer._unsaved[next(iter(writer._unsaved))]
                worst_age = max(worst_age, time.monotonic() - oldest)
                worst_waiting = max(worst_waiting, len(writer._unsaved))
    t = time.perf_counter()
    ok = writer.flush(600)
    final_flush = time.perf_counter() - t
    Path(out).write_text(json.dumps({
        "cells": cells, "median_s": statistics.median(times), "mean_s": statistics.fmean(times),
        "worst_lag_s": worst_age, "worst_waiting": worst_waiting, "final_flush_s": final_flush,
        "waited_s": writer.waited_s, "flushed": ok, "written": writer.written,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=3000)
    parser.add_argument("--child", choices=("on", "off"))
    parser.add_argument("--out")
    args = parser.parse_args()
    from mlops_nb.store.writer import DEFAULT_MAX_LAG

    if args.child:
        child(args.cells, DEFAULT_MAX_LAG if args.child == "on" else float("inf"), args.out)
        return
    results = {}
    with tempfile.TemporaryDirectory(prefix="mnb-lag-") as tmp:
        for mode in ("off", "on", "on", "off"):  # interleaved: a drifting machine hits both
            work = Path(tmp) / f"{mode}-{len(results)}"
            got = run_json("writer_lag", ["--cells", str(args.cells), "--child", mode], work,
                           env=bench_env(work))
            results.setdefault(mode, []).append(got)
    on = min(results["on"], key=lambda r: r["mean_s"])
    off = min(results["off"], key=lambda r: r["mean_s"])
    target = DEFAULT_MAX_LAG
    print(f"writer lag at {args.cells:,} fast cells (target: a SIGKILL loses <= "
          f"{target * 1000:.0f} ms of runs)")
    print(f"{'':28}{'back-pressure':>15}{'unbounded':>12}{'ratio':>8}")
    rows = [
        ("worst lag (s)", on["worst_lag_s"], off["worst_lag_s"]),
        ("worst runs waiting", on["worst_waiting"], off["worst_waiting"]),
        ("median s per cell", on["median_s"], off["median_s"]),
        ("mean s per cell", on["mean_s"], off["mean_s"]),
        ("final flush (s)", on["final_flush_s"], off["final_flush_s"]),
    ]
    for label, a, b in rows:
        ratio = a / b if b else float("nan")
        print(f"{label:28}{a:>15.4g}{b:>12.4g}{ratio:>8.2f}")
    print(f"worst lag / target: back-pressure {on['worst_lag_s'] / target:.2f}, "
          f"unbounded {off['worst_lag_s'] / target:.2f}")
    ok = on["worst_lag_s"] <= target * 1.5 and on["written"] == off["written"] >= args.cells
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
