"""Runs pushed per second to a real `mlflow server`: `log_batch` vs one call per value.

One server (SQLite backend, local artifact folder, 127.0.0.1) serves every measurement in the
same run, so the ratio is fair whatever the machine:

- sync: `mnb.sync_mlflow` end to end on a synthetic store of N runs (20 params, 5 metrics,
  ~20 tags, the lineage code as an artifact each): what a user waits for.
- batch: the same runs' params, metrics and tags through our `log_batch` pushing, without the
  artifact upload (one HTTP call per file, the same for any client).
- naive: the same params, metrics and tags with one `log_param` / `log_metric` / `set_tag`
  call per value (`create_run` and `set_terminated` as well): the client a script writes.
- resync: `sync_mlflow` again with nothing new (the idempotency check over N runs).

    python -m benchmarks.sync [--runs 100] [--out FILE]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT, write_out


def _server(root: Path) -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    from mlflow_server import MlflowServer

    return MlflowServer(root).start()


def measure(n_runs: int, workdir: Path) -> dict[str, Any]:
    try:
        import mlflow
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        return {"skipped": f"mlflow is not importable ({exc}); "
                           "install the test extra: .venv/bin/pip install -e '.[test]'"}
    from mlops_nb.sync.mlflow import (
        RetryPolicy,
        _Local,
        _push,
        _Server,
        mlflow_limits,
        sync_mlflow,
    )
    from mlops_nb.sync.payload import build_payload

    from .synth import build_store

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # Both clients alike: no "View run at" line (and the get_run MLflow makes for it) per run.
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    home = workdir / "project" / ".mlops_nb"
    build_store(home, n_runs, experiment="bench-sync")
    srv = _server(workdir / "server")
    try:
        client = MlflowClient(tracking_uri=srv.uri)
        t0 = time.perf_counter()
        summary = sync_mlflow(srv.uri, home=home, progress=False)
        sync_s = time.perf_counter() - t0
        assert len(summary.pushed) == n_runs, summary.text()
        t0 = time.perf_counter()
        again = sync_mlflow(srv.uri, home=home, progress=False)
        resync_s = time.perf_counter() - t0
        assert not again.pushed and len(again.skipped) == n_runs

        local = _Local.read(home, None)
        limits = mlflow_limits()
        payloads = []
        for rid, _exp, session, *_ in local.runs:
            p = build_payload(local.cell_run(rid, session), local.context(local.cell_run(
                rid, session)), limits)
            p.artifacts = {}
            payloads.append(p)
        server = _Server(client, srv.uri, RetryPolicy())
        exp_batch = client.create_experiment("bench-batch")
        t0 = time.perf_counter()
        for p in payloads:
            _push(server, exp_batch, p, limits, [])
        batch_s = time.perf_counter() - t0

        exp_naive = client.create_experiment("bench-naive")
        t0 = time.perf_counter()
        for p in payloads:
            run = client.create_run(exp_naive, start_time=p.start_ms, run_name=p.run_name)
            rid = run.info.run_id
            for k, v in p.params.items():
                client.log_param(rid, k, v)
            for k, v, ts, step in p.metrics:
                client.log_metric(rid, k, v, timestamp=ts, step=step)
            for k, v in p.tags.items():
                client.set_tag(rid, k, v)
            client.set_terminated(rid, p.status, end_time=p.end_ms)
        naive_s = time.perf_counter() - t0
        values = sum(len(p.params) + len(p.metrics) + len(p.tags) for p in payloads)
    finally:
        srv.stop()
    return {
        "runs": n_runs,
        "values_per_run": values / n_runs,
        "mlflow": mlflow.__version__,
        "sync_s": sync_s, "sync_runs_per_s": n_runs / sync_s,
        "batch_s": batch_s, "batch_runs_per_s": n_runs / batch_s,
        "naive_s": naive_s, "naive_runs_per_s": n_runs / naive_s,
        "resync_s": resync_s,
        "batch_vs_naive": naive_s / batch_s,
    }


def render(res: dict[str, Any]) -> str:
    if "skipped" in res:
        return f"sync to MLflow: skipped ({res['skipped']})"
    return "\n".join([
        f"sync to a real mlflow server {res['mlflow']}, {res['runs']} runs "
        f"(~{res['values_per_run']:.0f} params+metrics+tags each):",
        f"  mnb.sync_mlflow, with lineage artifact : {res['sync_runs_per_s']:7.1f} runs/s",
        f"  log_batch pushing, no artifact         : {res['batch_runs_per_s']:7.1f} runs/s",
        f"  naive client, one call per value       : {res['naive_runs_per_s']:7.1f} runs/s",
        f"  log_batch vs naive                     : x{res['batch_vs_naive']:.1f}",
        f"  re-sync with nothing new               : {res['resync_s']:7.2f} s",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mnb-bench-sync-") as tmp:
        res = measure(args.runs, Path(tmp))
    print(render(res))
    if args.out:
        write_out(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
