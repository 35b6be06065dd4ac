"""`mlops-nb export` / `mlops-nb reproduce` exit codes and output; `%track export`; mnb API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlops_nb as mnb
from mlops_nb.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from mlops_nb.store.reader import StoreReader


def _runs(sh):
    sh.flush()
    reader = StoreReader(sh.tracker.home)
    return [cr for cr in reader.session_log(sh.tracker.session) if cr.is_run]


def _two_runs(sh):
    sh.run("lr = 0.1")
    sh.run("f1 = lr * 2")
    sh.run("lr = 0.3")
    sh.run("f1 = lr * 2")
    return _runs(sh)


def test_cli_export_best_and_reproduce_json(tracked, capsys):
    low, high = _two_runs(tracked)
    home = str(tracked.tracker.home)
    assert main(["--home", home, "export", "--best", "--metric", "f1", "-o", "best"]) == EXIT_OK
    assert json.loads(Path("best/run.json").read_text())["run_id"] == high.id
    assert main(["--home", home, "export", "--best", "--metric", "f1", "--min", "-o", "worst"]
                ) == EXIT_OK
    assert json.loads(Path("worst/run.json").read_text())["run_id"] == low.id
    capsys.readouterr()
    assert main(["--home", home, "reproduce", "best", "--format", "json"]) == EXIT_OK
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["ok"] is True and verdict["level"] == "L2"
    assert verdict["metrics"]["f1"]["recorded"] == verdict["metrics"]["f1"]["reproduced"]
    assert main(["--home", home, "reproduce", low.id[:8]]) == EXIT_OK
    assert "reproduced: level L2" in capsys.readouterr().out


def test_cli_exit_codes_for_bad_input_existing_exports_and_refusals(tracked, capsys):
    (run, _) = _two_runs(tracked)
    home = str(tracked.tracker.home)
    assert main(["--home", home, "export", "ffff0000", "-o", "x"]) == EXIT_BAD_INPUT
    assert main(["--home", home, "export", "-o", "x"]) == EXIT_BAD_INPUT
    # every export refusal (nothing written) has the one documented code: 1
    assert main(["--home", home, "export", run.id, "-o", "../x"]) == EXIT_FAILED
    assert main(["--home", home, "export", run.id, "-o", "e"]) == EXIT_OK
    assert main(["--home", home, "export", run.id, "-o", "e"]) == EXIT_FAILED
    assert "--force" in capsys.readouterr().err
    assert main(["--home", home, "export", run.id, "-o", "e", "--force"]) == EXIT_OK
    assert main(["--home", home, "reproduce", "not-a-dir-or-id"]) == EXIT_BAD_INPUT
    tracked.ip.push({"hidden": 1})
    tracked.run("f1 = hidden * 1.0")
    hidden_run = _runs(tracked)[-1]
    capsys.readouterr()
    assert main(["--home", home, "export", hidden_run.id, "-o", "h"]) == EXIT_FAILED
    assert "hidden" in capsys.readouterr().err
    assert main(["--home", home, "reproduce", hidden_run.id, "--format", "json"]) == EXIT_FAILED
    assert json.loads(capsys.readouterr().out)["level"] is None


def test_cli_names_the_metric_meant_and_a_target_that_is_neither_folder_nor_run(tracked,
                                                                                  capsys):
    """`--metric accuracy` when the runs have `accuracy_score` (what a printed `Accuracy:`
    line with an `accuracy_score(...)` call records) says which one; a mistyped export folder
    is not called a malformed run id."""
    tracked.run("base = 0.45")
    tracked.run("accuracy_score = base * 2\ncv_accuracy_mean = base + 0.3\nloss = base / 4")
    tracked.flush()
    home = str(tracked.tracker.home)
    capsys.readouterr()
    assert main(["--home", home, "export", "--best", "--metric", "accuracy", "-o", "x"]
                ) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "no run has metric 'accuracy'; did you mean 'accuracy_score' or " \
           "'cv_accuracy_mean'?" in err
    assert "(metrics here: accuracy_score, cv_accuracy_mean, loss)" in err
    assert not Path("x").exists()
    assert main(["--home", home, "export", "--best", "--metric", "los", "-o", "x"]
                ) == EXIT_BAD_INPUT
    assert "did you mean 'loss'?" in capsys.readouterr().err
    assert main(["--home", home, "export", "--best", "--metric", "zzz", "-o", "x"]
                ) == EXIT_BAD_INPUT
    assert "did you mean" not in capsys.readouterr().err
    assert main(["--home", home, "reproduce", "../exports/best"]) == EXIT_BAD_INPUT
    assert "'../exports/best' is neither an export folder (nothing is there) nor a run id" \
        in capsys.readouterr().err


def test_best_without_metric_takes_the_runs_only_metric_and_lists_several(tracked, capsys):
    """`export --best` when every run has the one metric `r2`: asking for `--metric r2` was
    a step with no choice in it. With several metrics the choice is the user's: they are
    listed."""
    tracked.run("alpha = 1.0\nr2 = 0.5")
    tracked.run("alpha = 2.0\nr2 = 0.7")
    tracked.flush()
    home = str(tracked.tracker.home)
    capsys.readouterr()
    assert main(["--home", home, "export", "--best", "-o", "best"]) == EXIT_OK
    assert "best by 'r2', the runs' only metric" in capsys.readouterr().err
    assert json.loads(Path("best/run.json").read_text())["parameters"]["alpha"] == 2.0
    tracked.run("alpha = 3.0\nr2 = 0.1\nval_loss = 0.3")
    tracked.flush()
    assert main(["--home", home, "export", "--best", "-o", "again"]) == EXIT_BAD_INPUT
    assert "--best needs --metric M: the runs have 2 metrics ('r2', 'val_loss')" in \
        capsys.readouterr().err
    assert not Path("again").exists()


def test_cli_reproduce_exits_1_when_a_metric_differs(tracked, capsys):
    Path("d.txt").write_text("3")
    tracked.run("f1 = float(open('d.txt').read())")
    (run,) = _runs(tracked)
    home = str(tracked.tracker.home)
    assert main(["--home", home, "export", run.id, "-o", "e"]) == EXIT_OK
    Path("d.txt").write_text("4")
    capsys.readouterr()
    assert main(["--home", home, "reproduce", "e", "--format", "json"]) == EXIT_FAILED
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["level"] == "L1" and verdict["metrics"]["f1"]["difference"] == 1.0
    assert verdict["data_mismatches"][0]["problem"] == "changed"
    assert main(["--home", home, "reproduce", "e", "--atol", "1.5"]) == EXIT_OK


def test_magic_export_and_python_api(tracked, capsys):
    _low, high = _two_runs(tracked)
    out = tracked.ip.run_line_magic("track", "export --best --metric f1 -o magic_exp")
    assert Path(out).name == "magic_exp"
    assert json.loads((Path(out) / "run.json").read_text())["run_id"] == high.id
    assert tracked.ip.run_line_magic("track", f"export {high.id[:10]} -o magic_exp") is None
    assert "--force" in capsys.readouterr().err
    path = mnb.export(high.id, "api_exp")
    verdict = mnb.reproduce(path)
    assert verdict.ok and verdict.to_dict()["level"] == "L2"
    assert mnb.reproduce(path).ok  # a plain function, whatever was imported
    assert mnb.export(high.id, "api_exp", force=True) == path


@pytest.mark.slow
def test_quickstart_notebook_best_run_exports_and_reproduces(tracked):
    """The README's main command: the quickstart's cells, then export best + reproduce."""
    notebook = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    for cell in cells:
        tracked.run("".join(cell["source"]))
    # the notebook itself exports the best run and reproduces it
    verdict = tracked.ns["verdict"]
    assert verdict.ok and verdict.level == "L2", verdict.summary() + verdict.stderr_tail
    assert (Path("exports") / "best" / "train.py").is_file()
