"""The reliability battery's harness: build stores, damage them, kill writers, drive kernels.

Every scenario file in this folder imports from here (and gets the fixtures of `conftest.py`),
so a new scenario (hostile objects, secrets, ...) is one more `test_*.py` file: write runs with
`write_session`, check files with `assert_every_store_file_parses`, run a real kernel with
`start_kernel`/`replies`, fill a disk with the `small_disk` fixture. `report.py` reuses the same
pieces to print the figures the README publishes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_nb.cli import main
from mlops_nb.records import CellRun
from mlops_nb.store.blobs import PACKS_DIR, blob_hash, iter_pack
from mlops_nb.store.layout import INDEX_DIR, SESSIONS_DIR
from mlops_nb.store.reader import StoreReader
from mlops_nb.store.storage import TEMP_SUFFIX
from mlops_nb.store.writer import SessionWriter

CONSOLE_SCRIPT = Path(sys.executable).parent / "mlops-nb"


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
    """Sessions are whole JSON and index summaries whole msgpack; loose blobs hash to their own name; every whole
    entry of a blob pack hashes to its digest (a torn tail is allowed). Returns the count."""
    checked = 0
    for p in store_files(home):
        if is_temp(p):
            continue  # a killed writer's unfinished temp file: never read, cleaned on open
        rel = p.relative_to(home).parts
        if rel[0] == SESSIONS_DIR:
            doc = json.loads(p.read_bytes())
            assert isinstance(doc, dict), p
        elif rel[0] == INDEX_DIR:  # msgpack summaries (store/index.py)
            import msgspec

            doc = msgspec.msgpack.decode(p.read_bytes())
            assert isinstance(doc, dict) and doc["n"] >= 0, p
        elif rel[0] == "blobs" and rel[1] == PACKS_DIR:
            raw = p.read_bytes()
            for digest, offset, length in iter_pack(p):
                assert blob_hash(raw[offset:offset + length]) == digest, (p, offset)
        elif rel[0] == "blobs":
            assert blob_hash(p.read_bytes()) == p.name, p
        else:
            raise AssertionError(f"unexpected file in the store: {p}")
        checked += 1
    return checked


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



def start_kernel(cwd: Path, env: dict[str, str]) -> tuple[Any, Any]:
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(cwd), env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc



def replies(kc: Any, msg_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
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



def last_cell_run(shell: Any) -> CellRun:
    shell.flush()
    return max(StoreReader(shell.tracker.home).iter_cell_runs(), key=lambda cr: cr.seq)

