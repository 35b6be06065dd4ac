"""Cost bounded whatever the data (issue 8 items 1-3, issue 14 string hashing).

Every figure is a ratio or a difference against a baseline measured in this same run:

- hashing: fingerprint of a rows x 10 frame of Arrow-backed strings against `joblib.hash` of
  the same frame and against one xxh3 pass over its raw Arrow buffers; an object column of
  strings against `pandas.util.hash_pandas_object` (best of 3 each).
- cells: a real InteractiveShell with a 2M-row frame holding two string columns (one object,
  one Arrow); each read-only cell (`df.head()`, `len(df)`, `df.shape`...) timed tracked and in a
  plain shell (separate processes), the median difference is what tracking adds; then a cell
  that really replaces ~1 GB of mixed data (`big = big.copy()`), tracked minus plain.
- lineage: N re-runs of `acc = clf.score(X, y)` and N truly chained cells (`x += 1`) through
  the real recorder: per-cell cost of the first vs the last 1,000 cells, store bytes per cell
  at N/10 vs N, and `mlops-nb show` / `mlops-nb export` of the last run in a fresh process
  (wall time and peak memory).
- literals: a 100 KB literal and 300 dependent runs: store bytes, against 300 copies.

    python -m benchmarks.data_cost [--quick] [--json FILE]
    python -m benchmarks.data_cost shell pure|tracked --rows N --replace-mb M --out FILE
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import bench_env, median, run_json, write_out

READ_ONLY_CELLS = ("df.head()", "len(df)", "df.shape", "df.columns", "df.dtypes",
                   "n_users = df['user'].nunique()", "m = df['x'].mean()")
# A cell that touches no data: what tracking adds to any cell, subtracted to show what the
# frame itself adds.
CONTROL_CELL = "a = 1"


# -- hashing ------------------------------------------------------------------------------------
def _best(fn: Any, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _strings(n: int, seed: int) -> Any:
    """n Arrow strings of 8-30 characters, from a pool taken at random (fast to build)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    pool = pa.array([f"user-{i}-{'x' * (i % 23)}" for i in range(50_000)], pa.large_string())
    return pool.take(pa.array(rng.integers(0, len(pool), n)))


def bench_hashing(rows: int) -> dict[str, Any]:
    import joblib
    import numpy as np
    import pandas as pd
    import xxhash

    from mlops_nb.capture.fingerprint import fingerprint

    df = pd.DataFrame({f"s{j}": pd.Series(pd.arrays.ArrowExtensionArray(_strings(rows, j)))
                       for j in range(10)})
    nbytes = int(df.memory_usage(deep=False, index=False).sum())

    ours = _best(lambda: fingerprint(df))
    raw = _best(lambda: _raw_buffer_pass(df))
    jl = _best(lambda: joblib.hash(df), repeats=2)
    obj = pd.Series(np.asarray(_strings(rows, 99).to_pylist(), dtype=object), dtype=object)
    ours_obj = _best(lambda: fingerprint(obj))
    hpo = _best(lambda: pd.util.hash_pandas_object(obj, index=False), repeats=2)
    typed = _typed_arrow_frame(rows)

    numeric = typed[["ints", "floats"]]  # pandas' own hashing cannot take the list column
    # a wide frame: 10,000 float columns of 1,000 rows (one-hot, genomics, pixels as columns)
    wide = pd.DataFrame(np.random.default_rng(2).normal(size=(1000, 10_000)))
    return {
        "wide_ours_s": _best(lambda: fingerprint(wide)),
        # (its values transposed: the column-major block as it lies in memory, no copy)
        "wide_raw_s": _best(lambda: xxhash.xxh3_128(
            np.ascontiguousarray(wide.to_numpy().T)).digest()),
        "typed_ours_s": _best(lambda: fingerprint(typed)),
        "typed_raw_buffers_s": _best(lambda: _raw_buffer_pass(typed)),
        "typed_numeric_ours_s": _best(lambda: fingerprint(numeric)),
        "typed_numeric_hash_pandas_object_s": _best(
            lambda: pd.util.hash_pandas_object(numeric, index=False), repeats=2),
        "rows": rows, "arrow_frame_bytes": nbytes,
        "arrow_ours_s": ours, "arrow_raw_buffers_s": raw, "arrow_joblib_s": jl,
        "arrow_vs_joblib": jl / ours, "arrow_vs_raw": raw / ours,
        "arrow_gb_per_s": nbytes / ours / 1e9,
        "object_ours_s": ours_obj, "object_hash_pandas_object_s": hpo,
        "object_vs_hash_pandas_object": hpo / ours_obj,
    }


def _raw_buffer_pass(df: Any) -> None:
    """One xxh3 pass over every Arrow buffer of the frame's columns: the floor of hashing them."""
    import xxhash

    h = xxhash.xxh3_128()
    for col in df.columns:
        for chunk in df[col].array.__arrow_array__().chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    h.update(memoryview(buf))
    h.hexdigest()


def _typed_arrow_frame(rows: int) -> Any:
    """Arrow columns that are not text: int64 with 5% nulls, float64, list<int64> of three."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    rng = np.random.default_rng(1)
    ints = pa.array(rng.integers(0, 1000, rows), mask=rng.random(rows) < 0.05)
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, 3 * rows + 1, 3, dtype=np.int32)),
                                     pa.array(rng.integers(0, 9, 3 * rows)))
    return pd.DataFrame({name: pd.arrays.ArrowExtensionArray(arr) for name, arr in
                         (("ints", ints), ("floats", pa.array(rng.normal(size=rows))),
                          ("lists", lists))})


# -- cells in a real shell ----------------------------------------------------------------------
def shell_main(mode: str, rows: int, replace_mb: int, repeats: int) -> dict[str, Any]:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()

    cpu: dict[str, list[float]] = {}
    pcpu: dict[str, list[float]] = {}
    hook = [0.0]  # kernel-thread CPU spent inside the tracker's own handlers
    hcpu: dict[str, list[float]] = {}

    def run(code: str) -> float:
        h0 = hook[0]
        t, c, p = time.perf_counter(), time.thread_time(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            result = ip.run_cell(code, store_history=True)
        if not result.success:
            raise RuntimeError(f"{code!r} failed: {result.error_in_exec!r}")
        cpu.setdefault(code, []).append(time.thread_time() - c)  # the kernel thread's CPU
        # every thread's (hashing off the main thread counts too; so does the writer)
        pcpu.setdefault(code, []).append(time.process_time() - p)
        hcpu.setdefault(code, []).append(hook[0] - h0)
        return time.perf_counter() - t

    if mode == "tracked":
        run("%load_ext mlops_nb")
        run("%track on --experiment bench")
        _time_handlers(ip, hook)
    run("import numpy as np, pandas as pd, pyarrow as pa\n"
        "from benchmarks.data_cost import _strings\n"
        f"n = {rows}\n"
        "df = pd.DataFrame({'x': np.arange(n, dtype=float),"
        " 'user': np.asarray(_strings(n, 1).to_pylist(), dtype=object),"
        " 'city': pd.arrays.ArrowExtensionArray(_strings(n, 2))})")
    times: dict[str, list[float]] = {c: [] for c in (*READ_ONLY_CELLS, CONTROL_CELL)}
    for _ in range(repeats):
        for code in (*READ_ONLY_CELLS, CONTROL_CELL):
            times[code].append(run(code))
    # ~replace_mb of mixed data: 60% float64 columns, 40% Arrow strings
    num_rows = max(1, int(replace_mb * 0.6 * 2**20 / 8 / 8))
    run(f"big = pd.DataFrame({{f'f{{j}}': np.random.default_rng(j).random({num_rows})"
        " for j in range(8)})\n"
        f"big['s'] = pd.arrays.ArrowExtensionArray(_strings({num_rows}, 3))\n"
        f"big['t'] = pd.arrays.ArrowExtensionArray(_strings({num_rows}, 4))")
    big_bytes = int(ip.user_ns["big"].memory_usage(index=False).sum())
    replace = [run("big = big.copy()") for _ in range(3)]
    if mode == "tracked":
        ip._mlops_nb_tracker.flush(120)
    return {"mode": mode, "rows": rows, "cells": {c: median(v) for c, v in times.items()},
            "cells_cpu": {c: median(cpu[c]) for c in times},
            "cells_process_cpu": {c: median(pcpu[c]) for c in times},
            "replace_s": median(replace), "big_bytes": big_bytes,
            "replace_cpu_s": median(pcpu["big = big.copy()"]),
            "cells_hook_cpu": {c: median(hcpu[c]) for c in times},
            "replace_hook_cpu_s": median(hcpu["big = big.copy()"])}


def _time_handlers(ip: Any, total: list[float]) -> None:
    """Wrap the tracker's event handlers and parse hook so the CPU the kernel thread spends
    in them adds to `total[0]`: what tracking itself costs a cell, exactly, where the
    difference between two processes drowns in the noise of a heavy cell."""
    tracker = ip._mlops_nb_tracker

    def timed(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            c = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                total[0] += time.thread_time() - c
        return wrapper

    for callbacks in ip.events.callbacks.values():
        for i, cb in enumerate(callbacks):
            if getattr(cb, "__self__", None) is tracker:
                callbacks[i] = timed(cb)
    parse = ip.compile.__dict__.get("ast_parse")
    if parse is not None:
        ip.compile.ast_parse = timed(parse)


# -- lineage and store growth -------------------------------------------------------------------
def _tracked_session(home: Path, cells: list[str], setup: list[str]) -> dict[str, Any]:
    """Run `cells` through a real tracked shell; per-cell seconds and the last run's id."""
    code = f"""
import contextlib, io, json, os, sys, time
os.chdir({str(home)!r})
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
cells = json.loads(sys.stdin.read())
def run(c):
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        r = ip.run_cell(c, store_history=True)
    assert r.success, (c, r.error_in_exec)
    return time.perf_counter() - t
run("%load_ext mlops_nb"); run("%track on --experiment bench")
for c in cells["setup"]:
    run(c)
times = [run(c) for c in cells["cells"]]
tr = ip._mlops_nb_tracker
tr.flush(300)
print(json.dumps({{"times": times, "session": tr.session}}))
"""
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(
        {"setup": setup, "cells": cells}), capture_output=True, text=True, timeout=3600,
        env=bench_env(home, MLOPS_NB_HOME=str(home / ".mlops_nb")), cwd=home, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cli(home: Path, *args: str) -> dict[str, float]:
    """Wall seconds (from `main()`, after a warm-up run so bytecode is cached) and peak RSS
    (MB) of one `mlops-nb` command in a fresh process."""
    env = bench_env(home)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "mlops_nb.cli", "--help"], capture_output=True,
                   env=env, cwd=home, timeout=600, check=False)
    code = ("import resource, sys, time\nfrom mlops_nb.cli import main\nt = time.perf_counter()\n"
            "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "dt = time.perf_counter() - t\n"
            "hwm = [ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')]\n"
            "rss = int(hwm[0]) / 1024 if hwm else"
            " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
            "print('BENCH', rc, dt, rss, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, "--home", str(home / ".mlops_nb"), *args],
                          capture_output=True, text=True, timeout=600, env=env,
                          cwd=home, check=False)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("BENCH")), None)
    if line is None:
        raise RuntimeError(proc.stderr[-3000:])
    _, rc, dt, rss = line.split()
    return {"rc": int(rc) if rc not in ("None",) else 0, "s": float(dt), "peak_mb": float(rss)}


def _store_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in (home / ".mlops_nb").rglob("*") if p.is_file())


def bench_lineage(n: int, workdir: Path) -> dict[str, Any]:
    from mlops_nb.store.reader import StoreReader

    out: dict[str, Any] = {"cells": n}
    scenarios = {
        "rerun": (["from sklearn.linear_model import LogisticRegression\n"
                   "import numpy as np\nX = np.random.default_rng(0).random((50, 3))\n"
                   "y = (X[:, 0] > 0.5).astype(int)",
                   "clf = LogisticRegression().fit(X, y)"],
                  ["acc = clf.score(X, y)"] * n),
        "chain": (["x = 0"], ["x += 1\nloss = x"] * n),
    }
    for name, (setup, cells) in scenarios.items():
        home = workdir / name
        tenth = max(1, n // 10)
        first = _tracked_session(home / "tenth", cells[:tenth], setup)
        full = _tracked_session(home / "full", cells, setup)
        times = full["times"]
        k = min(1000, max(1, n // 5))
        reader = StoreReader(home / "full" / ".mlops_nb")
        log = reader.session_log(full["session"])
        last = next(cr for cr in reversed(log) if cr.is_run)
        res: dict[str, Any] = {
            "first_cells_ms": median(times[:k]) * 1000,
            "last_cells_ms": median(times[-k:]) * 1000,
            "store_bytes_per_cell_at_n_over_10": _store_bytes(home / "tenth") / tenth,
            "store_bytes_per_cell_at_n": _store_bytes(home / "full") / n,
            "show": [_cli(home / "full", "show", last.id) for _ in range(2)][-1],  # warm
        }
        _cli(home / "full", "export", last.id, "-o", str(home / "full" / "warm"), "--force")
        exp = _cli(home / "full", "export", last.id, "-o", str(home / "full" / "exp"),
                   "--force")
        res["export"] = exp
        if (home / "full" / "exp" / "train.py").exists():
            src = (home / "full" / "exp" / "train.py").read_text()
            res["export_copies_of_the_cell"] = src.count(cells[0].splitlines()[0])
        out[name] = res
        del first
    return out


def bench_literals(dependents: int, workdir: Path) -> dict[str, Any]:
    literal = "You are a careful assistant. " * 3500  # ~100 KB
    home = workdir / "literal"
    _tracked_session(home, [f"score = len(prompt) + {i}" for i in range(dependents)],
                     [f"prompt = {literal!r}"])
    size = _store_bytes(home)
    return {"literal_bytes": len(literal), "dependent_runs": dependents, "store_bytes": size,
            "copies_would_be_bytes": len(literal) * dependents,
            "store_vs_copies": size / (len(literal) * dependents)}


# -- driver -------------------------------------------------------------------------------------
def render(r: dict[str, Any]) -> str:
    lines = []
    h = r.get("hashing")
    if h:
        lines.append(f"hashing, {h['rows']:,} rows x 10 Arrow-string columns "
                     f"({h['arrow_frame_bytes'] / 1e6:.0f} MB): {h['arrow_ours_s'] * 1000:.0f} ms"
                     f" = {h['arrow_gb_per_s']:.2f} GB/s")
        lines.append(f"  vs joblib.hash {h['arrow_joblib_s'] * 1000:.0f} ms: "
                     f"{h['arrow_vs_joblib']:.1f}x faster (target >= 12x)")
        lines.append(f"  vs raw-buffer xxh3 pass {h['arrow_raw_buffers_s'] * 1000:.0f} ms: "
                     f"{h['arrow_vs_raw']:.2f}x its speed (target >= 0.5x)")
        lines.append(f"  object strings {h['object_ours_s'] * 1000:.0f} ms vs "
                     f"hash_pandas_object {h['object_hash_pandas_object_s'] * 1000:.0f} ms: "
                     f"{h['object_vs_hash_pandas_object']:.1f}x (target >= 3x)")
        if "typed_ours_s" in h:
            lines.append(
                f"  Arrow int64 (5% nulls), float64, list<int64> columns: "
                f"{h['typed_ours_s'] * 1000:.0f} ms, raw-buffer xxh3 pass "
                f"{h['typed_raw_buffers_s'] * 1000:.0f} ms; the two numeric columns "
                f"{h['typed_numeric_ours_s'] * 1000:.0f} ms vs hash_pandas_object "
                f"{h['typed_numeric_hash_pandas_object_s'] * 1000:.0f} ms "
                f"({h['typed_numeric_hash_pandas_object_s'] / h['typed_numeric_ours_s']:.1f}x)")
        if "wide_ours_s" in h:
            lines.append(f"  a 1,000 x 10,000 float frame: {h['wide_ours_s'] * 1000:.0f} ms, "
                         f"one xxh3 pass over its values {h['wide_raw_s'] * 1000:.0f} ms "
                         f"({h['wide_raw_s'] / h['wide_ours_s']:.2f}x its speed)")
    c = r.get("cells")
    if c:
        lines.append(f"read-only cells on a {c['rows']:,}-row frame with two string columns "
                     "(tracked minus plain, medians: wall, kernel-thread CPU, all-threads CPU;"
                     " target <= 1 ms):")
        pc = c.get("added_process_cpu_ms", {})
        for code, added in c["added_ms"].items():
            lines.append(f"  {code:34} {added:+7.2f} ms wall, "
                         f"{c['added_cpu_ms'][code]:+.2f} ms thread CPU, "
                         f"{pc.get(code, float('nan')):+.2f} ms process CPU; in the tracker's "
                         f"handlers {c.get('hook_cpu_ms', {}).get(code, float('nan')):.2f} ms")
        lines.append(f"replacing {c['big_bytes'] / 2**20:.0f} MB of mixed data (`big = big.copy()`)"
                     f": {c['replace_added_s']:+.3f} s wall, "
                     f"{c.get('replace_added_cpu_s', float('nan')):+.3f} s process CPU added, "
                     f"the copy itself {c.get('replace_plain_cpu_s', float('nan')):.3f} s CPU; in "
                     f"the tracker's handlers {c.get('replace_hook_cpu_s', float('nan')):.3f} s "
                     "(target <= 0.5 s)")
    lin = r.get("lineage")
    if lin:
        for name, label in (("rerun", "re-runs of `acc = clf.score(X, y)`"),
                            ("chain", "chained cells `x += 1`")):
            s = lin[name]
            lines.append(f"{lin['cells']:,} {label}:")
            lines.append(f"  per cell: first {s['first_cells_ms']:.2f} ms, last "
                         f"{s['last_cells_ms']:.2f} ms (flat)")
            lines.append(f"  store bytes per cell: {s['store_bytes_per_cell_at_n_over_10']:.0f}"
                         f" at N/10, {s['store_bytes_per_cell_at_n']:.0f} at N (flat)")
            lines.append(f"  show last run: {s['show']['s']:.2f} s, {s['show']['peak_mb']:.0f} MB;"
                         f" export: {s['export']['s']:.2f} s, {s['export']['peak_mb']:.0f} MB"
                         " (target <= 1 s, <= 200 MB)")
            if "export_copies_of_the_cell" in s:
                lines.append(f"  copies of the cell in train.py: {s['export_copies_of_the_cell']}")
    li = r.get("literals")
    if li:
        lines.append(f"{li['literal_bytes'] / 1000:.0f} KB literal, {li['dependent_runs']} "
                     f"dependent runs: store {li['store_bytes'] / 1e6:.2f} MB vs "
                     f"{li['copies_would_be_bytes'] / 1e6:.1f} MB of copies "
                     f"({li['store_vs_copies']:.3f}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.data_cost")
    parser.add_argument("mode", nargs="?", choices=("all", "shell"), default="all")
    parser.add_argument("shell_mode", nargs="?", choices=("pure", "tracked"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--replace-mb", type=int)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cells", type=int)
    parser.add_argument("--only", help="comma-separated: hashing,cells,lineage,literals")
    parser.add_argument("--json", help="write the raw figures here")
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode == "shell":
        write_out(args.out, shell_main(args.shell_mode, args.rows, args.replace_mb,
                                       args.repeats))
        return 0
    rows = args.rows or (400_000 if args.quick else 2_000_000)
    replace_mb = args.replace_mb or (256 if args.quick else 1024)
    n_cells = args.cells or (2_000 if args.quick else 20_000)
    only = set((args.only or "hashing,cells,lineage,literals").split(","))
    result: dict[str, Any] = {"quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="mnb-data-cost-") as tmp:
        work = Path(tmp)
        if "hashing" in only:
            result["hashing"] = bench_hashing(rows)
        if "cells" in only:
            shell_args = ["shell", "", "--rows", str(rows), "--replace-mb", str(replace_mb),
                          "--repeats", str(args.repeats)]
            runs: dict[str, list[dict[str, Any]]] = {"pure": [], "tracked": []}
            for mode in ("pure", "tracked", "tracked", "pure"):  # palindromic: drift cancels
                shell_args[1] = mode
                shell_dir = work / f"shell-{mode}"
                # its own store, named: a `.mlops_nb/` above the temp folder would be used
                env = bench_env(shell_dir, MLOPS_NB_HOME=str(shell_dir / ".mlops_nb"))
                runs[mode].append(run_json("data_cost", shell_args, shell_dir, timeout=3600,
                                           env=env))
            pure, tracked = runs["pure"], runs["tracked"]
            result["cells"] = {
                "rows": rows,
                "added_ms": {c: (median([t["cells"][c] for t in tracked])
                                 - median([p["cells"][c] for p in pure])) * 1000
                             for c in (*READ_ONLY_CELLS, CONTROL_CELL)},
                "added_cpu_ms": {c: (median([t["cells_cpu"][c] for t in tracked])
                                     - median([p["cells_cpu"][c] for p in pure])) * 1000
                                 for c in (*READ_ONLY_CELLS, CONTROL_CELL)},
                "added_process_cpu_ms": {
                    c: (median([t["cells_process_cpu"][c] for t in tracked])
                        - median([p["cells_process_cpu"][c] for p in pure])) * 1000
                    for c in (*READ_ONLY_CELLS, CONTROL_CELL)},
                "replace_added_s": median([t["replace_s"] for t in tracked])
                - median([p["replace_s"] for p in pure]),
                "replace_added_cpu_s": median([t["replace_cpu_s"] for t in tracked])
                - median([p["replace_cpu_s"] for p in pure]),
                "replace_plain_cpu_s": median([p["replace_cpu_s"] for p in pure]),
                "hook_cpu_ms": {c: median([t["cells_hook_cpu"][c] for t in tracked]) * 1000
                                for c in (*READ_ONLY_CELLS, CONTROL_CELL)},
                "replace_hook_cpu_s": median([t["replace_hook_cpu_s"] for t in tracked]),
                "big_bytes": tracked[0]["big_bytes"],
                "raw": runs,
            }
        if "lineage" in only:
            result["lineage"] = bench_lineage(n_cells, work)
        if "literals" in only:
            result["literals"] = bench_literals(300, work)
    result["peak_rss_mb_driver"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(render(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=repr))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    raise SystemExit(main())
