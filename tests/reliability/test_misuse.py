"""Misuse: the extension loaded again and again, bad run ids, no store, an empty store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mlops_nb as mnb
from mlops_nb.store.reader import StoreReader

from .harness import cli, make_run, write_session


# -- loading the extension again ---------------------------------------------------------------
def _ours(ip: Any) -> dict[str, int]:
    from mlops_nb.capture.hooks import ParseHook as _ParseHook
    from mlops_nb.capture.recorder import Tracker

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

