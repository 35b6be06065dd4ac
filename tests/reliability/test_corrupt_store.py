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

import pytest

import mlops_nb as mnb
from mlops_nb.store.index import INDEX_SCHEMA
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


