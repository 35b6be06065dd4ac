from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_nb.errors import StoreNotFound
from mlops_nb.records import CellRun
from mlops_nb.store.columnar import encode_column
from mlops_nb.store.index import read_summary
from mlops_nb.store.layout import experiment_dirname, index_path_for
from mlops_nb.store.location import find_home, home_for_writing
from mlops_nb.store.reader import StoreReader
from mlops_nb.store.storage import atomic_write_bytes, remove_stray_temps
from mlops_nb.store.writer import SessionWriter


def make_run(i: int, *, session: str = "s1", experiment: str = "exp", metric: bool = True
             ) -> CellRun:
    return CellRun(
        id=f"{i:032x}", session=session, experiment=experiment, seq=i, started_at=1_700_000_000 + i,
        params={"lr": 0.1 * i, "depth": i % 3}, metrics={"f1": i / 100} if metric else {},
    )


def test_writer_rolls_over_segments_and_reader_merges(tmp_path: Path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1", segment_size=10)
    for i in range(35):
        w.append(make_run(i, metric=i % 2 == 0))
    assert w.flush()
    w.close()
    seg_dir = home / "sessions" / "exp"
    names = sorted(p.name for p in seg_dir.iterdir())
    assert names == ["s1.0000.json", "s1.0001.json", "s1.0002.json", "s1.0003.json"]
    reader = StoreReader(home)
    log = reader.session_log("s1")
    assert [cr.seq for cr in log] == list(range(35))
    cols = reader.run_columns()
    assert cols.n == 18
    assert sorted(cols.cols["id"]) == sorted(f"{i:032x}" for i in range(0, 35, 2))


def test_each_segment_is_plain_tinydb_json_with_the_session_doc(tmp_path: Path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1")
    w.update_session(notebook="nb.ipynb", environment=lambda: {"python": "3.x"})
    w.append(make_run(0))
    w.close()
    doc = json.loads((home / "sessions" / "exp" / "s1.0000.json").read_text())
    assert set(doc) == {"session", "cell_runs"}
    (session_doc,) = doc["session"].values()
    assert session_doc["notebook"] == "nb.ipynb"
    assert session_doc["environment"] == {"python": "3.x"}
    (run_doc,) = doc["cell_runs"].values()
    assert run_doc["schema"] == 1 and run_doc["metrics"] == {"f1": 0.0}


def test_segments_stay_tinydb_files_and_a_value_json_cannot_hold_loses_only_itself(
        tmp_path: Path):
    """The writer adds each record to its segment as encoded JSON, bypassing TinyDB's insert:
    the file must still be what TinyDB writes (ids 1..n across several writes, readable by
    TinyDB itself), and a record with a value JSON has no text for (an int of 5,000 digits)
    is stored with that value as text and a warning, without costing the records around it."""
    from tinydb import TinyDB

    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1")
    bad = make_run(1)
    bad.params["huge"] = 10**5000
    bad.metric_steps = {"f1": [1, 10**5000]}
    for run in (make_run(0), bad, make_run(2)):
        w.append(run)
        assert w.flush()
    w.append(make_run(3))
    w.close()
    path = home / "sessions" / "exp" / "s1.0000.json"
    with TinyDB(path) as db:
        docs = db.table("cell_runs").all()
        assert [d.doc_id for d in docs] == [1, 2, 3, 4]
        assert [d["seq"] for d in docs] == [0, 1, 2, 3]
        assert len(db.table("session").all()) == 1
    stored = docs[1]
    assert stored["params"]["huge"] == "<int of 16610 bits, too large to store>"
    assert stored["params"]["lr"] == 0.1 and stored["metrics"] == {"f1": 0.01}
    assert stored["metric_steps"] == {"f1": [1, "<int of 16610 bits, too large to store>"]}
    assert sorted(x for x in stored["warnings"] if "not storable" in x) == [
        "metric_steps.f1[1]: not storable as JSON, stored as text",
        "params.huge: not storable as JSON, stored as text"]
    assert docs[2]["params"] == {"lr": 0.2, "depth": 2} and not docs[2]["warnings"]
    log = StoreReader(home).session_log("s1")
    assert [cr.seq for cr in log] == [0, 1, 2, 3]


def test_a_reader_summarising_a_segment_never_leaves_its_older_index_over_the_writers(
        tmp_path: Path, monkeypatch):
    """A reader that finds a segment's index stale summarises the segment and writes the
    index. If the session's writer rewrites the segment and its index between the reader's
    check that the segment is unchanged and its write, the reader's older summary must not
    end up on disk over the writer's newer one (it would read as stale: the next reader would
    summarise the segment again, and `mlops-nb` commands given bad input changed the store)."""
    import os
    import threading
    import time

    import mlops_nb.store.index as index_mod
    from mlops_nb.store.index import segment_stamp

    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1", flush_interval=0.0, summary_interval=0.0)
    w.append(make_run(0))
    w.append(make_run(1))
    assert w.flush()
    segment = home / "sessions" / "exp" / "s1.0000.json"
    index = index_path_for(home, segment)
    index.unlink()  # stale: the next reader summarises the segment itself
    real_write = index_mod.atomic_write_bytes
    main = threading.get_ident()

    def racing_write(path, payload, **kw):
        if threading.get_ident() == main:  # the reader, after its check the segment is current
            before, seen = segment_stamp(os.stat(segment)), index.stat().st_mtime_ns \
                if index.exists() else None
            w.append(make_run(2))  # the writer rewrites the segment, then its index
            deadline = time.monotonic() + 5
            while segment_stamp(os.stat(segment)) == before and time.monotonic() < deadline:
                time.sleep(0.001)
            deadline = time.monotonic() + 0.5  # ... and its index, unless a lock holds it off
            while (index.stat().st_mtime_ns if index.exists() else None) == seen \
                    and time.monotonic() < deadline:
                time.sleep(0.001)
        real_write(path, payload, **kw)

    monkeypatch.setattr(index_mod, "atomic_write_bytes", racing_write)
    assert StoreReader(home).run_columns().n == 2  # summarised as read: two runs
    assert w.flush()
    w.close()
    found = read_summary(index, os.stat(segment))
    assert found is not None, "the index on disk is stale"
    assert found.n == 3


def test_the_index_is_written_where_flock_is_refused_and_not_while_another_holds_it(
        tmp_path: Path, monkeypatch):
    import errno
    import fcntl

    import mlops_nb.store.index as index_mod
    from mlops_nb.store.index import segment_stamp, write_read_summary, write_summary

    segment = tmp_path / "seg.json"
    segment.write_text("{}")
    index = tmp_path / "index" / "seg.cols"  # its folder is made with the lock
    real_flock = fcntl.flock

    def no_flock(fd, op):
        if op & fcntl.LOCK_EX:
            raise OSError(errno.ENOLCK, "No locks available")
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", no_flock)
    write_summary(index, segment, [], [])
    assert read_summary(index, os.stat(segment)) is not None
    monkeypatch.setattr(fcntl, "flock", real_flock)
    index.unlink()
    monkeypatch.setattr(index_mod, "_LOCK_WAIT_S", 0.05)
    with index_mod._index_lock(index):  # held by another writer of the index
        fd = os.open(index.parent, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # flock excludes across descriptors
                real_flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        with pytest.raises(TimeoutError):
            write_summary(index, segment, [], [])
    assert not index.exists()
    current = segment_stamp(os.stat(segment))
    assert write_read_summary(index, segment, [0, 0, 0, 0], b"x") is False  # not that version
    assert not index.exists()
    assert list(index.parent.iterdir()) == []  # no lock file: the folder is what is locked
    assert write_read_summary(index, segment, current, b"x") and index.read_bytes() == b"x"


def test_failing_session_fact_does_not_lose_cell_runs(tmp_path: Path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1")

    def boom():
        raise RuntimeError("git exploded")

    w.update_session(environment=boom)
    w.append(make_run(0))
    w.close()
    reader = StoreReader(home)
    assert len(reader.session_log("s1")) == 1
    assert "git exploded" in reader.session_info("s1")["environment"]["error"]


def test_index_is_used_when_current_and_ignored_when_stale(tmp_path: Path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1")
    for i in range(5):
        w.append(make_run(i))
    w.close()
    seg = home / "sessions" / "exp" / "s1.0000.json"
    idx = index_path_for(home, seg)
    assert read_summary(idx, os.stat(seg)) is not None
    # Make the index lie; while its stamp matches the segment, readers trust it...
    doc = msgspec.msgpack.decode(idx.read_bytes())
    for pair in doc["cols"]:
        if pair[0] == b"metrics.f1":
            pair[1] = encode_column([9.0] * 5)
    idx.write_bytes(msgspec.msgpack.encode(doc))
    assert StoreReader(home).run_columns().cols["metrics.f1"] == [9.0] * 5
    # ...once the segment changes, the stamp no longer matches and the segment itself is read.
    os.utime(seg, ns=(1, 1))
    assert StoreReader(home).run_columns().cols["metrics.f1"] == [0.0, 0.01, 0.02, 0.03, 0.04]
    # Deleting the index loses nothing.
    idx.unlink()
    assert StoreReader(home).run_columns().n == 5


def test_experiment_filter_and_hostile_experiment_names(tmp_path: Path):
    home = tmp_path / ".mlops_nb"
    hostile = "../../etc/passwd\x00<b>"
    w = SessionWriter(home, "s1")
    w.append(make_run(0, experiment="a"))
    w.append(make_run(1, experiment=hostile))
    w.close()
    sessions = home / "sessions"
    dirs = sorted(p.name for p in sessions.iterdir())
    assert all(p.resolve().parent == sessions.resolve() for p in sessions.iterdir())
    assert experiment_dirname(hostile) in dirs
    reader = StoreReader(home)
    assert reader.run_columns("a").cols["id"] == [f"{0:032x}"]
    assert reader.run_columns(hostile).cols["experiment"] == [hostile]


def test_experiment_dirnames_are_unique_and_safe():
    names = ["a/b", "a_b", "a b", ".", "..", "", "é", "x" * 300]
    dirs = [experiment_dirname(n) for n in names]
    assert len(set(dirs)) == len(dirs)
    for d in dirs:
        assert d not in (".", "..", "") and "/" not in d and len(d) <= 80


def test_two_writers_same_session_id_do_not_overwrite_each_other(tmp_path: Path):
    """A reloaded extension keeps its session id; a new writer must not clobber a segment."""
    home = tmp_path / ".mlops_nb"
    w1 = SessionWriter(home, "s1")
    w1.append(make_run(0))
    w1.close()
    w2 = SessionWriter(home, "s1")
    w2.append(make_run(1))
    w2.close()
    assert [cr.seq for cr in StoreReader(home).session_log("s1")] == [0, 1]


def test_blobs_are_content_addressed_and_deduplicated(tmp_path: Path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1")
    from mlops_nb.store.blobs import blob_hash

    payload = b"print('hello')"
    digest = blob_hash(payload)
    for i in range(3):
        cr = make_run(i)
        cr.code = digest
        w.append(cr, {digest: payload})
    w.close()
    reader = StoreReader(home)
    assert reader.blobs.get_text(digest) == "print('hello')"
    assert len(list((home / "blobs").rglob("*"))) == 2  # one folder, one file


def test_resolve_by_prefix(tmp_path: Path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1")
    a = make_run(0)
    a.id = "abc1" + "0" * 28
    b = make_run(1)
    b.id = "abc2" + "0" * 28
    w.append(a)
    w.append(b)
    w.close()
    reader = StoreReader(home)
    assert reader.resolve("abc1").id == a.id
    from mlops_nb.errors import AmbiguousRunId, RunNotFound

    with pytest.raises(AmbiguousRunId):
        reader.resolve("abc")
    with pytest.raises(RunNotFound):
        reader.resolve("fff")


def test_atomic_write_replaces_and_stray_temps_are_cleaned(tmp_path: Path):
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    stray = tmp_path / ".f.json.abc.tmp"
    stray.write_bytes(b"half")
    os.utime(stray, (0, 0))
    young = tmp_path / ".f.json.def.tmp"
    young.write_bytes(b"live writer")
    assert remove_stray_temps(tmp_path) == 1
    assert not stray.exists() and young.exists()


def _open_fds() -> dict[str, str]:
    """This process's open descriptors and what each names (Linux's /proc)."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[name] = os.readlink(f"/proc/self/fd/{name}")
    return out


def _record_fsyncs(monkeypatch) -> list[str]:
    """The paths fsynced from now on, in order (the syncs still happen)."""
    real_fsync = os.fsync
    synced: list[str] = []

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


_NO_PROC = not os.path.isdir("/proc/self/fd")


def test_atomic_write_that_fails_midway_keeps_the_old_file_and_leaves_no_temp_or_descriptor(
        tmp_path: Path, monkeypatch):
    """A disk that fills after part of the payload (the write goes through the descriptor in
    pieces, no file object around it): the old content stays, the temporary and its
    descriptor are gone, and a later write on free space succeeds."""
    import errno

    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"old")
    real_write = os.write
    calls = []

    def filling(fd: int, data) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:4]))  # a short write: the rest must follow
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    fds = None if _NO_PROC else set(_open_fds())
    monkeypatch.setattr(os, "write", filling)
    with pytest.raises(OSError) as err:
        atomic_write_bytes(target, b"new content, longer than one piece")
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC and calls[1] == len(b"new content, longer than one piece") - 4
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]
    if fds is not None:
        assert set(_open_fds()) <= fds
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


@pytest.mark.skipif(_NO_PROC, reason="descriptors are named through /proc")
def test_store_writes_are_synced_before_they_count_and_derived_ones_are_not(
        tmp_path: Path, monkeypatch):
    """A segment write syncs the file before the rename and the folder after it, a blob pack
    append syncs the pack; the run index, derived and rebuilt by readers, syncs nothing."""
    from mlops_nb.store.blobs import BlobStore

    synced = _record_fsyncs(monkeypatch)
    atomic_write_bytes(tmp_path / "segment.json", b"{}")
    assert len(synced) == 2
    assert Path(synced[0]).name.startswith(".segment.json.") and synced[1] == str(tmp_path)
    synced.clear()
    atomic_write_bytes(tmp_path / "index.json", b"{}", durable=False)
    assert synced == []
    blobs = BlobStore(tmp_path / "blobs", pack_prefix="s1")
    blobs.put_many({"a" * 32: b"code"})  # a new pack: its folder synced once
    synced.clear()
    blobs.put_many({"b" * 32: b"more code"})
    assert len(synced) == 1 and Path(synced[0]).name.startswith("s1.")
    blobs.close_pack()


@pytest.mark.skipif(_NO_PROC, reason="descriptors are named through /proc")
def test_segment_storage_syncs_its_folder_through_one_descriptor_and_follows_a_new_folder(
        tmp_path: Path, monkeypatch):
    """The writer's segment storage keeps its folder open to make each rename durable (one
    fsync per write, no open and close around it); a folder removed and made again under it
    is the one synced next; closing the storage lets the descriptor go."""
    from mlops_nb.store.storage import AtomicJSONStorage

    folder = tmp_path / "segments"
    target = folder / "seg.json"
    before = _open_fds()
    storage = AtomicJSONStorage(target)
    synced = _record_fsyncs(monkeypatch)
    for n in range(3):
        storage.write({"cell_runs": {str(n + 1): {"n": n}}})
    held = {k: v for k, v in _open_fds().items() if k not in before}
    assert list(held.values()) == [str(folder)]
    assert synced.count(str(folder)) == 3  # and the file itself each time
    shutil.rmtree(folder)
    storage.write({"cell_runs": {"1": {"n": 9}}})
    assert storage.read() == {"cell_runs": {"1": {"n": 9}}}
    assert synced[-1] == str(folder)  # the folder made again, not the removed one
    storage.close()
    monkeypatch.undo()
    assert set(_open_fds()) <= set(before)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("mask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_atomic_write_gives_the_mode_the_umask_gives_and_makes_missing_folders(
        tmp_path: Path, mask: int, mode: int):
    """A store shared with a group (umask 002) gets group-writable files, as any file the user
    creates; a folder removed since the last write is made again; no temporary is left."""
    old = os.umask(mask)
    try:
        target = tmp_path / "new" / "deeper" / "f.json"
        atomic_write_bytes(target, b"one")
        assert target.read_bytes() == b"one"
        assert target.stat().st_mode & 0o777 == mode
        os.umask(0o027)  # changed since: the umask of the moment, not one remembered
        atomic_write_bytes(target, b"two")
        assert target.read_bytes() == b"two" and target.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.json"]


def test_find_home_walks_up_and_env_overrides(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    (tmp_path / ".mlops_nb").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_home(deep) == (tmp_path / ".mlops_nb").resolve()
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("MLOPS_NB_HOME", str(other))
    assert find_home(deep) == other.resolve()
    monkeypatch.delenv("MLOPS_NB_HOME")
    lonely = tmp_path.parent / (tmp_path.name + "-lonely")
    lonely.mkdir()
    with pytest.raises(StoreNotFound, match="MLOPS_NB_HOME"):
        find_home(lonely)
    assert home_for_writing(lonely) == lonely.resolve() / ".mlops_nb"


def test_writer_cleans_old_temp_files_of_killed_writers(tmp_path: Path):
    home = tmp_path / ".mlops_nb"
    stale = [
        home / "blobs" / "ab" / ".abcd.x.tmp",
        home / "sessions" / "exp" / ".s0.0000.json.y.tmp",
        home / "index" / "exp" / ".s0.0000.json.z.tmp",
    ]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half")
        os.utime(p, (0, 0))
    w = SessionWriter(home, "s1")
    w.append(make_run(0))
    w.close()
    assert [p.exists() for p in stale] == [False, False, False]


# -- blob packs (issue 8, item 18) -------------------------------------------------------------
def _runs_with_code(n: int, session: str = "s1") -> list[tuple[CellRun, dict[str, bytes]]]:
    from mlops_nb.store.blobs import blob_hash

    out = []
    for i in range(n):
        cr = make_run(i, session=session)
        code = f"lr = {i} / 100  # cell {i}\n".encode()
        cr.code = blob_hash(code)
        out.append((cr, {cr.code: code}))
    return out


def test_small_blobs_are_packed_not_one_file_each(tmp_path: Path):
    from mlops_nb.store.blobs import PACKS_DIR

    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1")
    runs = _runs_with_code(500)
    for cr, blobs in runs:
        w.append(cr, blobs)
    w.close()
    blob_files = [p for p in (home / "blobs").rglob("*") if p.is_file()]
    assert len(blob_files) == 1 and blob_files[0].parent.name == PACKS_DIR
    reader = StoreReader(home)
    assert [reader.blobs.get_text(cr.code) for cr in reader.session_log("s1")] == [
        b[cr.code].decode() for cr, b in runs]
    assert reader.blobs.problems == []


def test_old_loose_blobs_and_packs_are_both_read_and_deduplicated(tmp_path: Path):
    from mlops_nb.store.blobs import BlobStore, blob_hash

    home = tmp_path / ".mlops_nb"
    loose = b"written by an older mlops-nb"
    old = BlobStore(home / "blobs")  # no pack prefix: the old one-file-per-blob layout
    digest = old.put(loose)
    assert (home / "blobs" / digest[:2] / digest).read_bytes() == loose
    w1 = SessionWriter(home, "s1")
    cr, blobs = _runs_with_code(1)[0]
    w1.append(cr, blobs)
    w1.close()
    w2 = SessionWriter(home, "s2")  # the same code in another session is not stored again
    cr2, blobs2 = _runs_with_code(1, session="s2")[0]
    w2.append(cr2, blobs2)
    w2.close()
    packs = list((home / "blobs" / "packs").iterdir())
    assert [p.stat().st_size for p in packs] == [len(blobs[cr.code]) + 44]  # one entry
    reader = StoreReader(home)
    assert reader.blobs.get(digest) == loose
    assert reader.blobs.get_text(cr.code) == blobs[cr.code].decode()
    assert blob_hash(reader.blobs.get(cr2.code)) == cr2.code


def test_a_torn_pack_tail_is_ignored_and_a_damaged_entry_is_named(tmp_path: Path):
    from mlops_nb.store.blobs import PACKS_DIR, iter_pack

    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1")
    runs = _runs_with_code(3)
    for cr, blobs in runs:
        w.append(cr, blobs)
    w.close()
    [pack] = (home / "blobs" / PACKS_DIR).iterdir()
    entries = list(iter_pack(pack))
    assert len(entries) == 3
    raw = bytearray(pack.read_bytes())
    raw += b"MNB1" + b"f" * 32 + (10**6).to_bytes(8, "little") + b"half"  # a killed append
    _, offset, _ = entries[1]
    raw[offset] ^= 0xFF  # one damaged payload
    pack.write_bytes(bytes(raw))
    assert len(list(iter_pack(pack))) == 3
    reader = StoreReader(home)
    texts = [reader.blobs.get_text(cr.code) for cr, _ in runs]
    assert texts[0] is not None and texts[1] is None and texts[2] is not None
    [problem] = reader.blobs.problems
    assert runs[1][0].code[:12] in problem and "damaged" in problem


def test_the_run_index_is_refreshed_at_most_once_an_interval_and_at_once_on_flush(
        tmp_path: Path):
    """Re-encoding a segment's index after every write made the writer's CPU grow with the
    segment; while cells keep coming it is refreshed once per `summary_interval`, and a
    reader meanwhile reads the segment itself: nothing is missing."""
    import time

    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1", flush_interval=0.01, summary_interval=3600)
    seg = home / "sessions" / "exp" / "s1.0000.json"
    idx = index_path_for(home, seg)
    w.append(make_run(0))
    assert w.flush()  # the first write also writes the index: none was written yet
    assert read_summary(idx, os.stat(seg)) is not None
    for i in range(1, 4):
        w.append(make_run(i))
    deadline = time.monotonic() + 10
    while w.waiting and time.monotonic() < deadline:  # durable without a flush
        time.sleep(0.01)
    assert w.waiting == 0
    assert read_summary(idx, os.stat(seg)) is None  # stale: not refreshed within the hour
    assert StoreReader(home).run_columns().n == 4  # the reader reads the segment
    assert w.flush()
    summary = read_summary(idx, os.stat(seg))
    assert summary is not None and summary.n == 4
    w.close()

    # An idle writer refreshes a stale index once the interval has passed.
    w = SessionWriter(home, "s2", flush_interval=0.01, summary_interval=0.3)
    seg2 = home / "sessions" / "exp" / "s2.0000.json"
    for i in range(3):
        w.append(make_run(i, session="s2"))
        time.sleep(0.05)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        summary = read_summary(index_path_for(home, seg2), os.stat(seg2)) \
            if seg2.exists() else None
        if summary is not None and summary.n == 3:
            break
        time.sleep(0.05)
    assert summary is not None and summary.n == 3
    w.close()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(tables=st.dictionaries(st.sampled_from(["cell_runs", "session", "_default"]),
                              st.dictionaries(st.integers(1, 50).map(str),
                                              st.dictionaries(st.text(), _json, max_size=5),
                                              max_size=6), max_size=3),
       replaced=st.sets(st.integers(1, 50).map(str)))
def test_segment_writes_are_the_bytes_json_dumps_gives_with_reused_documents(tables, replaced):
    """The storage keeps each written document as its JSON in the very tables it was given
    (TinyDB's cache) and reuses it: the file stays exactly what encoding everything anew
    gives, whichever documents TinyDB replaced by new objects."""
    import copy

    from mlops_nb.store.storage import AtomicJSONStorage, Written

    def expected(data):
        return json.dumps(data, separators=(",", ":"), default=repr).encode()

    storage = AtomicJSONStorage("unused.json")
    data = copy.deepcopy(tables)
    assert storage._encode(data) == expected(tables)
    assert all(type(doc) is Written for docs in data.values() for doc in docs.values())
    # TinyDB inserts a document and replaces others by new objects; the rest are reused.
    grown = {name: {k: ({**json.loads(v), "changed": k} if k in replaced else v)
                    for k, v in docs.items()} for name, docs in data.items()}
    grown.setdefault("cell_runs", {})["99"] = {"new": [1, 2.5, "x"]}
    plain = {name: {k: ({**v, "changed": k} if k in replaced else v)
                    for k, v in docs.items()} for name, docs in tables.items()}
    plain.setdefault("cell_runs", {})["99"] = {"new": [1, 2.5, "x"]}
    assert storage._encode(grown) == expected(plain)
    assert storage._encode(grown) == expected(plain)
    assert all(type(doc) is Written for docs in grown.values() for doc in docs.values())
    odd = {"cell_runs": {1: {"a": 1}, "2": {"b": None}}}  # a key json.dumps turns into text
    assert storage._encode(odd) == expected(odd)
    # an id that is not text, beside documents already written: still the same bytes
    assert storage._encode({**grown, "x": {1: {"a": 1}}}) == \
        expected({**plain, "x": {1: {"a": 1}}})
