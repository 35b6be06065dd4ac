"""Listing and showing runs at scale (issues 14 and 8), each figure with its baseline from the
same run, in process CPU time as well as wall time (a busy machine moves wall times 2-5x).

Two modes:

    python -m benchmarks.listing HOME [--repeats 5] [--no-index] [--out FILE]
        `mnb.runs(home=HOME)` in this process: cold and warm, and `pd.read_parquet` of the same
        columns (the baseline: the fastest a DataFrame of them can be loaded from disk).

    python -m benchmarks.listing suite [--work DIR] [--quick] [--json FILE]
        Builds (or reuses) synthetic stores through the real writer (benchmarks/synth.py) and
        times, each in a fresh process:
        - `mnb.runs()` at 10,000 and 100,000 runs (target <= 0.1 s and <= 1 s), ratio to
          `pd.read_parquet` of the same columns;
        - `mlops-nb runs` to its first screen at 100,000 runs (target <= 1 s process time),
          ratio to a process that only imports pandas (the floor of any pandas-based CLI);
        - `mlops-nb runs --format csv` of every run, streamed (its peak memory too), ratio to
          `DataFrame.to_csv` of the same frame after `read_parquet`;
        - `mlops-nb show` of the last of 20,000 chained cells (target <= 1 s, <= 200 MB), ratio
          to a process that imports the CLI and does nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import median, write_out


def measure(home: Path, repeats: int, no_index: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    import pandas as pd

    pandas_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    import mlops_nb as mnb

    mnb_import = time.perf_counter() - t0
    c0, t0 = time.process_time(), time.perf_counter()
    df = mnb.runs(home=home)
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows, ncols = df.shape
    warm, warm_cpu = [], []
    for _ in range(repeats):
        del df
        c0, t0 = time.process_time(), time.perf_counter()
        df = mnb.runs(home=home)
        warm.append(time.perf_counter() - t0)
        warm_cpu.append(time.process_time() - c0)
    out: dict[str, Any] = {
        "rows": rows,
        "columns": ncols,
        "problems": len(df.attrs.get("problems", [])),
        "pandas_import_s": pandas_import,
        "mlops_nb_import_s": mnb_import,
        "cold_s": cold,
        "cold_cpu_s": cold_cpu,
        "warm_s": median(warm),
        "warm_cpu_s": median(warm_cpu),
        "warm_all_s": warm,
    }
    out.update(_parquet_baseline(df, repeats))
    out["ratio_to_read_parquet_cpu"] = out["warm_cpu_s"] / max(out["parquet_cpu_s"], 1e-9)
    if no_index:
        from mlops_nb.store.layout import INDEX_DIR

        index = home / INDEX_DIR
        aside = home / (INDEX_DIR + ".aside")
        os.replace(index, aside)
        try:
            t0 = time.perf_counter()
            df2 = mnb.runs(home=home)
            out["no_index_s"] = time.perf_counter() - t0
            out["no_index_rows"] = len(df2)
        finally:
            if index.exists():
                shutil.rmtree(index)
            os.replace(aside, index)
    del pd
    return out


def _parquet_baseline(df: Any, repeats: int) -> dict[str, Any]:
    """`pd.read_parquet` of the same columns (object columns of mixed values as text: Parquet
    cannot hold them otherwise), median of `repeats`."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return {"parquet_cpu_s": float("nan"), "parquet_s": float("nan")}
    import pandas as pd

    flat = df.copy()
    for col in flat.columns:
        if flat[col].dtype == object:
            flat[col] = flat[col].map(lambda v: None if v is None else str(v))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.parquet"
        flat.to_parquet(path)
        cpu, wall = [], []
        for _ in range(max(repeats, 1)):
            c0, t0 = time.process_time(), time.perf_counter()
            pd.read_parquet(path)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {"parquet_cpu_s": median(cpu), "parquet_s": median(wall)}


# -- the suite: fresh processes ----------------------------------------------------------------
def _process(argv: list[str], *, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run a process to completion; its wall time, CPU time (user+sys) and peak RSS (its own:
    `wait4`, not the maximum over every child so far)."""
    if env is None:  # compiled bytecode read, as an installed package's (common.bench_env)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed: {err.decode()[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "max_rss_mb": usage.ru_maxrss / 1024}


def _best_of(n: int, argv: list[str]) -> dict[str, float]:
    """The median of `n` runs of a process (peak RSS: the largest)."""
    runs = [_process(argv) for _ in range(n)]
    return {"wall_s": median([r["wall_s"] for r in runs]),
            "cpu_s": median([r["cpu_s"] for r in runs]),
            "max_rss_mb": max(r["max_rss_mb"] for r in runs)}


def suite(work: Path, quick: bool) -> dict[str, Any]:
    from .synth import build_chain, build_store

    py = sys.executable
    cli = [py, "-m", "mlops_nb.cli"]
    reps = 1 if quick else 3
    sizes = (10_000,) if quick else (10_000, 100_000)
    chain_n = 2_000 if quick else 20_000
    res: dict[str, Any] = {"runs": {}}
    for n in sizes:
        home = work / f"store{n}"
        if not (home / "sessions").is_dir():
            print(f"building a store of {n:,} runs through SessionWriter", file=sys.stderr)
            build_store(home, n)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
            out = fh.name
        subprocess.run([py, "-m", "benchmarks.listing", str(home), "--repeats", str(reps + 2),
                        "--out", out], check=True)
        res["runs"][str(n)] = json.loads(Path(out).read_text())
        os.unlink(out)
    big = work / f"store{sizes[-1]}"
    _process([*cli, "--home", str(big), "runs"])  # warm: bytecode written, files cached
    res["cli_first_screen"] = _best_of(reps, [*cli, "--home", str(big), "runs"])
    res["pandas_import_process"] = _best_of(reps, [py, "-c", "import pandas"])
    res["cli_csv"] = _best_of(reps, [*cli, "--home", str(big), "runs", "--format", "csv"])
    res["csv_baseline"] = _best_of(reps, [py, "-c", (
        "import os, sys, tempfile, pandas as pd, mlops_nb as mnb\n"
        f"df = mnb.runs(home={str(big)!r})\n"
        "p = os.path.join(tempfile.mkdtemp(), 'r.parquet')\n"
        "df.astype({c: str for c in df.columns if df[c].dtype == object}).to_parquet(p)\n"
        "df = pd.read_parquet(p)\n"
        "df.to_csv(open(os.devnull, 'w'), index=False)\n")]) if _has_pyarrow() else None
    chain = work / f"chain{chain_n}"
    last_file = chain / "LAST"
    if not last_file.exists():
        print(f"building a session of {chain_n:,} chained cells", file=sys.stderr)
        info = build_chain(chain, chain_n)
        last_file.write_text(info["last"])
    last = last_file.read_text().strip()
    _process([*cli, "--home", str(chain), "show", last])  # summaries written once, then timed
    res["show_chain"] = _best_of(reps, [*cli, "--home", str(chain), "show", last])
    res["show_chain"]["cells"] = chain_n
    res["cli_import_process"] = _best_of(reps, [py, "-c", "import mlops_nb.cli"])
    return res


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def report(res: dict[str, Any]) -> str:
    lines = ["listing and show (CPU = process user+sys; ratios against a baseline of this run)"]
    for n, r in res["runs"].items():
        target = 0.1 if n == "10000" else 1.0
        lines.append(
            f"  mnb.runs() at {int(n):>7,} runs: {r['warm_cpu_s']:.3f} s CPU, "
            f"{r['warm_s']:.3f} s wall (cold {r['cold_cpu_s']:.3f} s CPU); "
            f"read_parquet of the same columns {r['parquet_cpu_s']:.3f} s CPU: "
            f"x{r['ratio_to_read_parquet_cpu']:.1f}; target <= {target} s "
            f"{'ok' if r['warm_cpu_s'] <= target else 'MISSED'}")
    fs, pi = res["cli_first_screen"], res["pandas_import_process"]
    lines.append(
        f"  mlops-nb runs, first screen at the largest store: {fs['cpu_s']:.2f} s CPU, "
        f"{fs['wall_s']:.2f} s wall; a process importing pandas only: {pi['cpu_s']:.2f} s CPU "
        f"(x{fs['cpu_s'] / max(pi['cpu_s'], 1e-9):.2f}); target <= 1 s "
        f"{'ok' if fs['cpu_s'] <= 1.0 else 'MISSED'}")
    csv, base = res["cli_csv"], res.get("csv_baseline")
    ratio = f" (read_parquet + to_csv: {base['cpu_s']:.2f} s CPU, x" \
            f"{csv['cpu_s'] / max(base['cpu_s'], 1e-9):.2f})" if base else ""
    lines.append(f"  mlops-nb runs --format csv, every run: {csv['cpu_s']:.2f} s CPU, "
                 f"peak {csv['max_rss_mb']:.0f} MB{ratio}")
    sh, ci = res["show_chain"], res["cli_import_process"]
    lines.append(
        f"  mlops-nb show, last of {sh['cells']:,} chained cells: {sh['cpu_s']:.2f} s CPU, "
        f"{sh['wall_s']:.2f} s wall, peak {sh['max_rss_mb']:.0f} MB; importing the CLI alone "
        f"{ci['cpu_s']:.2f} s CPU (x{sh['cpu_s'] / max(ci['cpu_s'], 1e-9):.2f}); target <= 1 s, "
        f"<= 200 MB {'ok' if sh['cpu_s'] <= 1.0 and sh['max_rss_mb'] <= 200 else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["suite"]:
        ap = argparse.ArgumentParser(prog="benchmarks.listing suite")
        ap.add_argument("--work", type=Path, default=Path("benchmarks/results/listing-work"))
        ap.add_argument("--quick", action="store_true")
        ap.add_argument("--json")
        args = ap.parse_args(argv[1:])
        args.work.mkdir(parents=True, exist_ok=True)
        res = suite(args.work, args.quick)
        print(report(res))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(res, indent=1))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("home", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-index", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    write_out(args.out, measure(args.home, args.repeats, args.no_index))


if __name__ == "__main__":
    main()
