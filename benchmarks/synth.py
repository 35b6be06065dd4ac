"""A synthetic store of N runs, written through mlops-nb's own SessionWriter.

Every segment file and index summary is produced by the real writer code path, so the reader
benchmarks read exactly the format a tracked kernel leaves behind. Runs look like a training
sweep: ~20 effective parameters, 5 metrics, a data fingerprint, a short lineage.

    python -m benchmarks.synth HOME N [--sessions S]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from mlops_nb.records import CellRun
from mlops_nb.store.blobs import blob_hash
from mlops_nb.store.writer import SessionWriter

N_PARAMS = 20
METRICS = ("accuracy", "f1", "precision", "recall", "val_loss")
CODE_VARIANTS = 16  # distinct code blobs shared by all runs (content-addressed, deduplicated)


def _code(i: int) -> bytes:
    lines = [f"p{k} = {k * (i + 1)}" for k in range(N_PARAMS)]
    lines.append("clf = RandomForestClassifier(max_depth=p0).fit(X_train, y_train)")
    lines += [f"{m} = score(clf, '{m}')" for m in METRICS]
    return "\n".join(lines).encode()


def make_run(rng: random.Random, session: str, experiment: str, seq: int,
             codes: list[str], lineage: list[str], started_at: float) -> CellRun:
    params = {
        "max_depth": rng.randint(2, 12),
        "n_estimators": rng.choice([50, 100, 200, 400]),
        "criterion": rng.choice(["gini", "entropy", "log_loss"]),
        "bootstrap": rng.random() < 0.5,
        "learning_rate": round(rng.uniform(0.001, 0.3), 5),
        "dataset": "churn-2026-11.csv",
        "test_size": 0.2,
        "seed": rng.randint(0, 10_000),
        "features": ["age", "tenure", "plan"],
    }
    k = 0
    while len(params) < N_PARAMS:
        params[f"clf.param_{k}"] = rng.choice([None, 1, 0.5, "auto", True])
        k += 1
    metrics = {m: round(rng.random(), 6) for m in METRICS}
    data = {
        "X_train": {"hash": uuid.UUID(int=rng.getrandbits(128)).hex, "type": "DataFrame",
                    "shape": [8000, 3], "dtypes": {"age": "int64", "tenure": "int64",
                                                    "plan": "object"}},
        "y_train": {"hash": uuid.UUID(int=rng.getrandbits(128)).hex, "type": "Series",
                    "shape": [8000], "dtypes": {"y": "int64"}},
    }
    code = codes[seq % len(codes)]
    return CellRun(
        id=uuid.UUID(int=rng.getrandbits(128)).hex,
        session=session,
        experiment=experiment,
        seq=seq,
        started_at=started_at,
        duration_s=round(rng.uniform(0.05, 30), 6),
        notebook="churn.ipynb",
        cell_id=uuid.UUID(int=rng.getrandbits(128)).hex[:8],
        execution_count=seq + 1,
        code=code,
        python=code,
        defs=["clf", *METRICS],
        uses=["X_train", "y_train", "RandomForestClassifier", "score"],
        params={k: params[k] for k in list(params)[:3]},
        metrics=metrics,
        data=data,
        estimators={"clf": {"class": "sklearn.ensemble.RandomForestClassifier",
                            "params": {"max_depth": params["max_depth"]}}},
        deps=lineage[-2:],
        lineage=list(lineage),
        effective_params=params,
        effective_data=data,
    )


def build_store(home: Path, n_runs: int, *, sessions: int = 0, experiment: str = "churn",
                seed: int = 0) -> dict[str, float]:
    """Write `n_runs` runs into `home`, spread over `sessions` kernel sessions."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    sessions = sessions or max(1, n_runs // 2000)
    per = -(-n_runs // sessions)
    blobs = {blob_hash(_code(i)): _code(i) for i in range(CODE_VARIANTS)}
    codes = list(blobs)
    written = 0
    start = time.time() - sessions * (per * 20.0 + 3600.0) - 86400.0
    for s in range(sessions):
        # Session ids sort by start time, like the recorder's (`20261126T071501-3f9a1c2e`).
        session = time.strftime("%Y%m%dT%H%M%S", time.localtime(start + s * (per * 20.0 + 3600.0)))
        session += f"-{s:08x}"
        writer = SessionWriter(home, session)
        writer.update_session(session=session, notebook="churn.ipynb", started_at=time.time(),
                              pid=0, environment={"python": sys.version.split()[0]})
        lineage = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(3)]
        count = min(per, n_runs - written)
        # Sessions one after the other, a run every ~20 s within each: one person's history.
        clock = start + s * (per * 20.0 + 3600.0)
        for seq in range(count):
            clock += rng.uniform(1.0, 39.0)
            writer.append(make_run(rng, session, experiment, seq, codes, lineage, clock),
                          blobs if (s == 0 and seq == 0) else None)
        writer.flush(timeout=None)
        writer.close()
        if writer.error is not None:
            raise RuntimeError(f"synthetic store write failed: {writer.error!r}")
        written += count
    return {"runs": written, "sessions": sessions, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("home", type=Path)
    ap.add_argument("n", type=int)
    ap.add_argument("--sessions", type=int, default=0)
    args = ap.parse_args(argv)
    info = build_store(args.home, args.n, sessions=args.sessions)
    print(f"{info['runs']} runs in {info['sessions']} sessions: {info['seconds']:.1f} s")


if __name__ == "__main__":
    main()


def build_chain(home: Path, n_cells: int, *, seed: int = 0) -> dict[str, Any]:
    """One session of `n_cells` re-runs of a scoring cell (`acc = clf.score(X, y)`), each
    depending on the one before (issue 8, item 2): the longest lineage a store can hold.
    Returns the id of the last run (what `show` is timed on)."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    session = f"20261126T071501-{seed:08x}"
    writer = SessionWriter(home, session)
    writer.update_session(session=session, notebook="chain.ipynb", started_at=time.time(),
                          pid=0, environment={"python": sys.version.split()[0]})
    code = b"acc = clf.score(X, y)"
    digest = blob_hash(code)
    prev: list[str] = []
    clock = time.time() - n_cells * 2.0
    for seq in range(n_cells):
        clock += 1.0
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        writer.append(CellRun(
            id=run_id, session=session, experiment="chain", seq=seq, started_at=clock,
            duration_s=0.01, notebook="chain.ipynb", cell_id="c0ffee00",
            execution_count=seq + 1, code=digest, python=digest, defs=["acc"],
            uses=["clf", "X", "y"], metrics={"acc": round(rng.random(), 6)}, deps=prev,
        ), {digest: code} if seq == 0 else None)
        prev = [run_id]
    writer.flush(timeout=None)
    writer.close()
    if writer.error is not None:
        raise RuntimeError(f"synthetic store write failed: {writer.error!r}")
    return {"cells": n_cells, "last": prev[0], "seconds": time.perf_counter() - t0}
