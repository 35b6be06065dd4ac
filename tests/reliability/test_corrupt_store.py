"""Corrupt, truncated and hand-edited store files: one bad file or record never hides the rest.

Each test damages a real store written by the real writer and asserts what the user sees: the
runs still listed, the file and record named on stderr, the exit code.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

import mlops_nb as mnb
from mlops_nb.store.index import INDEX_SCHEMA, segment_stamp
from mlops_nb.store.layout import INDEX_DIR, SESSIONS_DIR
from mlops_nb.store.reader import StoreReader
from mlops_nb.store.writer import SessionWriter

from .harness import CONSOLE_SCRIPT, cli, hexid, make_run, write_session


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
def _summary(st: os.stat_result, n: int, cols: Any) -> bytes:
    return msgspec.msgpack.encode({"schema": INDEX_SCHEMA, "stamp": segment_stamp(st), "n": n,
                                   "cols": cols, "cells_n": n, "cells": cols, "problems": []})


def _index_files(home: Path) -> list[Path]:
    return sorted((home / INDEX_DIR).rglob("*.cols"))


def test_corrupt_or_stale_index_is_ignored_and_rebuilt_from_the_session(tmp_path):
    home = tmp_path / ".mlops_nb"
    writer = SessionWriter(home, "s")
    runs = [make_run(hexid("a7", i), "s", i) for i in range(6)]
    for cr in runs[:3]:
        writer.append(cr)
    assert writer.flush()
    [index] = _index_files(home)
    stale = index.read_bytes()
    assert msgspec.msgpack.decode(stale)["n"] == 3
    for cr in runs[3:]:
        writer.append(cr)
    writer.close()
    expected = [cr.id for cr in runs]
    assert list(mnb.runs(home=home)["id"]) == expected
    current = index.read_bytes()
    assert msgspec.msgpack.decode(current)["n"] == 6

    index.write_bytes(stale)  # an index from before the last write
    assert list(mnb.runs(home=home)["id"]) == expected

    st = os.stat(next((home / SESSIONS_DIR).rglob("s.0000.json")))
    bad_docs = [
        b"\x00garbage{",
        b"",
        # Stamped as current, but its columns are broken: still never trusted blindly.
        _summary(st, 6, [[b"id", {"k": "str", "u": b"x", "n": 1, "c": b"\0\0\0\0"}]]),
        _summary(st, 6, [[b"id", {"k": "i8", "v": b"\0" * 48, "m": None}]]),
        _summary(st, 6, [[b"id", {"k": "str", "u": b"x", "n": 1, "c": b"\7\0\0\0" * 6}]]),
        _summary(st, 6, {"id": ["x"]}),
        msgspec.msgpack.encode({"schema": INDEX_SCHEMA, "stamp": segment_stamp(st),
                                "n": "six", "cols": []}),
        # a summary of the right shape, stamped as current, but not the segment's: two
        # truncated buffers
        _summary(st, 6, [[b"id", {"k": "str", "u": b"x", "n": 1, "c": b"\0\0\0\0" * 6}],
                         [b"seq", {"k": "i8", "v": b"\0" * 7, "m": None}]]),
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




# -- one bad record, named and counted; never a silent skip (issue 8, items 9 and 10) ----------
BAD_FIELDS = [
    ("started_at", "yesterday"),
    ("started_at", 1e20),
    ("seq", "3"),
    ("effective_data", {"X": 5}),
    ("effective_params", [1, 2]),
    ("code", "../../etc/passwd"),
    ("figures", [None]),
    ("rng", {"numpy": 7}),
    ("execution_count", "In[3]"),
    ("id", None),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS,
                         ids=[f"{f}={v!r}"[:30] for f, v in BAD_FIELDS])
def test_one_bad_field_skips_that_record_by_name_and_nothing_else(tmp_path, capsys, field,
                                                                  value):
    home = tmp_path / ".mlops_nb"
    good = [make_run(hexid("a1", i), "good", i) for i in range(2)]
    write_session(home, "good", good)
    mixed = [make_run(hexid("b2", i), "mixed", i) for i in range(3)]
    for cr in mixed:
        cr.effective_data = {"X": {"hash": "abc", "rows": 3}}
    [seg] = write_session(home, "mixed", mixed)
    doc = json.loads(seg.read_text())
    key = sorted(doc["cell_runs"], key=int)[1]
    doc["cell_runs"][key][field] = value
    seg.write_text(json.dumps(doc))

    df = mnb.runs(home=home)
    expected = [cr.id for cr in good] + [mixed[0].id, mixed[2].id]
    assert sorted(df["id"]) == sorted(expected)
    [problem] = df.attrs["problems"]
    assert seg.name in problem and f"#{key}" in problem and field in problem
    if field != "id":
        assert mixed[1].id in problem
    assert "move it aside" not in problem

    code, out, err = cli(capsys, "--home", str(home), "runs")
    assert code == 0 and seg.name in err and "Traceback" not in err
    assert cli(capsys, "--home", str(home), "runs", "--strict")[0] == 1
    for run_id in (good[0].id, mixed[2].id):
        code, out, err = cli(capsys, "--home", str(home), "show", run_id)
        assert code == 0 and run_id in out, err
    code, out, err = cli(capsys, "--home", str(home), "compare", "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    assert "b2" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("content", [b"null", b'{"cell_runs": []}', b"{}"],
                         ids=["null", "cell-runs-empty-list", "empty-object"])
def test_files_that_hold_nothing_are_reported_not_silently_skipped(tmp_path, content):
    home = tmp_path / ".mlops_nb"
    [seg] = write_session(home, "good", [make_run(hexid("c3", 0), "good", 0)])
    odd = seg.with_name("odd.0000.json")
    odd.write_bytes(content)
    df = mnb.runs(home=home)
    assert len(df) == 1
    assert [p for p in df.attrs["problems"] if odd.name in p]


def test_a_directory_named_like_a_segment_is_reported(tmp_path, capsys):
    home = tmp_path / ".mlops_nb"
    [seg] = write_session(home, "good", [make_run(hexid("c4", 0), "good", 0)])
    (seg.parent / "dir.0000.json").mkdir()
    df = mnb.runs(home=home)
    assert len(df) == 1 and any("dir.0000.json" in p and "not a file" in p
                                for p in df.attrs["problems"])
    code, _, err = cli(capsys, "--home", str(home), "show", hexid("c4", 0))
    assert code == 0 and "Traceback" not in err


def test_a_huge_int_in_a_file_is_read_as_text_and_the_file_is_not_called_invalid(tmp_path,
                                                                                  capsys):
    home = tmp_path / ".mlops_nb"
    runs = [make_run(hexid("d5", i), "big", i) for i in range(3)]
    [seg] = write_session(home, "big", runs)
    doc = json.loads(seg.read_text())
    key = sorted(doc["cell_runs"], key=int)[1]
    doc["cell_runs"][key]["params"]["huge"] = "@HUGE@"
    seg.write_text(json.dumps(doc).replace('"@HUGE@"', "1" + "0" * 5000))  # 10**5000 as JSON
    df = mnb.runs(home=home)
    assert list(df["id"]) == [cr.id for cr in runs] and df.attrs["problems"] == []
    assert str(df["params.huge"].iloc[1]).startswith("<int of 5001 digits")
    code, out, err = cli(capsys, "--home", str(home), "runs")
    assert code == 0 and err == "" and "move it aside" not in err
    code, out, err = cli(capsys, "--home", str(home), "show", runs[1].id, "--format", "json")
    assert code == 0 and json.loads(out)["params"]["huge"].startswith("<int of 5001 digits")


def test_damaged_blobs_are_named_and_break_no_run(tracked, capsys):
    """A code blob that is not UTF-8 and a garbage RNG blob: `show`, `runs`, `compare` and the
    export of runs that do not need them work; the damage is named, never a traceback."""
    from mlops_nb.store.blobs import PACKS_DIR, iter_pack

    tracked.run("a = 1")
    tracked.run("acc = a / 2")
    tracked.run("b = 2")
    tracked.run("f1 = b / 4")
    tracked.flush()
    home = tracked.tracker.home
    log = StoreReader(home).session_log(tracked.tracker.session)
    first = next(cr for cr in log if cr.defs == ["a"])
    run_a = next(cr for cr in log if "acc" in cr.metrics)
    run_b = next(cr for cr in log if "f1" in cr.metrics)
    damaged = {first.code, first.python}
    for pack in (home / "blobs" / PACKS_DIR).iterdir():
        raw = bytearray(pack.read_bytes())
        for digest, offset, length in iter_pack(pack):
            if digest in damaged:
                raw[offset:offset + length] = b"\xff" * length  # not UTF-8, not its hash
        pack.write_bytes(bytes(raw))

    code, out, err = cli(capsys, "--home", str(home), "runs")
    assert code == 0 and run_a.id[:8] in out and run_b.id[:8] in out
    code, out, err = cli(capsys, "--home", str(home), "show", first.id)
    assert code == 0 and "Traceback" not in err and first.code[:12] in err
    code, out, err = cli(capsys, "--home", str(home), "compare", "-o", "r.html")
    assert code == 0, err
    # An earlier cell of the session whose code is unknown could have set anything: export
    # refuses with a clear message (exit 1), naming the cell, instead of crashing.
    for run in (run_a, run_b):
        code, out, err = cli(capsys, "--home", str(home), "export", run.id, "-o", "out")
        assert code == 1 and "missing from the store" in err and "Traceback" not in err

    from mlops_nb.store.blobs import BlobStore, blob_hash

    store = BlobStore(home / "blobs")
    garbage_rng = b"\x00\x01 not json"
    digest = blob_hash(b"the real rng state")
    (home / "blobs" / digest[:2]).mkdir(parents=True, exist_ok=True)
    (home / "blobs" / digest[:2] / digest).write_bytes(garbage_rng)
    assert store.get_text(digest) is None
    assert any(digest[:12] in p and "damaged" in p for p in store.problems)
