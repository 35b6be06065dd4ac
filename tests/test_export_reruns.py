"""A cell re-run many times in a row is replayed as one loop (issue 8: export of a long chain
is paid per distinct cell, not per re-run), and only where a loop means the same."""

from __future__ import annotations

import json

from test_export_patterns import runs_of, verify


def test_a_long_chain_of_one_cell_is_one_loop_and_reproduces(tracked):
    tracked.run("x = 0")
    for _ in range(7):
        tracked.run("x = x + 1  # step")
    tracked.run("score = float(x * 2)")
    (run,) = runs_of(tracked)
    out, verdict, src = verify(run)
    assert verdict.metrics["score"]["reproduced"] == 14.0
    assert src.count("x = x + 1  # step") == 1  # the notebook's own line, comment kept
    assert "for _mnb_rerun in range(7):\n    x = x + 1  # step" in src
    assert "the same cell, run 7 times in a row" in src
    entries = json.loads((out / "run.json").read_text())["slice"]
    looped = next(e for e in entries if e.get("reruns"))
    assert len(looped["reruns"]) == 6  # every re-run is still listed, by id
    ids = {cr.id for cr in tracked_log(tracked)}
    assert set(looped["reruns"]) <= ids


def tracked_log(sh):
    from mlops_nb.store.reader import StoreReader

    return StoreReader(sh.tracker.home).session_log(sh.tracker.session)


def test_two_runs_in_a_row_stay_two_lines(tracked):
    tracked.run("hist = []")
    for _ in range(2):
        tracked.run("hist.append(1)")
    tracked.run("score = float(len(hist))")
    (run,) = runs_of(tracked)
    _out, _verdict, src = verify(run)
    assert src.count("hist.append(1)") == 2 and "_mnb_rerun" not in src


def test_a_cell_drawing_random_numbers_is_not_folded(tracked):
    """Each re-run needs the RNG state the notebook had before it: no loop."""
    tracked.run("import random")
    tracked.run("acc = []")
    for _ in range(4):
        tracked.run("acc.append(random.random())")
    tracked.run("score = float(sum(acc))")
    (run,) = runs_of(tracked)
    _out, verdict, src = verify(run)
    assert "_mnb_rerun" not in src
    assert src.count("acc.append(random.random())") == 4
    assert verdict.metrics["score"]["reproduced"] == run.metrics["score"]


def test_a_string_spanning_lines_keeps_its_value_in_the_loop(tracked):
    """Indenting the notebook's text would change a multi-line string: unparsed instead."""
    tracked.run("parts = []")
    for _ in range(3):
        tracked.run('parts.append("""a\nb""")')
    tracked.run("score = float(sum(len(p) for p in parts))")
    (run,) = runs_of(tracked)
    _out, verdict, src = verify(run)
    assert "for _mnb_rerun in range(3):" in src
    assert verdict.metrics["score"]["reproduced"] == 9.0


def test_an_import_or_definition_is_never_folded(tracked):
    tracked.run("n = 0")
    for _ in range(3):
        tracked.run("import math\nn = n + math.floor(1.5)")
    tracked.run("score = float(n)")
    (run,) = runs_of(tracked)
    _out, verdict, src = verify(run)
    assert "_mnb_rerun" not in src
    assert verdict.metrics["score"]["reproduced"] == 3.0


def test_a_block_of_cells_run_again_and_again_is_one_loop(tracked):
    """Two cells alternating (`x = x + 1`, `y = y + x`) five times: one loop over both."""
    tracked.run("x = 0\ny = 0")
    for _ in range(5):
        tracked.run("x = x + 1")
        tracked.run("y = y + x  # running sum")
    tracked.run("score = float(x + y)")
    (run,) = runs_of(tracked)
    out, verdict, src = verify(run)
    assert verdict.metrics["score"]["reproduced"] == 20.0
    assert "for _mnb_rerun in range(5):\n    x = x + 1\n    # In [" in src
    assert "    y = y + x  # running sum" in src
    assert src.count("x = x + 1") == 1 and "and the 1 cell(s) after it: run 5 times" in src
    entries = json.loads((out / "run.json").read_text())["slice"]
    assert [len(e.get("reruns", [])) for e in entries] == [0, 4, 4, 0]


def test_a_light_session_read_leaves_out_only_the_effective_values(tracked):
    """What export reads of the runs it does not export: everything but their effective
    parameters and data."""
    from mlops_nb.store.reader import StoreReader

    tracked.run("lr = 0.5")
    tracked.run("acc = lr * 2")
    tracked.flush()
    reader = StoreReader(tracked.tracker.home)
    full = StoreReader(tracked.tracker.home).session_log(tracked.tracker.session)
    light = reader.session_log(tracked.tracker.session, light=True)
    assert [cr.id for cr in light] == [cr.id for cr in full]
    run_full = next(cr for cr in full if cr.is_run)
    run_light = next(cr for cr in light if cr.is_run)
    assert run_full.effective_params == {"lr": 0.5}
    assert run_light.effective_params is None and run_light.effective_data is None
    for name in ("params", "metrics", "deps", "uses", "defs", "python", "rng", "data"):
        assert getattr(run_light, name) == getattr(run_full, name), name


def test_a_scoring_cell_re_run_many_times_exports_its_last_run_alone(tracked):
    """Issue 8 item 2: each re-run of `acc = clf.score(X, y)` is a run of its own, depending on
    the fit, not on the re-run before it; the export of the last one is the fit and that one
    line (no loop, no copies), and it reproduces."""
    tracked.run("from sklearn.linear_model import LogisticRegression\nimport numpy as np\n"
                "X = np.random.default_rng(0).random((40, 3))\ny = (X[:, 0] > 0.5).astype(int)")
    tracked.run("clf = LogisticRegression().fit(X, y)")
    for _ in range(30):
        tracked.run("acc = clf.score(X, y)")
    runs = runs_of(tracked)
    assert len(runs) == 30
    last, middle = runs[-1], runs[12]
    for run in (last, middle):
        out, verdict, src = verify(run, name=f"exp-{run.seq}")
        assert verdict.metrics["acc"]["reproduced"] == run.metrics["acc"]
        assert src.count("acc = clf.score(X, y)") == 1 and "_mnb_rerun" not in src
        assert src.count("LogisticRegression().fit(X, y)") == 1
        entries = json.loads((out / "run.json").read_text())["slice"]
        assert entries[-1]["id"] == run.id
        assert len(entries) == 3  # the data, the fit, the run: no other re-run


def test_the_lineage_read_completes_a_record_to_the_full_one(tracked):
    """What export replays (the def-use facts, measured values left undecoded) completes, for
    a slice's cells, to exactly the record the full read gives (but the effective values)."""
    from dataclasses import fields

    from mlops_nb.records import LIGHT_OMITS, CellRun, cell_run_from_lineage
    from mlops_nb.store.reader import StoreReader

    tracked.run("lr = 0.5\nrows = [1, 2]")
    tracked.run("acc = lr * 2\nloss = 1 - acc")
    tracked.run("1 / 0", check=False)
    tracked.run("import warnings\nwarnings.warn('careful')\nf1 = 0.3")
    tracked.flush()
    reader = StoreReader(tracked.tracker.home)
    full = reader.session_log(tracked.tracker.session)
    lineage = reader.lineage_log(tracked.tracker.session)
    assert lineage is not None and [r.id for r in lineage] == [cr.id for cr in full]
    assert any(cr.metrics for cr in full) and any(cr.error for cr in full)
    for rec, cr in zip(lineage, full, strict=True):
        done = cell_run_from_lineage(rec)
        assert isinstance(done, CellRun)
        for f in fields(CellRun):
            expected = None if f.name in LIGHT_OMITS else getattr(cr, f.name)
            assert getattr(done, f.name) == expected, f.name


def test_requirements_map_modules_through_the_sessions_own_distributions(monkeypatch):
    """The session's recorded distributions answer which one provides `sklearn` (no scan of
    every installed distribution); a module none of them provides still gets found."""
    from mlops_nb.exporting import requirements as req

    scans = []
    real = req._module_to_dists

    def counted():
        scans.append(1)
        return real()

    monkeypatch.setattr(req, "_module_to_dists", counted)
    pinned = {"scikit-learn": "0.0.1", "numpy": "0.0.2"}
    lines = req.requirements(["sklearn", "numpy"], pinned)
    assert lines == ["numpy==0.0.2", "scikit-learn==0.0.1"] and not scans
    lines = req.requirements(["sklearn", "msgspec"], pinned)
    assert "scikit-learn==0.0.1" in lines and any(x.startswith("msgspec==") for x in lines)
    assert scans == [1]


def test_a_slice_cell_with_damaged_values_is_read_the_tolerant_way(tracked):
    """A value the lineage read leaves undecoded is checked when its cell joins the slice: a
    damaged one sends the export through the tolerant read, which skips that record (and
    says so), exactly as before: here its name is then hidden state, not a traceback."""
    from pathlib import Path

    import pytest

    from mlops_nb.errors import HiddenState
    from mlops_nb.exporting import export_run

    tracked.run("a = 2")
    tracked.run("b = a * 3")
    tracked.run("score = float(b)")
    (run,) = runs_of(tracked)
    assert _damage(tracked, lambda rec: rec["defs"] == ["b"], data=[1]) == 1  # not a mapping
    with pytest.raises(HiddenState, match="b"):
        export_run(run.id, Path.cwd() / "exp")


def _damage(tracked, match, **fields) -> int:
    """Overwrite `fields` of the stored records `match` picks, as a damaged store would hold
    them; how many were damaged."""
    damaged = 0
    for seg in (tracked.tracker.home / "sessions").glob("*/*.json"):
        doc = json.loads(seg.read_text())
        for rec in doc["cell_runs"].values():
            if match(rec):
                rec.update(fields)
                damaged += 1
        seg.write_text(json.dumps(doc))
    return damaged


def _exported_files(out):
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    doc = json.loads(files.pop("run.json"))
    doc.pop("exported_at")
    return files, doc


def test_a_chain_exports_the_same_from_lineage_records_as_from_full_records(
        tracked, monkeypatch):
    """Only the cells the script writes are completed to full records; the re-runs folded
    into their loops stay lineage records. The export is the one the tolerant read (every
    record in full) gives, file for file, and run.json lists every re-run and the whole
    lineage as `show` derives it."""
    from pathlib import Path

    from mlops_nb.exporting import export_run
    from mlops_nb.store.reader import StoreReader

    tracked.run("x = 0\ny = 0\nz = 0")
    for _ in range(4):
        tracked.run("x = x + 1")
    for _ in range(3):
        tracked.run("y = y + x")
        tracked.run("z = z + y")
    tracked.run("score = float(x * 100 + y * 10 + z)")
    (run,) = runs_of(tracked)
    completed = []
    real = __import__("mlops_nb.records", fromlist=["x"]).cell_run_from_lineage

    def counted(rec):
        completed.append(rec.seq)
        return real(rec)

    from mlops_nb.exporting import build

    with monkeypatch.context() as m:
        m.setattr(build, "cell_run_from_lineage", counted)
        out, verdict, src = verify(run)
    assert verdict.metrics["score"]["reproduced"] == run.metrics["score"] == 544.0
    assert "for _mnb_rerun in range(4):" in src and "for _mnb_rerun in range(3):" in src
    entries = json.loads((out / "run.json").read_text())["slice"]
    assert [len(e.get("reruns", [])) for e in entries] == [0, 3, 2, 2, 0]
    # the cells the script writes are completed (the run's twice: it is the anchor too),
    # not the 7 re-runs folded into their loops
    assert sorted(set(completed)) == [e["seq"] for e in entries] and len(completed) == 6

    monkeypatch.setattr(StoreReader, "lineage_log", lambda self, session: None)
    full = export_run(run.id, Path.cwd() / "exp-full")
    files, doc = _exported_files(out)
    files_full, doc_full = _exported_files(full)
    assert files == files_full and doc == doc_full
    reader = StoreReader(tracked.tracker.home)
    assert doc["run"]["lineage"] == reader.lineage(reader.resolve(run.id))[0]
    reruns = [rid for e in doc["slice"] for rid in e.get("reruns", [])]
    assert len(reruns) == 7
    assert {*reruns, *(e["id"] for e in doc["slice"][:-1])} <= set(doc["run"]["lineage"])


def test_a_damaged_value_in_a_folded_re_run_still_sends_the_export_the_tolerant_way(
        tracked, monkeypatch):
    """A re-run folded into a loop is never read beyond its def-use facts, yet its record is
    checked as a slice cell's is: a damaged value sends the export through the tolerant
    read, which skips that record and says so, as before the fold came first."""
    from pathlib import Path

    from mlops_nb.exporting import export_run
    from mlops_nb.store.reader import StoreReader

    tracked.run("x = 0")
    for _ in range(5):
        tracked.run("x = x + 1")
    tracked.run("score = float(x)")
    (run,) = runs_of(tracked)
    # the fourth re-run's estimators: not a mapping of mappings
    assert _damage(tracked, lambda rec: rec["seq"] == 5, estimators={"m": 3}) == 1
    tolerant = []
    real = StoreReader.session_log

    def session_log(self, session, *, light=False):
        tolerant.append(light)
        return real(self, session, light=light)

    monkeypatch.setattr(StoreReader, "session_log", session_log)
    out = export_run(run.id, Path.cwd() / "exp")
    assert tolerant == [True]
    entries = json.loads((out / "run.json").read_text())["slice"]
    assert [len(e.get("reruns", [])) for e in entries] == [0, 3, 0]  # the damaged one skipped
