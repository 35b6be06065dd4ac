"""A full disk and a read-only store: runs wait in memory, are written once space returns, and
the user is told (once, at the next cell), `flush()` says False and `%track status` says why."""

from __future__ import annotations

import os

import pytest

import mlops_nb as mnb
from mlops_nb.records import CellRun
from mlops_nb.store.blobs import SMALL_BLOB, blob_hash
from mlops_nb.store.reader import StoreReader
from mlops_nb.store.writer import SessionWriter

from .harness import assert_every_store_file_parses, hexid, make_run


def _with_code(cr: CellRun, text: bytes) -> tuple[CellRun, dict[str, bytes]]:
    cr.code = blob_hash(text)
    return cr, {cr.code: text}


def test_runs_written_while_the_disk_is_full_are_kept_and_written_when_space_returns(small_disk):
    home = small_disk.home
    w = SessionWriter(home, "full", retry_interval=0.1)
    try:
        for i in range(30):
            w.append(*_with_code(make_run(hexid("a", i), "full", i), f"x = {i}\n".encode()))
        assert w.flush(30) and w.error is None
        small_disk.fill()
        for i in range(30, 70):
            w.append(*_with_code(make_run(hexid("a", i), "full", i), f"x = {i}\n".encode()))
        assert w.flush(30) is False, "flush must say the runs are not on disk"
        assert isinstance(w.error, OSError)
        assert w.waiting == 40 and w.written == 30 and w.lost == 0
        # What is on disk is intact: the 30 earlier runs, no half-written file.
        assert assert_every_store_file_parses(home) > 0
        listed = mnb.runs(home=home)
        assert len(listed) == 30 and listed.attrs["problems"] == []
        small_disk.free()
        for i in range(70, 80):
            w.append(*_with_code(make_run(hexid("a", i), "full", i), f"x = {i}\n".encode()))
        assert w.flush(30), w.error
        assert w.error is None and w.waiting == 0 and w.written == 80
    finally:
        w.close()
    reader = StoreReader(home)
    log = reader.session_log("full")
    assert [cr.seq for cr in log] == list(range(80))
    assert all(reader.blobs.get_text(cr.code) == f"x = {cr.seq}\n" for cr in log)
    assert reader.problems == [] and reader.blobs.problems == []


def test_retries_on_their_own_without_a_flush(small_disk):
    w = SessionWriter(small_disk.home, "auto", retry_interval=0.05)
    try:
        small_disk.fill()
        for i in range(5):
            w.append(make_run(hexid("b", i), "auto", i))
        assert not w.flush(10)
        small_disk.free()
        import time

        deadline = time.monotonic() + 20
        while w.waiting and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w.waiting == 0 and w.written == 5 and w.error is None
        assert w.last_error is not None  # kept for `%track status`
    finally:
        w.close()


def test_pending_runs_are_bounded_oldest_kept(small_disk):
    w = SessionWriter(small_disk.home, "bound", max_pending=10, retry_interval=0.05)
    try:
        small_disk.fill()
        kept = [w.append(make_run(hexid("c", i), "bound", i)) for i in range(25)]
        assert kept == [True] * 10 + [False] * 15
        assert w.lost == 15 and w.waiting == 10
        assert not w.flush(10)
        notice = w.take_notice()
        assert notice and "15 cell run(s) were dropped" in notice
        small_disk.free()
        assert w.flush(30)
    finally:
        w.close()
    assert [cr.seq for cr in StoreReader(small_disk.home).session_log("bound")] == list(range(10))


def test_one_blob_that_cannot_be_written_does_not_hold_back_the_batch(tmp_path):
    home = tmp_path / ".mlops_nb"
    big = os.urandom(SMALL_BLOB * 2)  # a figure-sized blob: written as its own file
    digest = blob_hash(big)
    (home / "blobs" / digest[:2] / digest).mkdir(parents=True)  # its path is taken: EISDIR
    w = SessionWriter(home, "blob", retry_interval=0.02)
    try:
        good = make_run(hexid("d", 0), "blob", 0)
        bad = make_run(hexid("d", 1), "blob", 1)
        bad.figures = [digest]
        later = make_run(hexid("d", 2), "blob", 2)
        w.append(*_with_code(good, b"a = 1\n"))
        w.append(bad, {digest: big})
        w.append(later)
        assert not w.flush(10)  # the figure is not on disk yet...
        assert {cr.seq for cr in StoreReader(home).session_log("blob")} == {0, 2}  # ...the rest is
        assert w.flush(10) or w.flush(10)  # after a few tries the run is kept without the figure
    finally:
        w.close()
    log = StoreReader(home).session_log("blob")
    assert [cr.seq for cr in log] == [0, 1, 2]
    assert log[1].figures == [] and any("could not be written" in x for x in log[1].warnings)


def _start(shell) -> None:
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --experiment disk")
    shell.tracker.writer.retry_interval = 0.05


def test_the_user_is_told_once_and_status_keeps_the_error(shell, small_disk, capsys,
                                                          monkeypatch):
    monkeypatch.setenv("MLOPS_NB_HOME", str(small_disk.home))
    _start(shell)
    shell.run("import mlops_nb as mnb\nacc = 0.1")
    assert shell.ns["mnb"].flush(10) is True
    capsys.readouterr()
    small_disk.read_only()
    try:
        shell.run("acc = 0.2")
        assert mnb.flush(10) is False
        outputs = []
        for i in range(3):
            shell.run(f"acc = 0.3 + {i} / 100")
            outputs.append(capsys.readouterr().err)
        told = [o for o in outputs if "runs are NOT being saved" in o]
        assert len(told) == 1 and outputs[0] == told[0], outputs  # at the very next cell, once
        for _ in range(2):  # status flushes too; that must not hide the error
            shell.run("%track status")
            out = capsys.readouterr().out
            assert "write error" in out and "NOT being saved" in out
            assert "waiting to be written: 4" in out
    finally:
        small_disk.read_only(False)
    assert mnb.flush(10) is True
    shell.run("acc = 0.9")
    err = capsys.readouterr().err
    assert "writable again" in err
    shell.run("%track status")
    out = capsys.readouterr().out
    assert "last write error" in out and "waiting" not in out
    assert mnb.flush(10)
    df = mnb.runs(home=small_disk.home)
    assert sorted(df["metrics.acc"]) == pytest.approx([0.1, 0.2, 0.3, 0.31, 0.32, 0.9])
