"""The same workload through MLflow's local tracking, for the ratio users care about.

Skipped, with a message, when mlflow is not importable (it is the optional `bench` extra).
Uses MLflow's default local backend of the installed version (SQLite file + local artifact
folder in a temporary directory for MLflow 3.x).

- log: one run with 20 params, 5 metrics and the cell's code text (`log_text`), through the
  fluent API a notebook user writes; median over `--runs` runs after one warm-up run.
- search: `mlflow.search_runs` (a DataFrame, like `mnb.runs`) on a growing store filled with
  `MlflowClient.log_batch` (same params and metrics, no artifact) until `--budget` seconds are
  spent; the time at each size is measured, the 10,000-run figure is a least-squares line
  through them when 10,000 was not reached (the result says so). For each measured size
  `mnb.runs` is timed on a synthetic mlops-nb store of the same size.

    python -m benchmarks.mlflow_bench [--runs 50] [--budget 120] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from .common import median, write_out
from .overhead import workload_cell

SIZES = (250, 500, 1000, 2000, 4000, 10_000)


def _params(i: int) -> dict[str, Any]:
    return {f"p{k}": (i * 31 + k) % 97 for k in range(20)}


def _metrics(i: int) -> dict[str, float]:
    return {m: ((i * 7 + k) % 1000) / 1000 for k, m in
            enumerate(("accuracy", "f1", "precision", "recall", "val_loss"))}


def measure(runs: int, budget: float, workdir: Path) -> dict[str, Any]:
    try:
        t0 = time.perf_counter()
        import mlflow
        from mlflow.tracking import MlflowClient
    except Exception as exc:  # not installed, or broken install
        return {"skipped": f"mlflow is not importable ({type(exc).__name__}: {exc}); "
                           "install the bench extra: .venv/bin/pip install -e '.[bench]'"}
    import_s = time.perf_counter() - t0
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.chdir(workdir)
    uri = mlflow.get_tracking_uri()  # the version's default local store, rooted here
    out: dict[str, Any] = {"version": mlflow.__version__, "tracking_uri": uri,
                           "import_s": import_s}

    exp = mlflow.set_experiment("bench-log")
    times = []
    for i in range(runs + 1):
        code = workload_cell(i)
        t0 = time.perf_counter()
        with mlflow.start_run(experiment_id=exp.experiment_id):
            mlflow.log_params(_params(i))
            mlflow.log_metrics(_metrics(i))
            mlflow.log_text(code, "cell.py")
        dt = time.perf_counter() - t0
        if i:  # the first run creates tables and folders
            times.append(dt)
    out["log_run_median_s"] = median(times)
    out["log_run_min_s"] = min(times)
    out["log_run_max_s"] = max(times)
    out["log_runs"] = len(times)

    client = MlflowClient()
    sid = client.create_experiment("bench-search")
    from mlflow.entities import Metric, Param

    search: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    n = 0
    fill_times = []
    for size in SIZES:
        while n < size:
            t0 = time.perf_counter()
            run = client.create_run(sid)
            now = int(time.time() * 1000)
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in _metrics(n).items()],
                params=[Param(k, str(v)) for k, v in _params(n).items()],
            )
            client.set_terminated(run.info.run_id)
            fill_times.append(time.perf_counter() - t0)
            n += 1
        t0 = time.perf_counter()
        df = mlflow.search_runs(experiment_ids=[sid], max_results=100_000)
        dt = time.perf_counter() - t0
        search.append({"runs": n, "search_runs_s": dt, "rows": len(df)})
        spent = time.perf_counter() - t_start
        next_size = next((s for s in SIZES if s > n), None)
        if next_size is None:
            break
        # Stop when filling up to the next size (plus its search) would overrun the budget.
        per_run = median(fill_times) + dt / n
        if spent + (next_size - n) * per_run > budget:
            break
    out["fill_run_median_s"] = median(fill_times)
    out["search"] = search
    largest = search[-1]
    if largest["runs"] >= 10_000:
        out["search_10k_s"] = next(s["search_runs_s"] for s in search if s["runs"] == 10_000)
        out["search_10k_extrapolated"] = False
    else:
        xs = [s["runs"] for s in search]
        ys = [s["search_runs_s"] for s in search]
        out["search_10k_s"] = _line_at(xs, ys, 10_000)
        out["search_10k_extrapolated"] = True
    # mnb.runs on a synthetic store of each measured size, in this same process.
    import mlops_nb as mnb

    from .synth import build_store

    for s in search:
        home = Path(tempfile.mkdtemp(dir=workdir, prefix=f"mnb{s['runs']}-"))
        build_store(home, s["runs"], sessions=max(1, s["runs"] // 2000))
        mnb.runs(home=home)
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            mnb.runs(home=home)
            ts.append(time.perf_counter() - t0)
        s["mnb_runs_s"] = median(ts)
    return out


def _line_at(xs: list[float], ys: list[float], x: float) -> float:
    if len(xs) == 1:
        return ys[0] * x / xs[0]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((a - mx) ** 2 for a in xs)
    slope = sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=False)) / sxx
    return my + slope * (x - mx)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    out = args.out and os.path.abspath(args.out)
    workdir = Path(tempfile.mkdtemp(prefix="mnb-mlflow-"))
    here = os.getcwd()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            res = measure(args.runs, args.budget, workdir)
    finally:
        os.chdir(here)
        shutil.rmtree(workdir, ignore_errors=True)
    write_out(out, res)


if __name__ == "__main__":
    main()
