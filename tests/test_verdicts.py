"""Verdict files: one per run, atomic, unreadable ones skipped, run ids validated."""

from __future__ import annotations

import pytest

from mlops_nb.store.verdicts import VERDICTS_DIR, load_verdicts, save_verdict


def test_save_and_load(tmp_path):
    rid = "ab" * 16
    path = save_verdict(tmp_path, rid, {"level": "L2", "ok": True, "duration_s": 1.5})
    assert path == tmp_path / VERDICTS_DIR / f"{rid}.json"
    save_verdict(tmp_path, "cd" * 16, {"level": None, "ok": False})
    got = load_verdicts(tmp_path)
    assert got[rid] == {"level": "L2", "ok": True, "duration_s": 1.5, "run_id": rid}
    assert got["cd" * 16]["level"] is None
    save_verdict(tmp_path, rid, {"level": "L3", "ok": True})
    assert load_verdicts(tmp_path)[rid]["level"] == "L3"


def test_bad_files_are_skipped_and_bad_ids_refused(tmp_path):
    assert load_verdicts(tmp_path) == {}
    folder = tmp_path / VERDICTS_DIR
    folder.mkdir()
    (folder / f"{'ef' * 16}.json").write_text("{not json")
    (folder / "notes.txt").write_text("x")
    (folder / f"{'01' * 16}.json").write_text("[1, 2]")
    assert load_verdicts(tmp_path) == {}
    for bad in ("../x", "ABC", "", "a" * 65, "ab/cd"):
        with pytest.raises(ValueError):
            save_verdict(tmp_path, bad, {})
