"""The model registry (`mlops_nb/models.py`): several promoted models told apart by name
(`promoted:NAME`, `--model NAME`), demote, promotion across experiments, damaged marks and
version records named, and a run whose cell raised not promoted unasked."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from test_mlops import FIT, TRAIN, _frame, _runs

import mlops_nb as mnb
from mlops_nb.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from mlops_nb.errors import MlopsNbError, StoreCorrupt
from mlops_nb.models import PromotionReplaced, promoted


@pytest.fixture
def two_models(tracked):
    """Experiment `a`: run `lr` (model lr) and a run whose cell raised after logging
    `broken`; experiment `b`: a run with its own `lr`."""
    _frame().to_csv("train.csv", index=False)
    _frame(seed=1).to_csv("new.csv", index=False)
    tracked.run("%track on --experiment a")
    tracked.run(TRAIN)
    tracked.run("C = 1.0")
    tracked.run(FIT + "import mlops_nb as mnb\nmnb.log_model(clf, 'lr')")
    tracked.run(FIT.replace("f1 =", "f1b =") + "mnb.log_model(clf, 'broken')\n"
                "raise ValueError('boom after log_model')", check=False)
    tracked.run("%track on --experiment b")
    tracked.run("C = 0.5")
    tracked.run(FIT + "mnb.log_model(clf, 'lr')")
    lr_a, broken, lr_b = _runs(tracked)
    assert broken.error and lr_a.experiment == "a" and lr_b.experiment == "b"
    return tracked, str(tracked.tracker.home), lr_a, broken, lr_b


def _validate(home, *args):
    return main(["--home", home, "validate", *args, "--data", "new.csv", "--format", "json"])


def test_several_promoted_models_are_named_and_one_can_be_demoted(two_models, capsys):
    _sh, home, lr_a, broken, _lr_b = two_models
    assert main(["--home", home, "models", "promote", broken.id[:8], "broken", "--force"]
                ) == EXIT_OK
    assert main(["--home", home, "models", "promote", lr_a.id[:8], "lr"]) == EXIT_OK
    capsys.readouterr()
    # bare `promoted` is ambiguous, and says how to name one
    assert _validate(home, "promoted") == EXIT_BAD_INPUT
    assert "`promoted:broken`" in capsys.readouterr().err
    # named in the reference, or with --model: the run of that model
    for args in (["promoted:lr"], ["promoted", "--model", "lr"]):
        assert _validate(home, *args) in (EXIT_OK, EXIT_FAILED)
        assert json.loads(capsys.readouterr().out)["run_id"] == lr_a.id
    assert _validate(home, "promoted:nope") == EXIT_BAD_INPUT
    assert "no model named 'nope' is promoted (promoted: broken, lr)" in capsys.readouterr().err
    assert _validate(home, "promoted:lr", "--model", "broken") == EXIT_BAD_INPUT
    assert _validate(home, lr_a.id, "--model", "lr") == EXIT_BAD_INPUT
    assert mnb.load_model("promoted:lr", home=home).C == 1.0
    # retrain's --model picks the promoted run (the run is resolved before anything trains;
    # clean data with --when drift stops there, exit 5)
    assert main(["--home", home, "retrain", "promoted", "--model", "lr", "--data", "new.csv",
                 "--when", "drift", "--no-progress", "--format", "json"]) == 5
    assert json.loads(capsys.readouterr().out)["parent"] == lr_a.id
    # and from Python: `promoted` with the model's name is that model's promoted run
    outcome = mnb.retrain("promoted", "new.csv", model_name="lr", when="drift", home=home,
                          progress=False)
    assert outcome.parent == lr_a.id
    # reproduce --no-worse-than names the promoted model to compare with
    assert main(["--home", home, "reproduce", lr_a.id[:8], "--no-worse-than", "0.5"]
                ) == EXIT_BAD_INPUT
    assert "several models are promoted" in capsys.readouterr().err
    assert main(["--home", home, "reproduce", lr_a.id[:8], "--no-worse-than", "0.5",
                 "--model", "lr"]) == EXIT_OK
    capsys.readouterr()
    # demote: API and CLI; then `promoted` means the one left
    assert mnb.demote("broken", home=home)["run_id"] == broken.id
    assert _validate(home, "promoted") in (EXIT_OK, EXIT_FAILED)
    assert json.loads(capsys.readouterr().out)["run_id"] == lr_a.id
    assert main(["--home", home, "models", "demote", "lr"]) == EXIT_OK
    assert promoted(home) == {}
    assert main(["--home", home, "models", "demote", "lr"]) == EXIT_BAD_INPUT
    assert "no model named 'lr' is promoted" in capsys.readouterr().err


def test_a_run_that_raised_is_promoted_only_when_forced_and_listed_as_such(two_models, capsys):
    _sh, home, _lr_a, broken, _lr_b = two_models
    with pytest.raises(MlopsNbError, match="raised ValueError: boom after log_model"):
        mnb.promote(broken.id, "broken", home=home)
    assert main(["--home", home, "models", "promote", broken.id, "broken"]) == EXIT_BAD_INPUT
    assert promoted(home) == {}
    mnb.promote(broken.id, "broken", force=True, home=home)
    capsys.readouterr()
    assert main(["--home", home, "models"]) == EXIT_OK
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if " broken " in ln]
    assert line.startswith("*") and "(run raised an error)" in line


def test_promoting_over_another_experiments_mark_says_so(two_models, capsys):
    _sh, home, lr_a, _broken, lr_b = two_models
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mnb.promote(lr_a.id, "lr", home=home)  # nothing replaced: no warning
        mnb.promote(lr_a.id, "lr", home=home)
    with pytest.warns(PromotionReplaced, match="was promoted in experiment 'a'"):
        mnb.promote(lr_b.id, "lr", home=home)
    assert promoted(home)["lr"]["run_id"] == lr_b.id
    capsys.readouterr()
    assert main(["--home", home, "models", "promote", lr_a.id, "lr"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "mlops-nb: warning: model 'lr' was promoted in experiment 'b'" in err
    # `models` shows each version's experiment
    assert main(["--home", home, "models"]) == EXIT_OK
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines() if " lr " in ln]
    assert sorted(r[5] if r[0] == "*" else r[4] for r in rows) == ["a", "b"]
    assert main(["--home", home, "models", "--format", "json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert {(r["name"], r["experiment"], r["promoted"]) for r in rows} >= {
        ("lr", "a", True), ("lr", "b", False)}


@pytest.mark.parametrize("damage, expect", [
    ("empty mark", "models/promoted/lr.json is damaged: empty"),
    ("half-written mark", "models/promoted/lr.json is damaged: not valid JSON"),
    ("mark without version", "models/promoted/lr.json is damaged: not a promoted mark"),
    ("mark to unknown version", "models/versions/ffffffffffffffffffffffff.json does not exist"),
    ("truncated version", "is damaged: empty"),
])
def test_a_damaged_mark_or_version_is_named_never_taken_for_none(two_models, capsys, damage,
                                                                  expect):
    _sh, home, lr_a, _broken, _lr_b = two_models
    mnb.promote(lr_a.id, "lr", home=home)
    mark = Path(home, "models", "promoted", "lr.json")
    text = mark.read_text()
    version = json.loads(text)["version"]
    if damage == "empty mark":
        mark.write_text("")
    elif damage == "half-written mark":
        mark.write_text(text[:20])
    elif damage == "mark without version":
        mark.write_text("[]")
    elif damage == "mark to unknown version":
        mark.write_text(json.dumps({"version": "f" * 24, "run_id": "x"}))
    else:
        Path(home, "models", "versions", f"{version}.json").write_text("")
    capsys.readouterr()
    assert _validate(home, "promoted") == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert expect in err and "no model is promoted" not in err
    with pytest.raises(StoreCorrupt, match=r"models/promoted/lr\.json"):
        mnb.load_model("promoted", "lr", home=home)
    # `models` lists the rest and names the damage on stderr; --strict fails on it
    assert main(["--home", home, "models"]) == EXIT_OK
    assert expect in capsys.readouterr().err
    assert main(["--home", home, "models", "--strict"]) == EXIT_FAILED
    # demote removes a damaged mark (and promote rewrites one)
    assert mnb.demote("lr", home=home) is None
    assert promoted(home) == {} and main(["--home", home, "models", "--strict"]) == (
        EXIT_FAILED if damage == "truncated version" else EXIT_OK)


def test_a_version_record_missing_fields_is_listed_not_a_crash(two_models, capsys):
    _sh, home, *_ = two_models
    folder = Path(home, "models", "versions")
    (folder / ("d" * 20 + ".json")).write_text('{"name": "x", "version": "' + "d" * 20 + '"}')
    (folder / ("c" * 20 + ".json")).write_text('{"name": 5}')
    (folder / ("b" * 20 + ".json")).write_text("[1, 2]")
    assert main(["--home", home, "models"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert any(ln.split()[:2] == ["x", "d" * 12] for ln in out.splitlines())
    assert f"models/versions/{'c' * 20}.json is damaged" in err
    assert f"models/versions/{'b' * 20}.json is damaged" in err
    assert main(["--home", home, "models", "--format", "json"]) == EXIT_OK
    assert "x" in {r["name"] for r in json.loads(capsys.readouterr().out)}
