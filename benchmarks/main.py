"""Run every benchmark of issue 2 and print one table: `bash benchmarks/run.sh [--quick]`.

Every ratio is against a baseline measured in this same run (never a stored number). Raw
figures go to benchmarks/results/<timestamp>.json and benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import (
    HEAVY_MODULES,
    RESULTS,
    bench_env,
    fmt_s,
    machine,
    median,
    run_json,
    signed,
    table,
)
from .mlflow_bench import fit_rows

KIND_LABELS = {
    "empty": "empty cell ('')",
    "trivial": "1-statement cell (`pass`)",
    "fifty": "50-statement cell, distinct",
    "fifty_identical": "50-statement cell, same text",
    "fifty_chained": "50-statement cell, mutating (lineage chain)",
    "workload": "20 params + 5 metrics cell",
}
TARGET_KINDS = ("empty", "fifty", "fifty_identical", "fifty_chained")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="fewer cells and repeats, smaller MLflow part (~1 minute)")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    ap.add_argument("--keep", action="store_true", help="keep the temporary stores")
    ap.add_argument("--render", metavar="JSON", help="only print the table of a saved result")
    args = ap.parse_args(argv)
    if args.render:
        res = json.loads(Path(args.render).read_text())
        rows, res["verdicts"] = summarize(res)
        print(render(res, rows))
        return 0
    quick = args.quick
    cells = 100 if quick else 500          # per kind and side, split over two processes
    shells, kernels = (2, 1) if quick else (5, 3)
    ml_runs, ml_budget, fit_cells = (10, 10.0, 1) if quick else (50, 120.0, 16)

    work = Path(tempfile.mkdtemp(prefix="mnb-bench-"))
    started = time.time()
    res: dict[str, Any] = {"quick": quick, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "machine": machine(), "workdir": str(work)}
    try:
        res["stores"] = build_stores(work)
        res["listing"] = bench_listing(work, full_no_index=not quick)
        res["overhead"] = bench_overhead(work, cells, reps=1 if quick else 2)
        res["load_ext"] = bench_load_ext(work, shells, kernels)
        if args.no_mlflow:
            res["mlflow"] = {"skipped": "--no-mlflow"}
        else:
            log(f"MLflow: sklearn autolog on {fit_cells} fit cells per way, log {ml_runs} runs, "
                f"search_runs within {ml_budget:.0f} s")
            res["mlflow"] = run_json("mlflow_bench", ["--runs", str(ml_runs),
                                                      "--budget", str(ml_budget),
                                                      "--fit-cells", str(fit_cells),
                                                      *(["--quick"] if quick else [])],
                                     work / "mlflow", timeout=1800)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    res["elapsed_s"] = time.time() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"{stamp}{'-quick' if quick else ''}.json"
    out.write_text(json.dumps(res, indent=2, default=repr))  # before rendering: never lost
    rows, verdicts = summarize(res)
    res["table"] = rows
    res["verdicts"] = verdicts
    text = render(res, rows)
    print(text)
    payload = json.dumps(res, indent=2, default=repr)
    out.write_text(payload)
    (RESULTS / "latest.json").write_text(payload)
    (RESULTS / "latest.txt").write_text(text + "\n")
    print(f"\nraw figures: {RESULTS / 'latest.json'}  ({res['elapsed_s']:.0f} s in all)")
    return 0


# -- the measurements -----------------------------------------------------------------------
def build_stores(work: Path) -> dict[str, Any]:
    from .synth import build_store

    out = {}
    for n in (10_000, 100_000):
        log(f"building a synthetic store of {n:,} runs through SessionWriter")
        out[str(n)] = build_store(work / f"store{n}", n)
    return out


def bench_listing(work: Path, full_no_index: bool) -> dict[str, Any]:
    out = {}
    for n in (10_000, 100_000):
        log(f"listing {n:,} runs into a DataFrame (fresh process)")
        extra = ["--no-index"] if (n == 10_000 or full_no_index) else []
        out[str(n)] = run_json("listing", [str(work / f"store{n}"), *extra], work / "listing")
    return out


def bench_overhead(work: Path, cells: int, reps: int) -> dict[str, Any]:
    """IPython alone (P), loaded (L), tracked into an empty store (E) and into the 100k store (H).

    Palindromic order P L E H H E L P, `reps` times, so a drift of the machine weighs on all
    four alike; each process times `cells / (2 * reps)` cells of each kind.
    """
    half = max(1, cells // (2 * reps))
    order = ["pure", "loaded", "empty", "100k", "100k", "empty", "loaded", "pure"] * reps
    raw: dict[str, list[dict[str, Any]]] = {k: [] for k in dict.fromkeys(order)}
    for i, cond in enumerate(order):
        log(f"cell overhead {i + 1}/{len(order)}: {cond} ({half} cells per kind)")
        wd = work / f"overhead{i}"
        if cond in ("pure", "loaded"):
            args = [cond]
        else:
            home = work / "store100000" if cond == "100k" else wd / ".mlops_nb"
            args = ["tracked", "--home", str(home)]
        raw[cond].append(run_json("overhead", [*args, "--cells", str(half)], wd,
                                  env=bench_env(wd)))
    out: dict[str, Any] = {"cells_per_kind": 2 * reps * half, "order": order, "conditions": {}}
    for cond, reps in raw.items():
        kinds = [k for k in reps[0] if isinstance(reps[0][k], dict)]
        summary: dict[str, Any] = {"writer_errors": [r.get("writer_error") for r in reps]}
        for k in kinds:
            times = [t for r in reps for t in r[k]["times_s"]]
            summary[k] = {
                "median_s": median(times),
                "cpu_median_s": median([t for r in reps for t in r[k]["cpu_s"]]),
                "rep_medians_s": [median(r[k]["times_s"]) for r in reps],
                "p90_s": sorted(times)[int(0.9 * len(times))],
                "n": len(times),
            }
            durable = [t for r in reps for t in r[k].get("durable_times_s", [])]
            if durable:
                summary[k]["durable_median_s"] = median(durable)
        out["conditions"][cond] = summary
    base = out["conditions"]["pure"]
    for cond in ("loaded", "empty", "100k"):
        for k, v in out["conditions"][cond].items():
            if not isinstance(v, dict) or k not in base:
                continue
            b = base[k]
            v["added_s"] = v["median_s"] - b["median_s"]
            v["cpu_added_s"] = v["cpu_median_s"] - b["cpu_median_s"]
            if "durable_median_s" in v:
                v["durable_added_s"] = v["durable_median_s"] - b["median_s"]
    return out


def bench_load_ext(work: Path, shells: int, kernels: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, n in (("shell", shells), ("kernel", kernels)):
        reps = []
        for i in range(n):
            log(f"%load_ext mlops_nb in a fresh {mode} {i + 1}/{n}")
            wd = work / f"loadext-{mode}{i}"
            reps.append(run_json("loadext", [mode], wd,
                                 env=bench_env(wd, MLOPS_NB_HOME=str(wd / ".mlops_nb"))))
        out[mode] = {
            "load_ext_s": median([r["load_ext_s"] for r in reps]),
            "load_ext_cpu_s": median([r["load_ext_cpu_s"] for r in reps]),
            "load_ext_all_s": [r["load_ext_s"] for r in reps],
            "track_on_s": median([r["track_on_s"] for r in reps]),
            "heavy_imported": sorted({m for r in reps for m in r["heavy_imported_by_load_ext"]}),
            "heavy_already_loaded": sorted({m for r in reps for m in r["heavy_already_loaded"]}),
        }
    return out


# -- the table --------------------------------------------------------------------------------
def _ok(cond: bool) -> str:
    return "met" if cond else "MISSED"


def summarize(res: dict[str, Any]) -> tuple[list[list[str]], dict[str, str]]:
    rows: list[list[str]] = []
    verdicts: dict[str, str] = {}
    ov = res["overhead"]
    base, loaded, empty, big = (ov["conditions"][c] for c in ("pure", "loaded", "empty", "100k"))
    n = ov["cells_per_kind"]

    rows.append([f"1. %track on, added per cell vs IPython alone (median of {n} cells, "
                 "InteractiveShell.run_cell, store_history=True)"])
    for k, label in KIND_LABELS.items():
        e, b = empty[k], base[k]
        target = "<= 1 ms" if k in TARGET_KINDS else "(info)"
        verdict = _ok(e["added_s"] <= 1e-3) if k in TARGET_KINDS else ""
        if verdict:
            verdicts[f"overhead.{k}"] = verdict
        rows.append([f"  {label}", target,
                     f"{signed(e['added_s'])} (cpu {signed(e['cpu_added_s'])})",
                     f"{fmt_s(b['median_s'])} untracked", f"x{e['median_s'] / b['median_s']:.2f}",
                     verdict])
    for k in ("fifty", "fifty_identical"):
        rows.append([f"  extension loaded, tracking off: {KIND_LABELS[k]}", "(info)",
                     f"{signed(loaded[k]['added_s'])} (cpu {signed(loaded[k]['cpu_added_s'])})",
                     f"{fmt_s(base[k]['median_s'])} untracked",
                     f"x{loaded[k]['median_s'] / base[k]['median_s']:.2f}", ""])

    rows.append(["2. The same, 100,000 runs already in the store (vs. the empty store)"])
    for k, label in KIND_LABELS.items():
        e, h = empty[k], big[k]
        # Noise: how far processes of one *same* condition land apart in this run.
        spread = [max(v["rep_medians_s"]) - min(v["rep_medians_s"]) for v in (base[k], e, h)]
        noise = max(max(spread), 20e-6)
        growth = h["added_s"] - e["added_s"]
        verdict = _ok(growth <= noise)
        verdicts[f"store100k.{k}"] = verdict
        rows.append([f"  {label}", "no growth", signed(h["added_s"]),
                     f"{signed(e['added_s'])} empty store",
                     f"{signed(growth)} (noise {fmt_s(noise)})",
                     verdict])

    rows.append(["3. mnb.runs(home=...) -> DataFrame (fresh process, pandas imported)"])
    for size, target in (("10000", 0.2), ("100000", 1.0)):
        lst = res["listing"][size]
        no_idx = lst.get("no_index_s")
        for phase in ("cold", "warm"):
            t = lst[f"{phase}_s"]
            verdict = _ok(t <= target)
            verdicts[f"listing.{size}.{phase}"] = verdict
            rows.append([f"  {int(size):,} runs, {phase}", f"<= {target:g} s",
                         f"{fmt_s(t)} (cpu {fmt_s(lst[f'{phase}_cpu_s'])})",
                         f"{fmt_s(no_idx)} without index" if no_idx else "",
                         f"x{no_idx / t:.1f} faster" if no_idx else "", verdict])

    rows.append(["4. %load_ext mlops_nb in a running kernel (fresh process each)"])
    pandas_import = median([res["listing"][s]["pandas_import_s"] for s in res["listing"]])
    for mode, label in (("shell", "InteractiveShell"), ("kernel", "ipykernel (jupyter_client)")):
        le = res["load_ext"][mode]
        verdict = _ok(le["load_ext_s"] <= 0.05 and not set(le["heavy_imported"]) & set(
            HEAVY_MODULES[:4]))
        verdicts[f"load_ext.{mode}"] = verdict
        rows.append([f"  {label}, median of {len(le['load_ext_all_s'])}", "<= 50 ms",
                     f"{fmt_s(le['load_ext_s'])} (cpu {fmt_s(le['load_ext_cpu_s'])})",
                     f"{fmt_s(pandas_import)} import pandas",
                     f"x{le['load_ext_s'] / pandas_import:.2f}", verdict])
        rows.append([f"    heavy modules imported by load_ext: "
                     f"{', '.join(le['heavy_imported']) or 'none'}"
                     f" (checked: {', '.join(HEAVY_MODULES)})"])
        rows.append([f"  {label}: first %track on", "(info)", fmt_s(le["track_on_s"]),
                     "", "", ""])

    ml = res["mlflow"]
    rows.append(["5. The same workload through MLflow local tracking"])
    if "skipped" in ml:
        rows.append([f"  skipped: {ml['skipped']}"])
    else:
        rows.append([f"  MLflow {ml['version']}, {ml['tracking_uri'].split(':')[0]} backend"])
        w = empty["workload"]
        rows.append([f"  log a run (20 params, 5 metrics, code), median of {ml['log_runs']}",
                     "(ratio)", f"MLflow {fmt_s(ml['log_run_median_s'])}",
                     f"mlops-nb {signed(w['added_s'])} on the cell",
                     f"MLflow x{ml['log_run_median_s'] / w['added_s']:.0f} slower", ""])
        if "durable_added_s" in w:
            rows.append(["  ... mlops-nb until fsynced (cell + flush)", "(ratio)",
                         f"MLflow {fmt_s(ml['log_run_median_s'])}",
                         f"mlops-nb {signed(w['durable_added_s'])}",
                         f"MLflow x{ml['log_run_median_s'] / w['durable_added_s']:.1f} slower",
                         ""])
        for s in ml["search"]:
            rows.append([f"  search_runs vs mnb.runs, {s['runs']:,} runs", "(ratio)",
                         f"MLflow {fmt_s(s['search_runs_s'])}",
                         f"mlops-nb {fmt_s(s['mnb_runs_s'])}",
                         f"MLflow x{s['search_runs_s'] / s['mnb_runs_s']:.0f} slower", ""])
        mnb10k = res["listing"]["10000"]["warm_s"]
        how = "extrapolated (line through the sizes above)" if ml["search_10k_extrapolated"] \
            else "measured"
        rows.append([f"  search_runs vs mnb.runs, 10,000 runs, MLflow {how}", "(ratio)",
                     f"MLflow {fmt_s(ml['search_10k_s'])}", f"mlops-nb {fmt_s(mnb10k)}",
                     f"MLflow x{ml['search_10k_s'] / mnb10k:.0f} slower", ""])
        if "fit" in ml:  # results saved before the fit part existed have none
            rows += fit_rows(ml["fit"])
    return rows, verdicts


def render(res: dict[str, Any], rows: list[list[str]]) -> str:
    m = res["machine"]
    head = (f"mlops-nb benchmarks{' (--quick)' if res['quick'] else ''}: Python {m['python']}, "
            f"{m['cpus']} CPUs, load {m.get('loadavg_1m_at_start', '?')}, "
            f"IPython {m['ipython']}, pandas {m['pandas']}, pyarrow {m['pyarrow']}, "
            f"mlflow {m['mlflow']}")
    body = table(rows, ["figure", "target", "measured", "baseline (same run)", "ratio",
                        "verdict"])
    missed = [k for k, v in res["verdicts"].items() if v != "met"]
    tail = f"targets missed: {', '.join(missed)}" if missed else "every target met"
    return f"{head}\n\n{body}\n\n{tail}"


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
