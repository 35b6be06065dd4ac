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

- fit: MLflow's sklearn autolog on a notebook cell (issue 14), against `%track on`. The same
  LogisticRegression fit-and-score cell (a synthetic 2,000 x 20 classification set, fit on
  1,500 rows, scored on 500, `C` changing from cell to cell) runs in a real IPython
  InteractiveShell four ways, each in fresh processes run in a palindromic order (P T M L L M T
  P; one of each with `--quick`) so a drift of the machine weighs on all alike: untracked (P),
  `%load_ext mlops_nb` + `%track on` (T, then the same cells each followed by `mnb.flush()`,
  i.e. until fsynced), `mlflow.sklearn.autolog()` with its defaults (M) and with
  `log_models=False, log_datasets=False` (L). Without an active run, autolog starts a run for
  each `fit` and ends it, then logs `score` into it: one MLflow run per cell. Each cell is timed
  in wall clock and in CPU time of the whole process (every thread: MLflow and mlops-nb both
  work in threads) plus its children (MLflow's model logging starts a Python process to infer
  the requirements); "loop CPU" is the same over the whole timed loop per cell, so work a
  thread does between cells (mlops-nb's writer, flushed at the end) counts too. `--fit-cells`
  cells are timed per MLflow way, 20 times as many for the two cheap ones, after warm-up cells;
  median and 95th percentile, the added time over the untracked cells, and the ratios MLflow /
  mlops-nb. The fit processes run with one BLAS/OpenMP thread (`--fit-threads`, see
  `blas_env`). The table goes to stderr, the JSON to stdout or `--out`.

    python -m benchmarks.mlflow_bench [--runs 50] [--budget 120] [--fit-cells 16]
        [--fit-threads 1] [--parts log,search,fit] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from .common import bench_env, fmt_s, median, quantile, run_json, signed, table, write_out
from .overhead import workload_cell

SIZES = (250, 500, 1000, 2000, 4000, 10_000)
PARTS = ("log", "search", "fit")


def _params(i: int) -> dict[str, Any]:
    return {f"p{k}": (i * 31 + k) % 97 for k in range(20)}


def _metrics(i: int) -> dict[str, float]:
    return {m: ((i * 7 + k) % 1000) / 1000 for k, m in
            enumerate(("accuracy", "f1", "precision", "recall", "val_loss"))}


def measure(runs: int, budget: float, workdir: Path, parts: tuple[str, ...] = PARTS,
            fit_cells: int = 16, quick: bool = False, fit_threads: int = 1) -> dict[str, Any]:
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

    if "fit" in parts:  # fresh processes of their own, before this one's store grows
        try:
            out["fit"] = measure_fit(fit_cells, workdir / "fit", palindrome=not quick,
                                     threads=fit_threads)
        except RuntimeError as exc:  # a failed process: say why, keep the other parts
            out["fit"] = {"error": str(exc)[-3000:]}
    if "log" in parts:
        out.update(_measure_log(mlflow, runs))
    if "search" in parts:
        out.update(_measure_search(mlflow, MlflowClient, budget, workdir))
    return out


def _measure_log(mlflow: Any, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
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
    return out


def _measure_search(mlflow: Any, client_cls: Any, budget: float,
                    workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    client = client_cls()
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


# -- sklearn autolog on a fit cell, against %track on (issue 14) ----------------------------
FIT_MODES = ("pure", "mnb", "mlflow", "mlflow_lean")
FIT_LABELS = {
    "pure": "untracked",
    "mnb": "%track on",
    "mnb_durable": "%track on + mnb.flush() (fsynced)",
    "mlflow": "mlflow.sklearn.autolog() (defaults)",
    "mlflow_lean": "autolog(log_models=False, log_datasets=False)",
}
# What the lean way turns off. log_input_examples is False by default and log_model_signatures
# (True by default) is only read when a model is logged, so these two cover both.
LEAN = {"log_models": False, "log_datasets": False}
FIT_ROWS, FIT_COLS, FIT_TRAIN = 2000, 20, 1500
# The cheap ways time this many cells per MLflow cell: their added cost is ms, not s.
CHEAP_FACTOR = 20
# Untimed cells first in each process: the first autologged fit imports and creates tables
# (7.8 s against 3.5 s later, measured), the first cells of a shell warm its caches.
WARMUP = {"pure": 10, "mnb": 10, "mlflow": 1, "mlflow_lean": 2}
FIT_SETUP = (
    "import numpy as np\nfrom sklearn.datasets import make_classification\n"
    "from sklearn.linear_model import LogisticRegression\n"
    f"X, y = make_classification(n_samples={FIT_ROWS}, n_features={FIT_COLS}, "
    "n_informative=10, random_state=0)\n"
    f"X_train, X_test, y_train, y_test = X[:{FIT_TRAIN}], X[{FIT_TRAIN}:], "
    f"y[:{FIT_TRAIN}], y[{FIT_TRAIN}:]\n"
)


def fit_cell(i: int) -> str:
    """The fit-and-score cell; `C` changes so each cell is a distinct run for both trackers."""
    return (f"C = {0.1 * (i % 10 + 1)!r}\n"
            "clf = LogisticRegression(C=C, max_iter=1000).fit(X_train, y_train)\n"
            "accuracy = clf.score(X_test, y_test)")


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process (all threads) and of its waited-for children."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), ch.ru_utime + ch.ru_stime


def _timed_cell(ip: Any, code: str, after: Any = None) -> tuple[float, float, float]:
    """Wall, process CPU and children CPU of one cell (and of `after()`, when given)."""
    c0, k0 = _cpu()
    t0 = time.perf_counter()
    res = ip.run_cell(code, store_history=True)
    if after is not None:
        after()
    wall = time.perf_counter() - t0
    c1, k1 = _cpu()
    if not res.success:
        raise RuntimeError(f"benchmark cell failed: {res.error_before_exec or res.error_in_exec!r}")
    return wall, c1 - c0, k1 - k0


def fit_process(mode: str, cells: int, durable: int) -> dict[str, Any]:
    """Time `cells` fit cells in this fresh process's shell, tracked the `mode` way."""
    from .overhead import _magic, _run, make_shell

    ip = make_shell()
    _run(ip, FIT_SETUP)
    tracker = None
    out: dict[str, Any] = {"mode": mode}
    if mode == "mnb":
        _magic(ip, "%load_ext mlops_nb")
        _magic(ip, "%track on --experiment fit")
        tracker = ip._mlops_nb_tracker
    elif mode.startswith("mlflow"):
        import mlflow.sklearn

        kwargs = LEAN if mode == "mlflow_lean" else {}
        mlflow.sklearn.autolog(**kwargs)
        out.update(autolog_kwargs=kwargs, tracking_uri=mlflow.get_tracking_uri())
    counter = 0
    for _ in range(WARMUP[mode]):
        _run(ip, fit_cell(counter))
        counter += 1
    if tracker is not None:
        tracker.flush(None)
    wall, cpu, child = [], [], []
    t0, (c0, k0) = time.perf_counter(), _cpu()
    for _ in range(cells):
        w, c, k = _timed_cell(ip, fit_cell(counter))
        wall.append(w)
        cpu.append(c + k)
        child.append(k)
        counter += 1
    if tracker is not None:  # what the writer still has to do for these cells
        tracker.flush(None)
    c1, k1 = _cpu()
    out.update(wall_s=wall, cpu_s=cpu, child_cpu_s=child,
               # Work a thread does between cells escapes the per-cell figures, not this one.
               cpu_per_cell_all_s=((c1 - c0) + (k1 - k0)) / cells,
               wall_per_cell_all_s=(time.perf_counter() - t0) / cells)
    if tracker is not None:
        flushed = [_timed_cell(ip, fit_cell(counter + i), lambda: tracker.flush(None))
                   for i in range(durable)]
        out["durable_wall_s"] = [f[0] for f in flushed]
        out["durable_cpu_s"] = [f[1] + f[2] for f in flushed]
        out["recorded"] = tracker.recorded
        error = tracker.writer.error if tracker.writer else None
        out["writer_error"] = None if error is None else repr(error)
        tracker.close()
    if mode.startswith("mlflow"):  # one run per fitted cell, or the figures mean nothing
        runs = mlflow.search_runs()  # autolog's runs go to the default experiment
        out["mlflow_runs"] = len(runs)
        out["metric_columns"] = sorted(c for c in runs.columns if c.startswith("metrics."))
    return out


def fit_order(palindrome: bool) -> list[str]:
    return [*FIT_MODES, *reversed(FIT_MODES)] if palindrome else list(FIT_MODES)


def blas_env(threads: int) -> dict[str, str]:
    """Thread count of OpenBLAS / OpenMP / MKL in the fit processes (0: the libraries' own).

    One by default: on a busy 2-core machine, two OpenBLAS threads made the untracked fit cell
    4-8x slower and its p95 ten times its median (measured: 23-35 ms median, 68-198 ms p95,
    against 4-9 ms and 13-18 ms with one thread), a noise far above what a tracker adds.
    """
    if threads <= 0:
        return {}
    return {k: str(threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                      "MKL_NUM_THREADS")}


def measure_fit(cells: int, workdir: Path, palindrome: bool = True,
                threads: int = 1) -> dict[str, Any]:
    """Run the fit-cell processes in order, each in its own folder (MLflow's store is there)."""
    order = fit_order(palindrome)
    per = max(1, cells // order.count("mlflow"))
    raw: dict[str, list[dict[str, Any]]] = {m: [] for m in FIT_MODES}
    for i, mode in enumerate(order):
        n = per if mode.startswith("mlflow") else CHEAP_FACTOR * per
        wd = workdir / f"{i}-{mode}"
        env = bench_env(wd, MLOPS_NB_HOME=str(wd / ".mlops_nb"), **blas_env(threads))
        t0 = time.perf_counter()
        raw[mode].append(run_json("mlflow_bench", ["--fit-process", mode, "--fit-cells", str(n)],
                                  wd, env=env, timeout=1800))
        raw[mode][-1]["process_s"] = time.perf_counter() - t0
    return {**summarize_fit(raw, order), "blas_threads": threads or "library default"}


def _stats(wall: list[float], cpu: list[float]) -> dict[str, float]:
    return {"n": len(wall), "wall_median_s": median(wall), "wall_p95_s": quantile(wall, 0.95),
            "cpu_median_s": median(cpu), "cpu_p95_s": quantile(cpu, 0.95)}


def summarize_fit(raw: dict[str, list[dict[str, Any]]], order: list[str]) -> dict[str, Any]:
    """Median and p95 of each way, what it adds over the untracked cells, MLflow / mlops-nb."""
    ways: dict[str, dict[str, Any]] = {}
    for mode, procs in raw.items():
        ways[mode] = _stats([t for p in procs for t in p["wall_s"]],
                            [t for p in procs for t in p["cpu_s"]])
        ways[mode]["child_cpu_median_s"] = median([t for p in procs for t in p["child_cpu_s"]])
        # Process + children CPU over the timed loop (and the writer's flush after it) per
        # cell: what threads do between cells too. Summed over processes, then divided.
        ways[mode]["cpu_per_cell_all_s"] = (sum(p["cpu_per_cell_all_s"] * len(p["wall_s"])
                                                for p in procs)
                                            / sum(len(p["wall_s"]) for p in procs))
        ways[mode]["process_medians_s"] = [median(p["wall_s"]) for p in procs]
        ways[mode]["process_s"] = [p["process_s"] for p in procs]
        for key in ("autolog_kwargs", "tracking_uri"):
            if key in procs[0]:
                ways[mode][key] = procs[0][key]
        if mode.startswith("mlflow"):
            ways[mode]["mlflow_runs"] = [p["mlflow_runs"] for p in procs]
            ways[mode]["metric_columns"] = procs[0]["metric_columns"]
        if mode == "mnb":
            ways["mnb_durable"] = _stats([t for p in procs for t in p["durable_wall_s"]],
                                         [t for p in procs for t in p["durable_cpu_s"]])
            ways[mode]["writer_errors"] = [p["writer_error"] for p in procs]
    base = ways["pure"]
    for mode, w in ways.items():
        if mode == "pure":
            continue
        for stat in ("wall_median", "wall_p95", "cpu_median", "cpu_p95", "cpu_per_cell_all"):
            if f"{stat}_s" in w:
                w[f"{stat}_added_s"] = w[f"{stat}_s"] - base[f"{stat}_s"]
    ratios: dict[str, float | None] = {}
    for ml in ("mlflow", "mlflow_lean"):
        for mine in ("mnb", "mnb_durable"):
            for stat in ("wall_median", "cpu_median", "cpu_per_cell_all"):
                if f"{stat}_added_s" not in ways[mine]:
                    continue
                ours = ways[mine][f"{stat}_added_s"]
                theirs = ways[ml][f"{stat}_added_s"]
                # An added cost within noise of zero has no meaningful ratio.
                ratios[f"{ml}/{mine}.{stat}"] = theirs / ours if ours > 0 else None
    return {"order": order, "rows": FIT_ROWS, "cols": FIT_COLS, "train_rows": FIT_TRAIN,
            "ways": ways, "ratios": ratios}


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"x{value:,.0f}"


def fit_rows(fit: dict[str, Any]) -> list[list[str]]:
    """Rows of figure 5 in benchmarks/main.py's table (and of this module run alone)."""
    if "error" in fit:
        return [["  sklearn autolog: failed: " + fit["error"].strip().splitlines()[-1]]]
    ways, ratios = fit["ways"], fit["ratios"]
    base = ways["pure"]
    rows = [[f"  sklearn autolog, LogisticRegression fit + score cell ({fit['rows']:,} x "
             f"{fit['cols']}, fit on {fit['train_rows']:,}; BLAS threads: "
             f"{fit.get('blas_threads', '?')}): median (p95) of {ways['mlflow']['n']} MLflow "
             f"cells, {base['n']} others; cpu = process (all threads) + children; loop cpu = "
             "the same over all timed cells and what threads did between them, per cell"],
            ["  untracked cell", "(baseline)",
             f"{fmt_s(base['wall_median_s'])} (p95 {fmt_s(base['wall_p95_s'])}), "
             f"cpu {fmt_s(base['cpu_median_s'])} (p95 {fmt_s(base['cpu_p95_s'])}), "
             f"loop cpu {fmt_s(base['cpu_per_cell_all_s'])}", "", "", ""]]
    for mode in ("mnb", "mnb_durable", "mlflow", "mlflow_lean"):
        w = ways[mode]
        ratio = ""
        if mode.startswith("mlflow"):
            ratio = (f"MLflow / %track on: {_ratio(ratios[f'{mode}/mnb.wall_median'])}, cpu "
                     f"{_ratio(ratios[f'{mode}/mnb.cpu_median'])}, loop cpu "
                     f"{_ratio(ratios.get(f'{mode}/mnb.cpu_per_cell_all'))}")
        loop = (f", loop cpu {signed(w['cpu_per_cell_all_added_s'])}"
                if "cpu_per_cell_all_added_s" in w else "")
        rows.append([f"  {FIT_LABELS[mode]}", "(ratio)",
                     f"{signed(w['wall_median_added_s'])} (p95 {signed(w['wall_p95_added_s'])}), "
                     f"cpu {signed(w['cpu_median_added_s'])} "
                     f"(p95 {signed(w['cpu_p95_added_s'])}){loop}",
                     f"{fmt_s(base['wall_median_s'])} untracked", ratio, ""])
    return rows


def _print_fit(fit: dict[str, Any]) -> None:
    """The table alone on stderr: stdout keeps the JSON when no --out is given."""
    print(table(fit_rows(fit), ["figure", "target", "added: wall (p95), cpu (p95)",
                                "baseline (same run)", "ratio", ""]), file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true",
                    help="smaller defaults (--runs 10 --budget 10 --fit-cells 1), one process "
                         "per fit way instead of a palindrome of two")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--budget", type=float)
    ap.add_argument("--fit-cells", type=int,
                    help="timed fit cells per MLflow way (x5 for the untracked and %%track ways)")
    ap.add_argument("--fit-threads", type=int, default=1,
                    help="OpenBLAS/OpenMP threads of the fit processes (0: library default)")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help=f"comma-separated, of {', '.join(PARTS)}")
    ap.add_argument("--fit-process", choices=FIT_MODES, help=argparse.SUPPRESS)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    quick = args.quick
    runs = args.runs if args.runs is not None else (10 if quick else 50)
    budget = args.budget if args.budget is not None else (10.0 if quick else 120.0)
    fit_cells = args.fit_cells if args.fit_cells is not None else (1 if quick else 16)
    parts = tuple(p for p in args.parts.split(",") if p)
    if unknown := set(parts) - set(PARTS):
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    out = args.out and os.path.abspath(args.out)
    if args.fit_process:  # one fresh process of the fit part, started by measure_fit
        write_out(out, fit_process(args.fit_process, fit_cells, durable=fit_cells))
        return
    workdir = Path(tempfile.mkdtemp(prefix="mnb-mlflow-"))
    here = os.getcwd()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            res = measure(runs, budget, workdir, parts, fit_cells, quick, args.fit_threads)
    finally:
        os.chdir(here)
        shutil.rmtree(workdir, ignore_errors=True)
    write_out(out, res)
    if "ways" in res.get("fit", {}):
        _print_fit(res["fit"])


if __name__ == "__main__":
    main()
