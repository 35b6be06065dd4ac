"""Benchmark: open the comparison widget and write the HTML report at 1k, 10k, 100k runs.

Targets (issue 9): the widget is ready in the kernel (comparison built, payload made and
serialised as the comm would send it) in <= 1 s at 10,000 runs and <= 3 s at 100,000; the
report for 10,000 runs is written in <= 3 s and weighs <= 5 MB; in the browser (Debian
Chromium, the report's view), sorting 10,000 rows by a header click takes <= 100 ms.
`widget_open_s` is in a warm process (a notebook that has pandas loaded); `cold_open_s` is a
fresh interpreter, imports included. The store is made through the real SessionWriter
(segments, index, blobs), as sessions of 1,000 runs each.

    .venv/bin/python benchmarks/bench_compare.py [--sizes 1000,10000,100000] [--json out.json]

Prints one line per size and exits 1 if a target at 10,000 runs is missed. The baseline,
measured in the same run on the same store, is `mnb.runs()` (the runs DataFrame every view
starts from): `widget_vs_runs_frame` and `report_vs_runs_frame` are the ratios to it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

from mlops_nb.records import CellRun
from mlops_nb.store.writer import SessionWriter

TARGET_WIDGET_S = {10_000: 1.0, 100_000: 3.0}
TARGET_REPORT_S = 3.0
TARGET_REPORT_MB = 5.0
TARGET_BROWSER_SORT_MS = 100.0
RUNS_PER_SESSION = 1000
MODELS = ("rf", "gbm", "logreg", "svm")


def make_store(home: Path, n: int, seed: int = 0) -> None:
    """`n` runs with 6 parameters (4 varying, 2 constant), 3 metrics, in 1,000-run sessions."""
    rnd = random.Random(seed)
    t0 = time.time() - n * 60.0
    code = b"accuracy = evaluate(model)\n"
    from mlops_nb.store.blobs import blob_hash

    code_hash = blob_hash(code)  # blobs are checked against their hash on read
    for s in range(0, n, RUNS_PER_SESSION):
        session = f"20261126T000000-{s // RUNS_PER_SESSION:08x}"
        writer = SessionWriter(home, session)
        writer.update_session(session=session, environment={
            "python": "3.11.9", "platform": "Linux", "packages": {"scikit-learn": "1.5.2"},
            "git": {"commit": "0" * 40, "dirty": False}})
        for i in range(s, min(s + RUNS_PER_SESSION, n)):
            depth = rnd.choice((2, 3, 4, 6, 8, 12, None))
            lr = 10 ** rnd.uniform(-4, -0.5)
            model = rnd.choice(MODELS)
            acc = min(0.99, 0.7 + 0.02 * (depth or 5) ** 0.5 + 0.03 * rnd.random()
                      - 0.5 * lr + (0.02 if model == "gbm" else 0.0))
            cr = CellRun(
                id=uuid.UUID(int=rnd.getrandbits(128)).hex, session=session,
                experiment="bench", seq=i - s, started_at=t0 + i * 60.0,
                duration_s=rnd.uniform(0.1, 30), notebook="bench.ipynb",
                execution_count=i - s + 1, code=code_hash,
                params={"model": model, "max_depth": depth, "lr": lr,
                        "n_estimators": rnd.choice((100, 200, 400)), "seed": 0,
                        "dataset": "churn-v3"},
                effective_params=None,
                metrics={"accuracy": round(acc, 4), "f1": round(acc - 0.05, 4),
                         "val_loss": round(1 - acc, 4)},
                data={"X": {"hash": f"{rnd.getrandbits(32):08x}", "kind": "DataFrame"}},
                lineage=[],
            )
            writer.append(cr, {code_hash: code})
        writer.flush(600)
        writer.close()


def cold_open(home: Path) -> float:
    """Open the widget in a fresh interpreter: imports of pandas, matplotlib, ipywidgets too."""
    code = ("import time; t = time.perf_counter(); "
            "from mlops_nb.comparison.widget import CompareWidget; "
            f"CompareWidget('bench', metric='accuracy', home={str(home)!r}); "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench(n: int, root: Path) -> dict[str, float]:
    from mlops_nb.comparison.report import write_report
    from mlops_nb.comparison.widget import CompareWidget

    home = root / f"store-{n}" / ".mlops_nb"
    t = time.perf_counter()
    make_store(home, n)
    made = time.perf_counter() - t

    # Baseline, same run and store: what any view of the runs must pay, the runs DataFrame.
    import mlops_nb as mnb

    t, c = time.perf_counter(), time.process_time()
    mnb.runs("bench", home=home)
    runs_s, runs_cpu = time.perf_counter() - t, time.process_time() - c

    t, c = time.perf_counter(), time.process_time()
    w = CompareWidget("bench", metric="accuracy", home=home)
    state = json.dumps(w.get_state(), allow_nan=False)  # what the comm sends to the view
    widget_s, widget_cpu = time.perf_counter() - t, time.process_time() - c
    assert len(w.cmp.df) == n, (len(w.cmp.df), n)

    cold_s = cold_open(home)

    t = time.perf_counter()
    w.sort_by("lr", ascending=True)
    w.set_filter("model=gbm max_depth>=4")
    shown = len(w.view)
    interact_s = time.perf_counter() - t
    assert 0 < shown < n

    t = time.perf_counter()
    out = write_report(root / f"report-{n}.html", "bench", metric="accuracy", home=home)
    report_s = time.perf_counter() - t
    sort_ms = browser_sort_ms(out) if n == 10_000 else None
    return {"runs": n, "store_build_s": round(made, 2), "runs_frame_s": round(runs_s, 3),
            "widget_open_s": round(widget_s, 3),
            "widget_vs_runs_frame": round(widget_s / runs_s, 1),
            # CPU seconds: on a shared machine wall time measures the neighbours too
            "runs_frame_cpu_s": round(runs_cpu, 3), "widget_open_cpu_s": round(widget_cpu, 3),
            "widget_vs_runs_frame_cpu": round(widget_cpu / runs_cpu, 1),
            "widget_state_mb": round(len(state) / 1e6, 2),
            "cold_open_s": round(cold_s, 3),
            "sort_filter_s": round(interact_s, 3),
            "report_s": round(report_s, 3),
            "report_vs_runs_frame": round(report_s / runs_s, 1),
            "report_mb": round(out.stat().st_size / 1e6, 2),
            **({"browser_sort_ms": sort_ms} if sort_ms is not None else {})}


def browser_sort_ms(report: Path) -> float | None:
    """Median time of a header click that sorts the report's runs, in Debian Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = b.new_context(offline=True).new_page()
        page.goto(report.as_uri())
        page.locator(".mnb-grid tbody tr[data-id]").first.wait_for(timeout=60_000)
        times = []
        for key in ("params.lr", "params.lr", "params.max_depth", "metrics.f1", "params.lr"):
            times.append(page.evaluate("""key => {
                const th = document.querySelector(`th[data-key="${key}"]`);
                const t = performance.now(); th.click(); return performance.now() - t; }""",
                                       key))
        b.close()
    return round(sorted(times)[len(times) // 2], 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = []
    with tempfile.TemporaryDirectory(prefix="mnb-bench-compare-") as tmp:
        # Warm imports (pandas, matplotlib, anywidget) once, as a notebook would have them.
        import matplotlib.figure  # noqa: F401
        import pandas  # noqa: F401

        import mlops_nb.comparison.widget  # noqa: F401

        for n in sizes:
            r = bench(n, Path(tmp))
            results.append(r)
            print("compare  " + "  ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    failed = False

    def check(ok: bool, text: str) -> None:
        nonlocal failed
        print(f"target {text}: {'met' if ok else 'MISSED'}")
        failed = failed or not ok

    for r in results:
        n = r["runs"]
        if n in TARGET_WIDGET_S:
            check(r["widget_open_s"] <= TARGET_WIDGET_S[n],
                  f"widget ready <= {TARGET_WIDGET_S[n]} s at {n:,} ({r['widget_open_s']} s)")
        if n == 10_000:
            check(r["report_s"] <= TARGET_REPORT_S,
                  f"report <= {TARGET_REPORT_S} s at 10,000 ({r['report_s']} s)")
            check(r["report_mb"] <= TARGET_REPORT_MB,
                  f"report <= {TARGET_REPORT_MB} MB at 10,000 ({r['report_mb']} MB)")
            if "browser_sort_ms" in r:
                check(r["browser_sort_ms"] <= TARGET_BROWSER_SORT_MS,
                      f"browser sort of 10,000 rows <= {TARGET_BROWSER_SORT_MS} ms "
                      f"({r['browser_sort_ms']} ms)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
