"""Two live kernels tracking into one store while readers list it: nothing lost or mixed."""

from __future__ import annotations

import os

import pytest

import mlops_nb as mnb
from mlops_nb.store.layout import SESSIONS_DIR

from .harness import assert_every_store_file_parses, replies, start_kernel


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_kernels_tracking_into_one_store_lose_nothing(tmp_path, monkeypatch):
    from mlops_nb.execute import _kernelspec_dir

    monkeypatch.setenv("JUPYTER_PATH", _kernelspec_dir())
    home = tmp_path / ".mlops_nb"
    env = {**os.environ, "MLOPS_NB_HOME": str(home), "MPLBACKEND": "Agg"}
    env.pop("JPY_SESSION_NAME", None)
    n_cells = 500
    kernels = [start_kernel(tmp_path, env) for _ in range(2)]
    try:
        setup: list[list[str]] = []
        for k, (_, kc) in enumerate(kernels):
            setup.append([kc.execute("%load_ext mlops_nb"),
                          kc.execute("%track on --experiment shared"),
                          kc.execute(f"kernel = {k}\nimport mlops_nb as mnb")])
        for (_, kc), ids in zip(kernels, setup, strict=True):
            assert all(r["status"] == "ok" for r in replies(kc, ids, 60).values())
        # Interleave the requests: both kernels run their 500 cells at the same time.
        sent: list[list[str]] = [[], []]
        for i in range(n_cells):
            for k, (_, kc) in enumerate(kernels):
                sent[k].append(kc.execute(f"step = {i}\nacc = (kernel * 1000 + step) / 10000"))
        counts: list[list[int]] = []
        for k, (_, kc) in enumerate(kernels):
            got = replies(kc, sent[k], 150)
            assert all(got[m]["status"] == "ok" for m in sent[k])
            counts.append(sorted(got[m]["execution_count"] for m in sent[k]))
            flushed = replies(kc, [kc.execute("assert mnb.flush(60)")], 90)
            assert next(iter(flushed.values()))["status"] == "ok"
    finally:
        for km, kc in kernels:
            kc.stop_channels()
            km.shutdown_kernel(now=False)

    df = mnb.runs(home=home)
    assert df.attrs["problems"] == []
    assert len(df) == 2 * n_cells
    assert df["session"].nunique() == 2
    for k, (_, group) in enumerate(sorted(df.groupby("session"), key=lambda g: g[1]
                                          ["metrics.acc"].min())):
        assert sorted(group["execution_count"]) == counts[k]
        assert sorted(group["params.step"]) == list(range(n_cells))
        assert sorted(group["metrics.acc"]) == [(k * 1000 + i) / 10000 for i in range(n_cells)]
        assert group["id"].is_unique
        # 500 cell runs roll over into several segment files, each written by its own kernel.
        session = group["session"].iloc[0]
        assert len(list((home / SESSIONS_DIR).glob(f"*/{session}.*.json"))) >= 3
    assert assert_every_store_file_parses(home) > 0


