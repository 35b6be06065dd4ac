"""SIGKILL at any moment: no flushed run lost, no file unreadable, the writer's lag bounded."""

from __future__ import annotations

import os
import random
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import mlops_nb as mnb
from mlops_nb.store.reader import StoreReader
from mlops_nb.store.writer import SessionWriter

from .harness import (
    assert_every_store_file_parses,
    hexid,
    is_temp,
    kill_mid_run,
    make_run,
    replies,
    start_kernel,
    store_files,
)

KILL_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mlops_nb.records import CellRun
    from mlops_nb.store.blobs import blob_hash
    from mlops_nb.store.writer import SessionWriter

    home, session, tag = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    writer = SessionWriter(home, session, segment_size=40, flush_interval=0.002)
    print("ready", flush=True)
    n = 0
    while True:
        for _ in range(1 + n % 5):
            payload = f"x_{tag} = {n}\\n".encode() * (1 + n % 9)
            digest = blob_hash(payload)
            writer.append(
                CellRun(id=f"{tag:08x}{n:024x}", session=session, experiment="killed",
                        seq=n, started_at=time.time(), code=digest, params={"n": n},
                        metrics={"acc": n / 1e6}),
                {digest: payload},
            )
            n += 1
        assert writer.flush(30), "flush timed out"
        print(n, flush=True)  # all of 0..n-1 is durable now
    """
)




def _run_and_kill(script: Path, home: Path, tag: int, delay: float) -> tuple[str, int, str]:
    session = f"k{tag:03d}"
    argv = [sys.executable, str(script), str(home), session, str(tag)]
    # Even children may die before their first write; odd ones after it, at a random moment.
    _, flushed, stderr = kill_mid_run(argv, delay, home.parent / f"{session}.stderr",
                                      after_first_flush=tag % 2 == 1)
    return session, flushed, stderr


@pytest.mark.slow  # 60 child processes; still run in CI
def test_sigkill_mid_write_50_times_loses_no_flushed_record(tmp_path):
    home = tmp_path / ".mlops_nb"
    script = tmp_path / "tracking_child.py"
    script.write_text(KILL_CHILD)
    rng = random.Random(20261126)
    results: list[tuple[str, int, str]] = []
    # Five at a time, all into one store: the kills also land while neighbours write.
    for batch in range(10):
        threads = []
        out: list[tuple[str, int, str]] = []
        for j in range(5):
            tag, delay = batch * 5 + j, rng.uniform(0.02, 0.35)
            t = threading.Thread(target=lambda tag=tag, delay=delay, out=out: out.append(
                _run_and_kill(script, home, tag, delay)))
            t.start()
            threads.append(t)
        for t in threads:
            t.join(60)
        results.extend(out)
    assert len(results) == 50
    for session, _, stderr in results:
        assert "Error" not in stderr, (session, stderr)
    assert all(flushed for session, flushed, _ in results if int(session[1:]) % 2 == 1)

    assert assert_every_store_file_parses(home) > 0
    reader = StoreReader(home)
    by_session: dict[str, set[str]] = {}
    for cr in reader.iter_cell_runs():
        by_session.setdefault(cr.session, set()).add(cr.id)
        assert cr.code in reader.blobs, "a durable record's code blob is durable too"
    assert reader.problems == []
    for session, flushed, _ in results:
        tag = int(session[1:])
        have = by_session.get(session, set())
        missing = [n for n in range(flushed) if f"{tag:08x}{n:024x}" not in have]
        assert not missing, f"{session}: flushed {flushed} records, lost {missing[:5]}"
    listed = mnb.runs(home=home)
    assert listed.attrs["problems"] == []
    assert len(listed) == sum(len(v) for v in by_session.values())

    # Temp files the kills left are swept when a writer next opens the store.
    for p in store_files(home):
        if is_temp(p):
            os.utime(p, (0, 0))
    survivor = SessionWriter(home, "k999")
    survivor.append(make_run(hexid("9", 1), "k999", 0, experiment="killed"))
    survivor.close()
    assert [p for p in store_files(home) if is_temp(p)] == []


RECORDER_CHILD = textwrap.dedent(
    """
    import os, sys
    os.environ["MLOPS_NB_HOME"] = sys.argv[1]
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    import mlops_nb as mnb

    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=cfg)
    for line in ("%load_ext mlops_nb", "%track on --experiment recorder"):
        assert ip.run_cell(line, store_history=True).success
    print("ready", ip._mlops_nb_tracker.session, flush=True)
    n = 0
    while True:
        assert ip.run_cell(f"step = {n}\\nacc = step / 1e6", store_history=True).success
        n += 1
        if n % 3 == 0:
            assert mnb.flush(30)
            print(n, flush=True)  # cells 0..n-1 are durable now
    """
)


@pytest.mark.slow  # child shells with the real recorder; still run in CI
def test_sigkill_of_the_real_recorder_loses_no_flushed_cell_run(tmp_path):
    home = tmp_path / ".mlops_nb"
    script = tmp_path / "recorder_child.py"
    script.write_text(RECORDER_CHILD)
    rng = random.Random(11)
    results: list[tuple[str, int]] = []

    def one(i: int, delay: float) -> None:
        ready, flushed, _ = kill_mid_run([sys.executable, str(script), str(home)], delay,
                                         tmp_path / f"{i}.stderr", after_first_flush=True)
        results.append((ready[1], flushed))

    threads = [threading.Thread(target=one, args=(i, rng.uniform(0.0, 0.3))) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 10
    assert all(flushed >= 3 for _, flushed in results)
    assert assert_every_store_file_parses(home) > 0
    df = mnb.runs(home=home)
    assert df.attrs["problems"] == []
    for session, flushed in results:
        steps = set(df.loc[df["session"] == session, "params.step"])
        assert set(range(flushed)) <= steps, f"{session}: flushed {flushed}, have {len(steps)}"



@pytest.mark.slow
@pytest.mark.timeout(120)
def test_kernel_shutdown_writes_what_the_writer_still_held(tmp_path):
    """Shut down right after the last cell, with the writer holding it for 30 s: it is on disk.

    With a 30 s gathering interval nothing reaches the disk on its own before the shutdown, so
    this shows the flush at exit (atexit in the kernel process) works.
    """
    from mlops_nb.execute import _kernelspec_dir

    env = {**os.environ, "JUPYTER_PATH": _kernelspec_dir(), "MLOPS_NB_FLUSH_INTERVAL": "30"}
    env.pop("MLOPS_NB_HOME", None)
    km, kc = start_kernel(tmp_path, env)
    try:
        ids = [kc.execute("%load_ext mlops_nb"), kc.execute("%track on --experiment bye")]
        ids += [kc.execute(f"step = {i}\nacc = step / 10") for i in range(5)]
        got = replies(kc, ids, 60)
        assert all(r["status"] == "ok" for r in got.values())
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    df = mnb.runs(home=tmp_path / ".mlops_nb")
    assert sorted(df["params.step"]) == [0, 1, 2, 3, 4]

