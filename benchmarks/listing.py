"""Time to list a store's runs into a DataFrame: `mnb.runs(home=...)`.

Run in a fresh process per store. `cold` is the first call in that process (pandas already
imported, its import time is reported apart; the store's files are in the OS page cache because
they were just written: dropping the machine's caches would need root and disturb everything
else running). `warm` is the median of the following calls. `no_index` is the same listing with
the derived index moved aside, i.e. every segment parsed in full: what a store costs until its
writer rewrites the summaries (informational, no target). Wall-clock times are the figures;
the process's CPU time is kept too, as a figure that a loaded machine disturbs less.

    python -m benchmarks.listing HOME [--repeats 5] [--no-index] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .common import median, write_out


def measure(home: Path, repeats: int, no_index: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    import pandas  # noqa: F401

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
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("home", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-index", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    write_out(args.out, measure(args.home, args.repeats, args.no_index))


if __name__ == "__main__":
    main()
