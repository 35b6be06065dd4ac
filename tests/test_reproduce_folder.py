"""`reproduce(folder, run=...)`: a folder holding another run's export is refused, never
verified in that run's place (the stale `exports/best` after Restart & Run All)."""

from __future__ import annotations

import pytest

import mlops_nb as mnb
from mlops_nb.errors import MlopsNbError
from mlops_nb.exporting import export_run
from mlops_nb.reproduction import reproduce


def test_a_folder_holding_another_runs_export_is_refused_with_what_it_holds(tracked, tmp_path):
    tracked.run("a = 1\nscore = 0.5")
    tracked.run("a = 2\nscore = 0.7")
    tracked.flush()
    first, second = list(mnb.runs().sort_values("started_at")["id"])
    folder = export_run(first, tmp_path / "best", home=tracked.tracker.home)
    with pytest.raises(MlopsNbError) as err:
        reproduce(folder, run=second[:10])
    text = str(err.value)
    assert f"holds the export of run {first[:12]}" in text
    assert f"not of run {second[:12]}" in text and "export run" in text
    with pytest.raises(MlopsNbError, match="not of run"):
        reproduce(folder, run="0" * 12)  # an id the store does not know is no match either


@pytest.mark.slow
def test_the_folder_of_the_named_run_is_verified(tracked, tmp_path):
    tracked.run("a = 1\nscore = 0.5")
    tracked.flush()
    (rid,) = list(mnb.runs()["id"])
    folder = export_run(rid, tmp_path / "best", home=tracked.tracker.home)
    verdict = reproduce(folder, run=rid[:8])
    assert verdict.ok and verdict.run_id == rid


@pytest.mark.slow
def test_cli_reproduce_run_flag_refuses_another_runs_folder_and_verifies_its_own(
        tracked, tmp_path, capsys):
    from mlops_nb.cli import EXIT_BAD_INPUT, EXIT_OK, main

    tracked.run("a = 1\nscore = 0.5")
    tracked.run("a = 2\nscore = 0.7")
    tracked.flush()
    first, second = list(mnb.runs().sort_values("started_at")["id"])
    home = str(tracked.tracker.home)
    folder = str(export_run(first, tmp_path / "best", home=home))
    assert main(["--home", home, "reproduce", folder, "--run", second[:10]]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"holds the export of run {first[:12]}" in err and f"not of run {second[:12]}" in err
    assert main(["--home", home, "reproduce", folder, "--run", first[:8]]) == EXIT_OK
    assert f"run {first[:12]}" in capsys.readouterr().out
    # --run says which run a folder must hold: with a run id instead of a folder it is bad input
    assert main(["--home", home, "reproduce", first[:8], "--run", first[:8]]) == EXIT_BAD_INPUT
    assert "is not a folder" in capsys.readouterr().err


def test_cli_reproduce_help_documents_run():
    from mlops_nb.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["reproduce"].format_help()
    assert "--run RUN_ID" in text and "holds the export of this run" in " ".join(text.split())
