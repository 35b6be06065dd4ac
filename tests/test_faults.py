"""Bad input and faults (issue 2): each one a test that drives the real thing.

Broken store files, killed writers, two live kernels sharing a store, hostile values and names,
failing user cells, repeated extension loading and bad run ids. Each test asserts what the
user sees: the runs that are still there, the file named on stderr, the exit code.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import xxhash

import mlops_nb as mnb
from mlops_nb.cli import main
from mlops_nb.lineage import resolve_value_refs
from mlops_nb.records import CellRun
from mlops_nb.store.index import INDEX_SCHEMA
from mlops_nb.store.layout import INDEX_DIR, SESSIONS_DIR
from mlops_nb.store.reader import StoreReader
from mlops_nb.store.storage import TEMP_SUFFIX
from mlops_nb.store.writer import SessionWriter

CONSOLE_SCRIPT = Path(sys.executable).parent / "mlops-nb"


# -- helpers ------------------------------------------------------------------------------------
def make_run(
    run_id: str, session: str, seq: int, *, experiment: str = "faults", **metrics: float
) -> CellRun:
    return CellRun(
        id=run_id,
        session=session,
        experiment=experiment,
        seq=seq,
        started_at=1_790_000_000.0 + seq,
        params={"i": seq},
        metrics=metrics or {"acc": seq / 10},
    )


def write_session(home: Path, session: str, runs: list[CellRun], **kw: Any) -> list[Path]:
    """Write `runs` through the real SessionWriter and return the session's segment files."""
    writer = SessionWriter(home, session, **kw)
    for cr in runs:
        writer.append(cr)
    assert writer.flush(30)
    writer.close()
    assert writer.error is None
    return sorted((home / SESSIONS_DIR).glob(f"*/{session}.*.json"))


def hexid(prefix: str, n: int) -> str:
    """A 32-hex-digit run id starting with `prefix`."""
    return prefix + f"{n:x}".rjust(32 - len(prefix), "0")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def store_files(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()]


def is_temp(p: Path) -> bool:
    return p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)


def assert_every_store_file_parses(home: Path) -> int:
    """Sessions and index files are whole JSON; blobs hash to their own name. Returns count."""
    checked = 0
    for p in store_files(home):
        if is_temp(p):
            continue  # a killed writer's unfinished temp file: never read, cleaned on open
        rel = p.relative_to(home).parts
        if rel[0] in (SESSIONS_DIR, INDEX_DIR):
            doc = json.loads(p.read_bytes())
            assert isinstance(doc, dict), p
        elif rel[0] == "blobs":
            assert xxhash.xxh3_128_hexdigest(p.read_bytes()) == p.name, p
        else:
            raise AssertionError(f"unexpected file in the store: {p}")
        checked += 1
    return checked


# -- corrupt and truncated session files -------------------------------------------------------
@pytest.fixture
def damaged_store(tmp_path: Path) -> dict[str, Any]:
    """One good session beside a session of garbage bytes and one cut in half."""
    home = tmp_path / ".mlops_nb"
    good = [make_run(hexid("a1", i), "good", i) for i in range(3)]
    write_session(home, "good", good)
    [garbage] = write_session(home, "garbage", [make_run(hexid("b2", i), "garbage", i)
                                                 for i in range(3)])
    [truncated] = write_session(home, "truncated", [make_run(hexid("c3", i), "truncated", i)
                                                     for i in range(3)])
    # Their index summaries stay behind, stamped with the old size and mtime.
    rng = random.Random(7)
    garbage.write_bytes(b"\x00\xff" + bytes(rng.randrange(256) for _ in range(700)))
    raw = truncated.read_bytes()
    truncated.write_bytes(raw[: len(raw) // 2])
    return {"home": home, "good": [cr.id for cr in good], "garbage": garbage,
            "truncated": truncated}


def test_corrupt_and_truncated_sessions_do_not_hide_the_good_one(damaged_store):
    home = damaged_store["home"]
    df = mnb.runs(home=home)
    assert list(df["id"]) == damaged_store["good"]
    assert list(df["metrics.acc"]) == [0.0, 0.1, 0.2]
    problems = df.attrs["problems"]
    assert len(problems) == 2
    assert any(damaged_store["garbage"].name in p for p in problems)
    assert any(damaged_store["truncated"].name in p for p in problems)
    assert not any("good." in p for p in problems)


def test_cli_runs_names_bad_files_and_fails_only_when_strict(damaged_store, capsys):
    home = str(damaged_store["home"])
    code, out, err = cli(capsys, "--home", home, "runs")
    assert code == 0
    for run_id in damaged_store["good"]:
        assert run_id[:12] in out
    assert damaged_store["garbage"].name in err
    assert damaged_store["truncated"].name in err

    code, out, err = cli(capsys, "--home", home, "runs", "--strict")
    assert code == 1
    assert damaged_store["garbage"].name in err and "--strict" in err
    # The good runs are still printed: --strict changes the verdict, not the listing.
    assert damaged_store["good"][0][:12] in out

    # A good run is still shown while bad files sit beside it.
    code, out, _ = cli(capsys, "--home", home, "show", damaged_store["good"][1])
    assert code == 0 and damaged_store["good"][1] in out


def test_installed_console_script_reports_bad_files(damaged_store):
    assert CONSOLE_SCRIPT.exists(), "the package is installed with its `mlops-nb` script"
    home = str(damaged_store["home"])
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_NB_HOME"}
    lenient = subprocess.run([str(CONSOLE_SCRIPT), "--home", home, "runs", "--format", "json"],
                             capture_output=True, text=True, timeout=60, env=env)
    assert lenient.returncode == 0, lenient.stderr
    assert [r["id"] for r in json.loads(lenient.stdout)] == damaged_store["good"]
    assert damaged_store["truncated"].name in lenient.stderr
    strict = subprocess.run([str(CONSOLE_SCRIPT), "--home", home, "runs", "--strict"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert strict.returncode == 1
    assert damaged_store["garbage"].name in strict.stderr
    assert "Traceback" not in strict.stderr


@pytest.mark.parametrize(
    "content",
    [
        b"[1, 2, 3]",
        b'{"session": [1], "cell_runs": {}}',
        b'{"session": "x", "cell_runs": {"1": 7}}',
        b'{"cell_runs": [{"id": "abc"}]}',
        b"",
    ],
    ids=["list", "session-not-a-table", "session-str", "cell-runs-list", "empty"],
)
def test_valid_json_of_the_wrong_shape_is_a_problem_not_a_crash(tmp_path, capsys, content):
    home = tmp_path / ".mlops_nb"
    good = [make_run(hexid("d4", i), "good", i) for i in range(2)]
    [seg] = write_session(home, "good", good)
    odd = seg.with_name("odd.0000.json")
    odd.write_bytes(content)
    df = mnb.runs(home=home)
    assert list(df["id"]) == [cr.id for cr in good]
    assert [p for p in df.attrs["problems"] if odd.name in p]
    code, _, err = cli(capsys, "--home", str(home), "runs", "--strict")
    assert code == 1 and odd.name in err


def test_malformed_record_fields_are_problems_and_other_records_load(tmp_path):
    home = tmp_path / ".mlops_nb"
    runs = [make_run(hexid("e5", i), "s", i) for i in range(4)]
    [seg] = write_session(home, "s", runs)
    doc = json.loads(seg.read_text())
    table = doc["cell_runs"]
    keys = sorted(table, key=int)
    table[keys[1]]["metrics"] = [1, 2]  # a list where a mapping belongs
    table[keys[2]]["params"] = "max_depth=3"
    seg.write_text(json.dumps(doc))
    reader = StoreReader(home)
    df = mnb.runs(home=home)
    assert list(df["id"]) == [runs[0].id, runs[3].id]
    assert len(df.attrs["problems"]) == 2
    assert [cr.id for cr in reader.iter_cell_runs()] == [runs[0].id, runs[3].id]


def test_newer_schema_record_is_a_problem_and_the_rest_still_load(tmp_path, capsys):
    home = tmp_path / ".mlops_nb"
    runs = [make_run(hexid("f6", i), "s", i) for i in range(3)]
    [seg] = write_session(home, "s", runs)
    doc = json.loads(seg.read_text())
    newest = max(doc["cell_runs"], key=int)
    doc["cell_runs"][newest]["schema"] = 99
    doc["cell_runs"][newest]["a_field_from_the_future"] = {"x": 1}
    seg.write_text(json.dumps(doc))

    df = mnb.runs(home=home)
    assert list(df["id"]) == [runs[0].id, runs[1].id]
    [problem] = df.attrs["problems"]
    assert seg.name in problem and "99" in problem and "upgrade" in problem

    code, out, err = cli(capsys, "--home", str(home), "runs")
    assert code == 0 and runs[0].id[:12] in out and "99" in err
    assert cli(capsys, "--home", str(home), "runs", "--strict")[0] == 1
    code, out, _ = cli(capsys, "--home", str(home), "show", runs[1].id, "--format", "json")
    assert code == 0 and json.loads(out)["id"] == runs[1].id


# -- the derived index -------------------------------------------------------------------------
def _index_files(home: Path) -> list[Path]:
    return sorted((home / INDEX_DIR).rglob("*.json"))


def test_corrupt_or_stale_index_is_ignored_and_rebuilt_from_the_session(tmp_path):
    home = tmp_path / ".mlops_nb"
    writer = SessionWriter(home, "s")
    runs = [make_run(hexid("a7", i), "s", i) for i in range(6)]
    for cr in runs[:3]:
        writer.append(cr)
    assert writer.flush()
    [index] = _index_files(home)
    stale = index.read_bytes()
    assert json.loads(stale)["n"] == 3
    for cr in runs[3:]:
        writer.append(cr)
    writer.close()
    expected = [cr.id for cr in runs]
    assert list(mnb.runs(home=home)["id"]) == expected
    current = index.read_bytes()
    assert json.loads(current)["n"] == 6

    index.write_bytes(stale)  # an index from before the last write
    assert list(mnb.runs(home=home)["id"]) == expected

    st = os.stat(next((home / SESSIONS_DIR).rglob("s.0000.json")))
    bad_docs = [
        b"\x00garbage{",
        b"",
        # Stamped as current, but its columns are broken: still never trusted blindly.
        json.dumps({"schema": INDEX_SCHEMA, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                    "n": 6, "cols": {"id": ["x"]}}).encode(),
        json.dumps({"schema": INDEX_SCHEMA, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                    "n": "six", "cols": []}).encode(),
    ]
    for bad in bad_docs:
        index.write_bytes(bad)
        df = mnb.runs(home=home)
        assert list(df["id"]) == expected, bad
        assert df.attrs["problems"] == []

    shutil.rmtree(home / INDEX_DIR)
    assert list(mnb.runs(home=home)["id"]) == expected
    # The next write of the session brings its index back.
    more = SessionWriter(home, "s")
    more.append(make_run(hexid("a7", 6), "s", 6))
    more.close()
    assert _index_files(home)
    assert len(mnb.runs(home=home)) == 7


# -- SIGKILL mid-write -------------------------------------------------------------------------
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


def kill_mid_run(
    argv: list[str], delay: float, log: Path, *, after_first_flush: bool = False
) -> tuple[list[str], int, str]:
    """Start a tracking child and SIGKILL it `delay` s after it is ready (or after it first
    reported a flush, so a loaded machine cannot make every kill land before any write).
    The child is always gone on return. Returns the fields of its `ready` line, the last
    count it reported durable, and its stderr."""
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True)
    watchdog = threading.Timer(60, proc.kill)  # a child that never gets ready cannot hang us
    watchdog.start()
    lines: list[str] = []
    ready: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ready"):
                ready = line.split()
                break
        if ready and after_first_flush:
            for line in proc.stdout:
                lines.append(line)
                if line.strip().isdigit():
                    break
        if ready:
            reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
            reader.start()
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            reader.join(30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    stderr = log.read_text()
    assert ready, f"the child never got ready: {stderr}"
    counts = [int(ln) for ln in lines if ln.endswith("\n") and ln.strip().isdigit()]
    return ready, (counts[-1] if counts else 0), stderr


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


# -- two live kernels, one store ---------------------------------------------------------------
def _start_kernel(cwd: Path, env: dict[str, str]) -> tuple[Any, Any]:
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(cwd), env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def _replies(kc: Any, msg_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    pending = set(msg_ids)
    got: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while pending:
        msg = kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.1))
        parent = msg["parent_header"].get("msg_id")
        if parent in pending:
            pending.discard(parent)
            got[parent] = msg["content"]
    return got


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_kernels_tracking_into_one_store_lose_nothing(tmp_path, monkeypatch):
    from mlops_nb.execute import _kernelspec_dir

    monkeypatch.setenv("JUPYTER_PATH", _kernelspec_dir())
    home = tmp_path / ".mlops_nb"
    env = {**os.environ, "MLOPS_NB_HOME": str(home), "MPLBACKEND": "Agg"}
    env.pop("JPY_SESSION_NAME", None)
    n_cells = 500
    kernels = [_start_kernel(tmp_path, env) for _ in range(2)]
    try:
        setup: list[list[str]] = []
        for k, (_, kc) in enumerate(kernels):
            setup.append([kc.execute("%load_ext mlops_nb"),
                          kc.execute("%track on --experiment shared"),
                          kc.execute(f"kernel = {k}\nimport mlops_nb as mnb")])
        for (_, kc), ids in zip(kernels, setup, strict=True):
            assert all(r["status"] == "ok" for r in _replies(kc, ids, 60).values())
        # Interleave the requests: both kernels run their 500 cells at the same time.
        sent: list[list[str]] = [[], []]
        for i in range(n_cells):
            for k, (_, kc) in enumerate(kernels):
                sent[k].append(kc.execute(f"step = {i}\nacc = (kernel * 1000 + step) / 10000"))
        counts: list[list[int]] = []
        for k, (_, kc) in enumerate(kernels):
            replies = _replies(kc, sent[k], 150)
            assert all(replies[m]["status"] == "ok" for m in sent[k])
            counts.append(sorted(replies[m]["execution_count"] for m in sent[k]))
            flushed = _replies(kc, [kc.execute("assert mnb.flush(60)")], 90)
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


# -- capture never breaks the user's cell ------------------------------------------------------
HOSTILE_OBJECTS = """
import math
import numpy as np
import pandas as pd
import mlops_nb as mnb

class Unprintable:
    def __repr__(self): raise RuntimeError("no repr for you")
    __str__ = __repr__

class BrokenEstimator:
    def fit(self, X=None, y=None):
        self.coef_ = 1.0
        return self
    def get_params(self, deep=True): raise RuntimeError("get_params exploded")

class Unlistable(list):
    def __iter__(self): raise RuntimeError("cannot iterate")

class BombName(str):
    def __hash__(self): raise RuntimeError("hash bomb")
    def __eq__(self, other): raise RuntimeError("eq bomb")

class HostileFrame(pd.DataFrame):
    @property
    def _constructor(self): return HostileFrame
"""


def _last_cell_run(shell: Any) -> CellRun:
    shell.flush()
    return max(StoreReader(shell.tracker.home).iter_cell_runs(), key=lambda cr: cr.seq)


@pytest.mark.parametrize(
    ("cell", "check", "warning"),
    [
        ("mnb.log_param('obj', Unprintable())\nok = 1", "ok == 1", "param obj"),
        ("est = BrokenEstimator().fit()\nok = 2", "ok == 2", "get_params exploded"),
        ("frame = pd.DataFrame({'a': [Unprintable(), 1]})\nok = 3", "ok == 3",
         "could not fingerprint frame"),
        ("hf = HostileFrame({'a': [Unprintable(), 2.0]})\nok = 4", "isinstance(hf, pd.DataFrame)",
         None),
        ("_ = mnb.log_metric('acc', 'high')\nok = 5", "ok == 5", "acc: metric value 'high'"),
        ("_ = mnb.log_metric('acc', float('nan'))\nok = 6", "ok == 6", "not finite"),
        ("_ = mnb.log_metric('loss', -math.inf)\nok = 7", "ok == 7", "not finite"),
        ("_ = mnb.log_metric('acc', 10**5000)\nok = 8", "ok == 8", "metrics.acc: not storable"),
        ("acc = np.float64('nan')\nok = 9", "ok == 9", "is not finite"),
        ("score = Unprintable()\nok = 10", "ok == 10", None),
        ("mnb.log_param('huge', 10**5000)\nok = 11", "ok == 11", None),
        ("_ = mnb.log_metric(Unprintable(), 1.0)\nok = 12", "ok == 12", "not a non-empty string"),
        ("_ = mnb.log_metric('acc', Unprintable())\nok = 13", "ok == 13", "unrepresentable"),
        ("mnb.log_param('d', {Unprintable(): [Unprintable()]})\nok = 14", "ok == 14", None),
        ("mnb.log_param('l', Unlistable([1]))\nok = 15", "ok == 15", "log_param failed"),
        ("_ = mnb.log_metric('acc', Unlistable([1]))\nok = 16", "ok == 16",
         "log_metric failed"),
        ("_ = mnb.log_metric(BombName('acc'), 0.5)\nok = 17", "ok == 17", None),
    ],
    ids=["repr-raises", "get-params-raises", "hash-raises", "frame-subclass", "metric-str",
         "metric-nan", "metric-minus-inf", "metric-10**5000", "auto-metric-nan",
         "auto-metric-unprintable", "param-10**5000", "metric-name-unprintable",
         "metric-value-unprintable", "param-dict-unprintable", "param-iter-raises",
         "metric-iter-raises", "metric-name-str-subclass-hash-raises"],
)
def test_capture_never_breaks_the_users_cell(tracked, cell, check, warning):
    tracked.run(HOSTILE_OBJECTS)
    result = tracked.run(cell, check=False)
    assert result.success, result.error_in_exec
    cr = _last_cell_run(tracked)
    assert tracked.run(check).result is True
    assert cr.status == "ok" and cr.error is None
    if warning is not None:
        assert any(warning in w for w in cr.warnings), cr.warnings
    # Whatever the cell held, the store stays writable and readable afterwards.
    tracked.run("after = 1\nf1 = 0.5")
    tracked.flush()
    assert tracked.tracker.writer.error is None
    df = mnb.runs(home=tracked.tracker.home)
    assert df.attrs["problems"] == []
    assert df["metrics.f1"].iloc[-1] == 0.5


def test_values_json_cannot_hold_are_kept_as_text_and_later_cells_still_written(tracked):
    # An int past 4300 digits has no JSON text; one such value must not block the session.
    tracked.run("import mlops_nb as mnb")
    big_literal = "0x" + "f" * 4000  # a literal param, 16,000 bits
    tracked.run(f"_ = mnb.log_metric('acc', 10**5000)\nbig = {big_literal}\n"
                "mnb.log_param('huge', -(10**5000))")
    cr = _last_cell_run(tracked)
    assert cr.metrics["acc"].startswith("<int of 16610 bits")
    assert cr.params["big"].startswith("<int of 16000 bits")
    assert cr.params["huge"].startswith("<int of 16610 bits")
    assert any(w.startswith("metrics.acc: not storable") for w in cr.warnings), cr.warnings
    assert any(w.startswith("params.big: not storable") for w in cr.warnings), cr.warnings
    tracked.run("f1 = 0.5")
    tracked.flush()
    assert tracked.tracker.writer.error is None
    df = mnb.runs(home=tracked.tracker.home)
    assert df.attrs["problems"] == []
    assert list(df["metrics.f1"].dropna()) == [0.5]
    assert len(df) == 2


def test_a_hostile_metric_like_variable_does_not_cost_the_cells_logged_metrics(tracked):
    tracked.run(
        "import mlops_nb as mnb\n"
        "class Sneaky:\n"
        "    def __getattr__(self, name): raise RuntimeError(f'no {name} here')\n"
    )
    tracked.run("score = Sneaky()\nval_loss = Sneaky()\n_ = mnb.log_metric('f1', 0.9)\nok = 1")
    cr = _last_cell_run(tracked)
    assert cr.metrics == {"f1": 0.9}
    assert cr.status == "ok"
    assert list(mnb.runs(home=tracked.tracker.home)["metrics.f1"]) == [0.9]


# -- hostile names and values ------------------------------------------------------------------
HOSTILE_NAMES = [
    "x; import os",
    "two\nlines",
    "quotes \" ' `",
    "nul\x00byte",
    "rtl\u202eevil",
    "{__import__('os').system('echo pwned')}",
    "n" * 3000,
    "tab\tand\rreturn\x1b[31mred",
]
HOSTILE_VALUES = [
    "x; import os",
    "a\nb",
    "\x00",
    "\u202e",
    "{__import__('os')}",
    "'; DROP TABLE runs; --",
    "v" * 10_000,
    "\udcff",  # what os.fsdecode makes of a non-UTF-8 byte in a path
]


def test_hostile_names_and_values_round_trip_and_print_escaped(tracked, capsys):
    ns = tracked.ns
    ns["HOSTILE_NAMES"], ns["HOSTILE_VALUES"] = HOSTILE_NAMES, HOSTILE_VALUES
    tracked.run(
        "import math, mlops_nb as mnb\n"
        "for i, name in enumerate(HOSTILE_NAMES):\n"
        "    mnb.log_param(name, HOSTILE_VALUES[i])\n"
        "    mnb.log_metric(name, 0.5 + i)\n"
        "mnb.log_param('nan', math.nan); mnb.log_param('inf', math.inf)\n"
        "mnb.log_param('ninf', -math.inf)\n"
        "mnb.log_param(42, 'int name'); mnb.log_param(None, 'none name')\n"
        "_ = mnb.log_metric(('t', 1), 2.0)\n"
    )
    cr = _last_cell_run(tracked)
    # a large value is stored once as a blob and referred to (issue 8 item 3)
    params = resolve_value_refs(cr.params, StoreReader(tracked.tracker.home).blobs)
    for i, name in enumerate(HOSTILE_NAMES):
        assert params[name] == HOSTILE_VALUES[i]
        assert cr.metrics[name] == 0.5 + i
    assert math.isnan(cr.params["nan"]) and cr.params["inf"] == math.inf
    assert cr.params["ninf"] == -math.inf
    assert cr.params["42"] == "int name" and cr.params["None"] == "none name"
    assert cr.metrics["('t', 1)"] == 2.0
    assert sum("not a non-empty string" in w for w in cr.warnings) == 3

    home = str(tracked.tracker.home)
    code, out, err = cli(capsys, "--home", home, "runs")
    assert code == 0, err
    for raw in ("\x00", "\u202e", "\x1b", "\r", "\udcff"):
        assert raw not in out
    assert "\\x00" in out and "\\u202e" in out
    # header, one row and the line of parameters shared by all runs: no name broke a line
    lines = out.splitlines()
    assert len(lines) == 3 and lines[2].startswith("same for all runs: ")

    code, out, err = cli(capsys, "--home", home, "show", cr.id)
    assert code == 0, err
    for raw in ("\x00", "\u202e", "\x1b", "\r", "\udcff"):
        assert raw not in out
    assert "x; import os" in out and "\\u202e" in out and "two\\nlines" in out

    code, out, err = cli(capsys, "--home", home, "show", cr.id, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    for i, name in enumerate(HOSTILE_NAMES):
        assert doc["params"][name] == HOSTILE_VALUES[i]
        assert doc["metrics"][name] == 0.5 + i
    assert doc["params"]["nan"] is None and doc["params"]["inf"] is None  # JSON has no NaN

    code, out, err = cli(capsys, "--home", home, "runs", "--format", "json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["metrics." + HOSTILE_NAMES[3]] == 3.5
    assert row["params." + HOSTILE_NAMES[5]] == HOSTILE_VALUES[5]

    code, out, err = cli(capsys, "--home", home, "runs", "--format", "csv")
    assert code == 0, err
    assert "nul" in out


def test_hostile_experiment_name_is_stored_and_filtered(shell, capsys):
    name = "../../etc/passwd\x00\u202e; rm -rf /"
    shell.run("%load_ext mlops_nb")
    shell.run("%track on")
    shell.tracker.experiment = name  # no magic line can carry a NUL; the API can
    shell.run("acc = 0.75")
    shell.flush()
    home = shell.tracker.home
    [exp_dir] = (home / SESSIONS_DIR).iterdir()
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", exp_dir.name), exp_dir.name
    assert all(p.resolve().is_relative_to(home.resolve()) for p in store_files(home))
    assert sorted(p.name for p in home.parent.iterdir()) == [".mlops_nb"]
    df = mnb.runs(name, home=home)
    assert list(df["metrics.acc"]) == [0.75]
    code, out, _ = cli(capsys, "--home", str(home), "runs", "--experiment", name)
    assert code == 0 and "\x00" not in out and "\\x00" in out


# -- the user's own failures -------------------------------------------------------------------
def test_missing_data_file_is_recorded_as_an_error_and_the_store_is_fine(tracked):
    tracked.run("import pandas as pd")
    result = tracked.run("df = pd.read_csv('missing.csv')", check=False)
    assert isinstance(result.error_in_exec, FileNotFoundError)
    tracked.run("acc = 0.5")
    tracked.flush()
    reader = StoreReader(tracked.tracker.home)
    log = reader.session_log(tracked.tracker.session)
    [failed] = [cr for cr in log if cr.status == "error"]
    assert failed.error["type"] == "FileNotFoundError"
    assert "missing.csv" in failed.error["message"]
    assert failed.files_read == ["missing.csv"]
    assert "file:missing.csv" not in failed.data
    assert not any("not a file" in w for w in failed.warnings)
    assert [cr.status for cr in log].count("ok") == len(log) - 1
    assert reader.problems == []
    df = mnb.runs(home=tracked.tracker.home)
    assert list(df["metrics.acc"]) == [0.5] and df.attrs["problems"] == []


# -- loading the extension again ---------------------------------------------------------------
def _ours(ip: Any) -> dict[str, int]:
    from mlops_nb.capture.recorder import Tracker, _ParseHook

    counts = {
        name: sum(isinstance(getattr(cb, "__self__", None), Tracker) for cb in cbs)
        for name, cbs in ip.events.callbacks.items()
    }
    hooks, parse = 0, ip.compile.__dict__.get("ast_parse")
    while isinstance(parse, _ParseHook):
        hooks += 1
        parse = parse.original
    counts["ast"] = hooks
    return {k: v for k, v in counts.items() if v}


def test_reload_ext_and_track_on_twice_register_once(shell):
    ip = shell.ip
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --experiment reload")
    tracker, session = shell.tracker, shell.tracker.session
    expected = {"pre_run_cell": 1, "post_run_cell": 1, "post_execute": 1, "ast": 1}
    assert _ours(ip) == expected
    shell.run("a = 1")
    for _ in range(3):
        shell.run("%reload_ext mlops_nb")
        assert _ours(ip) == expected
    shell.run("%track on")
    shell.run("%track on --experiment reload")
    shell.run("%load_ext mlops_nb")
    shell.run("%unload_ext mlops_nb")
    assert _ours(ip) == {}
    shell.run("%load_ext mlops_nb")
    assert _ours(ip) == expected
    assert shell.tracker is tracker and tracker.session == session
    shell.run("b = a + 1")
    shell.run("acc = b / 10")
    shell.flush()
    log = StoreReader(tracker.home).session_log(session)
    counts = [cr.execution_count for cr in log]
    assert len(counts) == len(set(counts)), "a cell was recorded twice"
    recorded = {cr.execution_count: cr for cr in log}
    # The three user cells, each once, none back-filled, all in the one session.
    user_cells = [cr for cr in log if cr.defs]
    assert [cr.defs for cr in user_cells] == [["a"], ["b"], ["acc"]]
    assert all(not cr.backfilled for cr in user_cells)
    assert {cr.session for cr in recorded.values()} == {session}
    df = mnb.runs(home=tracker.home)
    assert list(df["metrics.acc"]) == [0.2]


# -- bad run ids and no store ------------------------------------------------------------------
@pytest.fixture
def prefixed_store(tmp_path: Path) -> Path:
    home = tmp_path / ".mlops_nb"
    write_session(home, "s", [
        make_run("abc1" + "0" * 28, "s", 0),
        make_run("abc2" + "0" * 28, "s", 1),
        make_run("def" + "1" * 29, "s", 2),
    ])
    return home


@pytest.mark.parametrize(
    ("run_id", "message"),
    [
        ("abc", "matches 2 runs"),
        ("ABC", "matches 2 runs"),
        ("fff", "no run id starts with"),
        ("0123456789abcdef0123456789abcdef", "no run id starts with"),
        ("xyz!", "not a run id"),
        ("../../etc", "not a run id"),
        ("", "not a run id"),
    ],
)
def test_bad_run_ids_exit_2_with_a_clear_message(prefixed_store, capsys, run_id, message):
    for fmt in ("text", "json"):
        code, out, err = cli(capsys, "--home", str(prefixed_store), "show", run_id,
                             "--format", fmt)
        assert code == 2
        assert out == ""
        assert err.startswith("mlops-nb: ") and message in err
        assert "Traceback" not in err


def test_unique_prefix_resolves(prefixed_store, capsys):
    code, out, _ = cli(capsys, "--home", str(prefixed_store), "show", "abc2", "--format", "json")
    assert code == 0 and json.loads(out)["id"] == "abc2" + "0" * 28
    code, out, _ = cli(capsys, "--home", str(prefixed_store), "show", "D")
    assert code == 0 and "def1111" in out


def test_no_store_found_exits_2(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty" / "project"
    empty.mkdir(parents=True)
    monkeypatch.chdir(empty)
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    if any((p / ".mlops_nb").is_dir() for p in empty.parents):
        pytest.skip("a .mlops_nb/ exists above the temporary folder")
    for argv in (["runs"], ["runs", "--format", "json"], ["show", "abc"]):
        code, out, err = cli(capsys, *argv)
        assert code == 2, argv
        assert out == ""
        assert ".mlops_nb" in err and "MLOPS_NB_HOME" in err

    # An explicit --home or MLOPS_NB_HOME that does not exist is no store either.
    missing = tmp_path / "typo" / ".mlops_nb"
    code, out, err = cli(capsys, "--home", str(missing), "runs")
    assert code == 2 and str(missing) in err and out == ""
    monkeypatch.setenv("MLOPS_NB_HOME", str(missing))
    code, out, err = cli(capsys, "show", "abc")
    assert code == 2 and str(missing) in err
    assert not missing.exists(), "reading never creates a store"


def test_empty_store_lists_no_runs_and_exits_0(tmp_path, monkeypatch, capsys):
    (tmp_path / ".mlops_nb").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    code, out, _ = cli(capsys, "runs")
    assert code == 0 and "no runs yet" in out
    code, out, _ = cli(capsys, "runs", "--format", "json")
    assert code == 0 and json.loads(out) == []
    code, _, err = cli(capsys, "show", "abc")
    assert code == 2 and "no run id" in err


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
    km, kc = _start_kernel(tmp_path, env)
    try:
        ids = [kc.execute("%load_ext mlops_nb"), kc.execute("%track on --experiment bye")]
        ids += [kc.execute(f"step = {i}\nacc = step / 10") for i in range(5)]
        replies = _replies(kc, ids, 60)
        assert all(r["status"] == "ok" for r in replies.values())
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    df = mnb.runs(home=tmp_path / ".mlops_nb")
    assert sorted(df["params.step"]) == [0, 1, 2, 3, 4]
