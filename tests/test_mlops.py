"""Profiles, validate, model versions, gates and retrain, through a real InteractiveShell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlops_nb as mnb
from mlops_nb.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from mlops_nb.errors import MlopsNbError
from mlops_nb.store.reader import StoreReader


def _frame(n=400, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    color = rng.choice(["red", "green", "blue"], n)
    y = ((x1 + x2 + (color == "red")) > 0.5).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "y": y})


TRAIN = """\
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
df = pd.read_csv("train.csv")
"""
FIT = """\
X = pd.get_dummies(df[["x1", "x2", "color"]], columns=["color"]).astype(float)
clf = LogisticRegression(C=C).fit(X[:300], df.y[:300])
f1 = f1_score(df.y[300:], clf.predict(X[300:]))
"""


def _runs(sh):
    sh.flush()
    return [cr for cr in StoreReader(sh.tracker.home).session_log(sh.tracker.session)
            if cr.is_run]


def _slow_fit_run(sh):
    """A fit-and-score run whose fit sleeps a minute when MNB_SLOW_FIT is set (a retrain to
    stop midway): (the run, its store)."""
    _frame().to_csv("train.csv", index=False)
    sh.run(TRAIN)
    sh.run("C = 1.0")
    sh.run("import os, time\nif os.environ.get('MNB_SLOW_FIT'):\n    time.sleep(60)\n" + FIT)
    return _runs(sh)[-1], str(sh.tracker.home)


@pytest.fixture
def trained(tracked):
    _frame().to_csv("train.csv", index=False)
    tracked.run(TRAIN)
    tracked.run("C = 1.0")
    tracked.run(FIT)
    tracked.run("import mlops_nb as mnb\nmnb.log_model(clf, 'clf'); f1_again = f1")
    (run, *_rest) = _runs(tracked)
    return tracked, run


def test_profile_is_recorded_once_per_new_fingerprint_and_linked_to_the_file(trained):
    sh, run = trained
    home = sh.tracker.home
    data = run.effective_data
    assert data["df"]["profile"] == data["file:train.csv"]["profile"]
    prof = json.loads(StoreReader(home).blobs.get_text(data["df"]["profile"]))
    assert prof["rows"] == 400 and not prof["sampled"] and prof["sample_rows"] == 400
    assert prof["columns"]["x1"]["kind"] == "numeric"
    assert {k for k, _ in prof["columns"]["color"]["top"]} == {"red", "green", "blue"}
    seen = dict(sh.tracker.profiler.seen)
    sh.run("n = len(df)")  # uses df again: no new profile computed
    assert sh.tracker.profiler.seen == seen and not sh.tracker.profiler.pending


def test_large_frames_are_sampled_and_say_so():
    from mlops_nb.validation.profile import profile

    df = pd.DataFrame({"a": np.arange(200_000, dtype=float), "s": ["x"] * 200_000})
    df.loc[5, "a"] = np.nan
    prof = profile(df, sample_rows=1000)
    assert prof["sampled"] and prof["sample_rows"] == 1000 and prof["rows"] == 200_000
    col = prof["columns"]["a"]
    assert col["nulls"] == 1 and col["min"] == 0.0 and col["max"] == 199_999.0


def test_validate_clean_on_same_distribution_and_drift_on_shift(trained, capsys):
    sh, run = trained
    _frame(seed=1).to_csv("same.csv", index=False)
    _frame(shift=1.5, seed=2).to_csv("shifted.csv", index=False)
    home = str(sh.tracker.home)
    assert main(["--home", home, "validate", run.id, "--data", "same.csv"]) == EXIT_OK
    assert "clean" in capsys.readouterr().out
    assert main(["--home", home, "validate", run.id[:8], "--data", "shifted.csv",
                 "--format", "json"]) == EXIT_FAILED
    out = json.loads(capsys.readouterr().out)
    assert "x1" in out["drifted"] and "x2" not in out["drifted"]
    ks = next(d for d in out["drift"] if d["column"] == "x1")
    assert ks["test"] == "ks" and ks["p_value"] < 0.01 and ks["psi"] >= 0.1
    chi = next(d for d in out["drift"] if d["column"] == "color")
    assert chi["test"] == "chi2" and chi["p_value"] > 0.01
    report = mnb.validate(run.id, pd.read_csv("shifted.csv"), name="df", home=home)
    html = report._repr_html_()
    assert "<svg" in html and "drift" in html and not report.ok


@pytest.mark.parametrize("case, expect", [
    ("renamed", "column 'x1' is missing"),
    ("all_null", "entirely null"),
    ("mismatched", "is categorical"),
])
def test_schema_violations_are_errors(trained, capsys, case, expect):
    sh, run = trained
    df = _frame(seed=3)
    if case == "renamed":
        df = df.rename(columns={"x1": "x_one"})
    elif case == "all_null":
        df["x2"] = np.nan
    else:
        df["x1"] = ["high"] * len(df)
    df.to_csv("bad.csv", index=False)
    assert main(["--home", str(sh.tracker.home), "validate", run.id, "--data", "bad.csv"]
                ) == EXIT_FAILED
    assert expect in capsys.readouterr().out


def test_unseen_categories_and_out_of_range_are_warnings(trained):
    sh, run = trained
    df = _frame(seed=4)
    df.loc[[0, 2, 3], "color"] = "purple"
    df.loc[4, "color"] = "teal"
    df.loc[1, "x2"] = 1e6
    report = mnb.validate(run.id, df, home=sh.tracker.home)
    checks = {(f.column, f.check, f.severity) for f in report.findings}
    assert ("color", "category", "warning") in checks and ("x2", "range", "warning") in checks
    # how many new labels, in how many rows: not one count read as both
    (colors,) = [f for f in report.findings if f.check == "category"]
    assert "2 unseen categories in 4 row(s)" in colors.message
    assert sorted(colors.examples) == ["purple", "teal"]
    assert not report.schema_errors


@pytest.mark.parametrize("content, expect", [
    (None, "is not a file"),
    ("", "is empty"),
    ("x1;x2;color;y\n1;2;red;0\n", "delimited by ';'"),
    ("x1,x2,color,y\n", "has no rows"),
    (b"\xff\xfe\x00\x81garbage\x00\xff", "cannot read"),
])
def test_bad_data_files_are_bad_input(trained, capsys, content, expect):
    sh, run = trained
    if isinstance(content, bytes):
        Path("new.csv").write_bytes(content)
    elif content is not None:
        Path("new.csv").write_text(content)
    assert main(["--home", str(sh.tracker.home), "validate", run.id, "--data", "new.csv"]
                ) == EXIT_BAD_INPUT
    assert expect in capsys.readouterr().err


def test_unknown_data_name_and_thresholds_are_bad_input(trained, capsys):
    sh, run = trained
    _frame().to_csv("n.csv", index=False)
    home = str(sh.tracker.home)
    assert main(["--home", home, "validate", run.id, "--data", "n.csv", "--name", "nope"]
                ) == EXIT_BAD_INPUT
    assert "did not use data named 'nope'" in capsys.readouterr().err
    assert main(["--home", home, "validate", run.id, "--data", "n.csv", "--threshold",
                 "beta=1"]) == EXIT_BAD_INPUT


def test_a_million_category_column_is_not_chi_squared():
    from mlops_nb.validation import compare_frame
    from mlops_nb.validation.drift import Thresholds
    from mlops_nb.validation.profile import profile

    n = 1_000_000
    df = pd.DataFrame({"id": pd.Series(np.arange(n)).astype(str), "v": np.ones(n)})
    prof = profile(df)
    col = prof["columns"]["id"]
    assert col["high_cardinality"] and len(col["top"]) <= 20
    report = compare_frame("a" * 32, "df", prof, df.iloc[:1000], Thresholds())
    d = next(d for d in report.drift if d.column == "id")
    assert d.test is None and "identifier" in d.note


def test_log_model_and_load_model_skops(trained, capsys):
    sh, run = trained
    runs = _runs(sh)
    logged = runs[-1]
    model = mnb.load_model(logged.id, "clf", home=sh.tracker.home)
    assert type(model).__name__ == "LogisticRegression"
    assert np.allclose(model.coef_, sh.ns["clf"].coef_)
    assert main(["--home", str(sh.tracker.home), "models"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "clf" in out and "skops" in out and logged.id[:12] in out
    with pytest.raises(MlopsNbError, match="no saved model"):
        mnb.load_model(run.id, "clf", home=sh.tracker.home)


def test_pickled_models_need_trusted_and_a_matching_hash(store_home):
    from mlops_nb import models

    store_home.mkdir()
    v = models.save_version(store_home, "ab" * 16, "thing", {"not": "sklearn"})
    assert v["format"] in ("joblib", "pickle") and len(v["sha256"]) == 64
    with pytest.raises(models.UntrustedModel, match="trusted=True"):
        models.load_version(store_home, v)
    assert models.load_version(store_home, v, trusted=True) == {"not": "sklearn"}
    blob = models.BlobStore(store_home / "blobs").path_for(v["blob"])
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes() + b"x")
    with pytest.raises(models.UntrustedModel, match="sha256"):
        models.load_version(store_home, v, trusted=True)


def test_save_models_option_saves_each_runs_estimators(tracked):
    _frame().to_csv("train.csv", index=False)
    tracked.run("%track on --experiment test --save-models")
    tracked.run(TRAIN)
    tracked.run("C = 0.5")
    tracked.run(FIT)
    run = _runs(tracked)[-1]
    model = mnb.load_model(run.id, "clf", home=tracked.tracker.home)
    assert model.C == 0.5


def test_gates_parse_and_refuse_unknown_metrics():
    from mlops_nb.gates import GateError, check_known, evaluate, parse_gate

    g = parse_gate(" f1 >= 0.9 ")
    assert (g.metric, g.op, g.threshold) == ("f1", ">=", 0.9)
    assert [r.passed for r in evaluate([g, parse_gate("rmse<3.2")],
                                       {"f1": 0.95, "rmse": 3.5})] == [True, False]
    for bad in ("f1 >= high", "f1 => 0.9", "", ">= 1", "f1>=nan"):
        with pytest.raises(GateError):
            parse_gate(bad)
    with pytest.raises(GateError, match="unknown"):
        check_known([parse_gate("auc>0.5")], {"f1": 1.0}, "run x")


def _retrain(home, *args):
    return main(["--home", home, "retrain", *args, "--no-progress"])


def _listing(home):
    return sorted((str(p.relative_to(home)), p.stat().st_size)
                  for p in Path(home).rglob("*") if p.is_file())


@pytest.mark.slow  # several fresh training processes
def test_retrain_gate_promote_and_load_promoted(trained, capsys):
    sh, run = trained
    home = str(sh.tracker.home)
    _frame(n=400, shift=1.0, seed=5).to_csv("new.csv", index=False)
    before = _listing(home)
    # bad input changes nothing
    assert _retrain(home, run.id, "--data", "new.csv", "--gate", "auc>=0.5") == EXIT_BAD_INPUT
    assert _retrain(home, run.id, "--data", "new.csv", "--gate", "f1 >> 1") == EXIT_BAD_INPUT
    assert _retrain(home, run.id, "--data", "other=new.csv") == EXIT_BAD_INPUT
    assert "never read a data file named 'other'" in capsys.readouterr().err
    assert _retrain(home, run.id, "--data", "new.csv", "--no-worse-than", "0.01"
                    ) == EXIT_BAD_INPUT
    assert "none is promoted yet" in capsys.readouterr().err
    assert main(["--home", home, "validate", "promoted", "--data", "new.csv"]) == EXIT_BAD_INPUT
    assert _listing(home) == before
    # a gate that fails: recorded, not promoted
    assert _retrain(home, run.id, "--data", "new.csv", "--gate", "f1>=1.01", "--promote") == 3
    assert "GATE_FAILED" in capsys.readouterr().out
    from mlops_nb.models import promoted

    assert promoted(home) == {}
    # passing: promoted; then loadable as "promoted"
    assert _retrain(home, run.id, "--data", "train=new.csv", "--gate", "f1>=0.1",
                    "--promote", "--format", "json") == EXIT_OK
    res = json.loads(capsys.readouterr().out)
    assert res["outcome"] == "promoted" and res["version"]
    new_run = StoreReader(Path(home)).resolve(res["run_id"])
    assert new_run.params["retrained_from"] == run.id and new_run.metrics == res["metrics"]
    assert new_run.data["file:train.csv"]["profile"]
    assert promoted(home)["clf"]["run_id"] == res["run_id"]
    model = mnb.load_model("promoted", "clf", home=home)
    X_new = pd.DataFrame(np.zeros((1, len(model.feature_names_in_))), columns=model.feature_names_in_)
    assert model.predict(X_new).shape == (1,)
    # retrain the promoted one (a retrain of a retrain runs the notebook run's script)
    assert _retrain(home, "promoted", "--data", "train.csv", "--no-worse-than", "1.0",
                    "--format", "json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)["outcome"] == "accepted"
    df = mnb.runs(home=home)
    assert res["run_id"] in set(df["id"])
    # a retrain run's model is the one its script fits, as the run it replays (it was NaN)
    assert set(df.set_index("id").loc[[run.id, res["run_id"]], "model"]) == {
        "LogisticRegression"}


def test_retrain_when_drift_skips_clean_data_and_blocks_schema_violations(trained, capsys):
    sh, run = trained
    home = str(sh.tracker.home)
    _frame(seed=7).to_csv("same.csv", index=False)
    before = _listing(home)
    assert _retrain(home, run.id, "--data", "same.csv", "--when", "drift") == 5
    df = _frame(seed=8).rename(columns={"x2": "x_2"})
    df.to_csv("renamed.csv", index=False)
    assert _retrain(home, run.id, "--data", "renamed.csv") == 4
    assert "schema violation" in capsys.readouterr().out
    _frame(shift=1.5, seed=2).to_csv("shifted.csv", index=False)
    assert _retrain(home, run.id, "--data", "shifted.csv", "--block-on-drift") == 4
    assert "drift in 'x1'" in capsys.readouterr().out
    assert _retrain(home, run.id, "--data", "shifted.csv", "--block-on-drift",
                    "--when", "drift") == EXIT_BAD_INPUT
    assert _listing(home) == before


@pytest.mark.slow
def test_retrain_killed_midway_changes_nothing(tracked):
    run, home = _slow_fit_run(tracked)
    _frame(seed=9).to_csv("new.csv", index=False)
    assert _retrain(home, run.id, "--data", "new.csv", "--promote", "--model", "clf") == EXIT_OK
    from mlops_nb.models import promoted

    mark = promoted(home)["clf"]["version"]
    tracked.flush()
    before = _listing(home)
    env = {**os.environ, "MNB_SLOW_FIT": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_nb.cli", "--home", home, "retrain", run.id, "--data",
         "new.csv", "--promote", "--no-progress"], env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the training script runs, then kill it all
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        if children:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.0)
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert _listing(home) == before
    assert promoted(home)["clf"]["version"] == mark


class _Custom:  # a type skops cannot vouch for
    def __init__(self):
        self.w = [1, 2]


def test_skops_refuses_foreign_types_unless_trusted(store_home):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    from mlops_nb import models

    store_home.mkdir()
    X, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 2
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)  # holds sklearn's Cython Tree
    v = models.save_version(store_home, "cd" * 16, "tree", tree)
    assert v["format"] == "skops"
    assert (models.load_version(store_home, v).predict(X) == tree.predict(X)).all()
    pipe = make_pipeline(FunctionTransformer(np.log1p), DecisionTreeClassifier()).fit(
        np.abs(X), y)
    pipe.custom_ = _Custom()
    v2 = models.save_version(store_home, "cd" * 16, "pipe", pipe)
    if v2["format"] == "skops":
        with pytest.raises(models.UntrustedModel, match="outside scikit-learn"):
            models.load_version(store_home, v2)
    else:
        with pytest.raises(models.UntrustedModel, match="trusted=True"):
            models.load_version(store_home, v2)
    assert models.load_version(store_home, v2, trusted=True).custom_.w == [1, 2]


@pytest.mark.slow  # several fresh training processes
def test_reproduce_seeds_reports_noise_and_ties(tracked, capsys):
    tracked.run("import numpy as np")
    tracked.run("score = 0.5 + np.random.rand() * 0.1")
    tracked.run("score = 0.5 + np.random.rand() * 0.1")
    best, other = sorted(_runs(tracked), key=lambda r: -r.metrics["score"])
    home = str(tracked.tracker.home)
    assert main(["--home", home, "reproduce", best.id, "--seeds", "4", "--format", "json"]
                ) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    m = doc["metrics"]["score"]
    assert len(m["values"]) == 4 and m["spread"] > 0
    assert 0.5 <= m["min"] <= m["max"] <= 0.6
    tied = best.metrics["score"] - other.metrics["score"] <= m["spread"]
    assert (other.id in doc["ties"]["score"]) == tied
    from mlops_nb.comparison.model import load_comparison
    from mlops_nb.noise import load_noise

    assert load_noise(home, best.id)["metrics"]["score"]["spread"] == m["spread"]
    cmp, _ = load_comparison("test", metric="score", home=home)
    assert cmp.tied == ({other.id} if tied else set())
    assert ("tied with best within noise" in cmp.verdict_text(other.id)) == tied
    assert main(["--home", home, "reproduce", best.id, "--seeds", "1"]) == EXIT_BAD_INPUT


def test_retrain_of_a_run_without_a_model_cannot_promote(tracked, capsys):
    _frame().to_csv("train.csv", index=False)
    tracked.run("import pandas as pd\ndf = pd.read_csv('train.csv')")
    tracked.run("mean_x1 = float(df.x1.mean())\nscore = 1.0")
    (run,) = _runs(tracked)
    home = str(tracked.tracker.home)
    _frame(seed=11).to_csv("new.csv", index=False)
    before = _listing(home)
    assert _retrain(home, run.id, "--data", "new.csv", "--promote") == EXIT_BAD_INPUT
    assert "no fitted model" in capsys.readouterr().err
    assert _listing(home) == before
    assert _retrain(home, run.id, "--data", "new.csv", "--format", "json") == EXIT_OK
    res = json.loads(capsys.readouterr().out)
    assert res["outcome"] == "accepted" and res["version"] is None and res["metrics"]["score"] == 1.0
    with pytest.raises(MlopsNbError, match="no saved model"):
        mnb.load_model(res["run_id"], home=home)


def test_reproduce_gates(tracked, capsys):
    tracked.run("f1 = 0.8")
    (run,) = _runs(tracked)
    home = str(tracked.tracker.home)
    assert main(["--home", home, "reproduce", run.id, "--gate", "f1>=0.75"]) == EXIT_OK
    assert main(["--home", home, "reproduce", run.id, "--gate", "f1>0.8"]) == 3
    assert "gate FAIL: f1 = 0.8, needs > 0.8" in capsys.readouterr().err
    assert main(["--home", home, "reproduce", run.id, "--gate", "auc>0.5"]) == EXIT_BAD_INPUT
    assert main(["--home", home, "reproduce", run.id, "--gate", "f1 ≥ 0.5"]) == EXIT_BAD_INPUT
    assert main(["--home", home, "reproduce", run.id, "--no-worse-than", "0.1"]
                ) == EXIT_BAD_INPUT


def test_the_promoted_model_is_put_in_place_of_every_fit():
    from mlops_nb.champion import MARKER, substituted_script

    source = "\n".join([
        '"""doc"""', "_mnb_MODELS = ['scaler', 'clf']", "def helper():\n    clf = 1",
        MARKER + "; the notebook's cells", "from sklearn.svm import SVC",
        "clf = SVC().fit(X, y)", "score = clf.score(X, y)",
        "for c in (1, 2):\n    clf.set_params(C=c)\n    clf.fit(X, y)\n    s = clf.predict(X)",
        "with open('f') as fh:\n    clf, other = make()", "print(clf.predict(X))"])
    code, name = substituted_script(source, Path("/tmp/m o'del"))
    assert name == "clf"
    lines = code.splitlines()
    subs = [i for i, line in enumerate(lines) if line.strip() == "clf = _mnb_champion(clf)"]
    after = [lines[i - 1].strip() for i in subs]
    assert after == ["clf = SVC().fit(X, y)", "clf.set_params(C=c)", "clf.fit(X, y)",
                     "clf, other = make()"]
    assert "_mnb_CHAMPION_PATH = \"/tmp/m o'del\"" in code
    assert "def helper():\n    clf = 1\n" in code  # the support code is left alone
    with pytest.raises(MlopsNbError, match="fits no model"):
        substituted_script("_mnb_MODELS = []\n" + MARKER + "\nx = 1", Path("m"))


def test_a_refit_after_the_substitution_never_touches_the_promoted_model(tmp_path):
    """`clf = Model()` then `clf.fit(...)`: the metric is the promoted model's own."""
    import hashlib

    from sklearn.linear_model import LogisticRegression

    from mlops_nb.champion import MARKER, substituted_script
    from mlops_nb.models import serialize

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    promoted = LogisticRegression(C=0.001).fit(X[:, ::-1], 1 - y)  # a different model
    fmt, payload = serialize(promoted)
    path = tmp_path / "promoted.model"
    path.write_bytes(payload)
    Path(str(path) + ".json").write_text(json.dumps(
        {"format": fmt, "sha256": hashlib.sha256(payload).hexdigest(), "trusted": False}))
    source = "\n".join(["_mnb_MODELS = ['clf']", MARKER,
                        "from sklearn.linear_model import LogisticRegression",
                        "clf = LogisticRegression(C=100.0)", "clf.fit(X, y)",
                        "coef = clf.coef_.copy()\nacc = clf.score(X, y)"])
    code, _ = substituted_script(source, path)
    ns = {"X": X, "y": y}
    exec(compile(code, "evaluate_promoted.py", "exec"), ns)
    assert np.array_equal(ns["coef"], promoted.coef_)
    assert ns["acc"] == promoted.score(X, y)


@pytest.mark.slow  # three fresh training processes
def test_no_worse_than_judges_the_promoted_model_on_the_new_data(trained, capsys):
    from sklearn.metrics import f1_score

    from mlops_nb.models import promote, promote_run, save_version

    sh, run = trained
    home = str(sh.tracker.home)
    logged = _runs(sh)[-1]
    promote_run(logged.id, "clf", home=home)
    # reproduce: the promoted model (the same fit) on the run's own script and data ties it
    assert main(["--home", home, "reproduce", run.id, "--no-worse-than", "0"]) == EXIT_OK
    err = capsys.readouterr().err
    assert f"gate PASS: f1: {run.metrics['f1']!r} vs {run.metrics['f1']!r} (the promoted " \
           "model, re-evaluated on the same data" in err
    hard = _frame(seed=12)
    flip = np.random.default_rng(13).random(len(hard)) < 0.3  # noisier labels: every model
    hard.loc[flip, "y"] = 1 - hard.loc[flip, "y"]  # scores lower here than it did before
    hard.to_csv("hard.csv", index=False)
    margin = 0.05
    assert _retrain(home, run.id, "--data", "hard.csv", "--no-worse-than", str(margin),
                    "--format", "json") in (EXIT_OK, 3)
    res = json.loads(capsys.readouterr().out)
    assert res["reference_source"] == "re-evaluated", res["problems"]
    # the reference is the promoted model's f1 on the new data's evaluation rows, as the
    # script computes it: same features, same split
    model = mnb.load_model("promoted", "clf", home=home)
    X = pd.get_dummies(hard[["x1", "x2", "color"]], columns=["color"]).astype(float)
    expected = f1_score(hard.y[300:], model.predict(X[300:]))
    assert res["reference_metrics"]["f1"] == pytest.approx(expected)
    recorded = run.metrics["f1"]
    candidate = res["metrics"]["f1"]
    assert candidate < recorded - margin  # against the recorded value it would have failed
    gate = next(g for g in res["gates"] if g["metric"] == "f1")
    assert gate["passed"] == (candidate >= expected - margin)
    assert "re-evaluated on the same data" in gate["detail"]
    assert res["outcome"] == ("accepted" if all(g["passed"] for g in res["gates"])
                              else "gate_failed")
    # a promoted model that may not be loaded here (a pickle, untrusted): the recorded
    # metrics, and the result says so
    other = save_version(home, logged.id, "clf", {"not": "sklearn"})
    promote(home, other)
    assert _retrain(home, run.id, "--data", "hard.csv", "--no-worse-than", "1",
                    "--format", "json") == EXIT_OK
    res = json.loads(capsys.readouterr().out)
    assert res["reference_source"] == "recorded"
    assert any("could not be re-evaluated" in p and "trusted" in p for p in res["problems"])
    assert res["reference_metrics"] == logged.metrics  # the promoted version's run


@pytest.mark.parametrize("arr", [
    np.random.default_rng(0).normal(size=(300, 4)),
    np.repeat(np.arange(5), [50, 40, 30, 20, 10]),
    np.array([True] * 30 + [False] * 10),
    np.where(np.random.default_rng(1).random(500) < 0.1, np.nan, 1.0),
    np.random.default_rng(2).integers(0, 1000, size=(25_000, 2)),
], ids=["floats", "labels", "bools", "nans", "sampled-ints"])
def test_numeric_array_profile_is_the_pandas_one_without_pandas(arr, monkeypatch):
    from mlops_nb.validation import profile as prof

    fast = prof.profile(arr)
    monkeypatch.setattr(prof, "_numeric_array", lambda obj: None)  # the DataFrame path
    assert fast == prof.profile(arr)


def test_profiling_a_numpy_array_does_not_import_pandas():
    code = ("import sys, numpy as np\n"
            "from mlops_nb.validation.profile import profile\n"
            "p = profile(np.arange(12.0).reshape(6, 2))\n"
            "assert p['columns_total'] == 2 and 'pandas' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_validate_against_a_raw_file_the_run_read_and_dates_as_it_had_them(tracked, capsys):
    """A run that read two files inside a helper function and profiled only the frame it
    built from them: `--name` picks either file, profiled now from the file itself, as long
    as it still holds what the run read. A date column the run parsed (`parse_dates=`) is
    text in a new CSV: parsed, it is no schema error."""
    frame = _frame()
    frame["day"] = pd.date_range("2024-01-01", periods=len(frame), freq="h").astype(str)
    frame.to_csv("raw.csv", index=False)
    pd.DataFrame({"color": ["red", "green", "blue"], "w": [1.0, 2.0, 3.0]}).to_csv(
        "colors.csv", index=False)
    tracked.run("import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
                "def load():\n"
                "    df = pd.read_csv('raw.csv', parse_dates=['day'])\n"
                "    return df.merge(pd.read_csv('colors.csv'), on='color')\n"
                "data = load()")
    tracked.run("X = data[['x1', 'x2', 'w']]\n"
                "clf = LogisticRegression().fit(X, data.y)\n"
                "accuracy = clf.score(X, data.y)")
    run = _runs(tracked)[-1]
    home = str(tracked.tracker.home)
    _frame(shift=2.0, seed=1).assign(day=frame["day"]).to_csv("new.csv", index=False)
    capsys.readouterr()
    assert main(["--home", home, "validate", run.id, "--data", "new.csv"]) == EXIT_BAD_INPUT
    assert "or a file it read: 'raw.csv', 'colors.csv'" in capsys.readouterr().err
    assert main(["--home", home, "validate", run.id, "--data", "new.csv", "--name",
                 "raw.csv", "--format", "json"]) == EXIT_FAILED
    report = json.loads(capsys.readouterr().out)
    assert not [f for f in report["findings"] if f["severity"] == "error"], report["findings"]
    assert "x1" in report["drifted"] and "x2" not in report["drifted"]
    # the same file is clean against itself; the profiled frame's date column is a date
    assert main(["--home", home, "validate", run.id, "--data", "raw.csv", "--name",
                 "raw.csv"]) == EXIT_OK
    assert main(["--home", home, "validate", run.id, "--data", "raw.csv", "--name",
                 "data"]) == EXIT_FAILED  # `data` has the merged column `w`: missing here
    out = capsys.readouterr().out
    assert "column 'w' is missing" in out and "'day'" not in out.split("drift")[0]
    # a file changed since the run read it is no reference
    frame.head(10).to_csv("raw.csv", index=False)
    assert main(["--home", home, "validate", run.id, "--data", "new.csv", "--name",
                 "raw.csv"]) == EXIT_BAD_INPUT
    assert "changed since the run read it" in capsys.readouterr().err


FIT_ONLY = """\
X = pd.get_dummies(df[["x1", "x2", "color"]], columns=["color"]).astype(float)
clf = LogisticRegression(C=C).fit(X[:300], df.y[:300])
"""


def _versions(sh):
    from mlops_nb.models import list_versions

    return {v["name"]: v for v in list_versions(sh.tracker.home)}


def test_a_model_logged_the_cell_after_its_run_is_that_runs_version(tracked, capsys):
    """Fit and score in one cell, `mnb.log_model` in the next: the version is the run's, so
    `models` shows its metrics and `validate promoted` has its data, not the logging cell's
    (which measured nothing: `validate` and `retrain` of it were refused)."""
    _frame().to_csv("train.csv", index=False)
    tracked.run(TRAIN)
    tracked.run("C = 1.0")
    tracked.run(FIT)
    (run,) = _runs(tracked)
    tracked.run("import mlops_nb as mnb\nmnb.log_model(clf, 'clf')")
    tracked.flush()
    assert _versions(tracked)["clf"]["run_id"] == run.id
    home = str(tracked.tracker.home)
    mnb.promote(run.id, "clf", home=home)
    assert main(["--home", home, "models"]) == EXIT_OK
    assert "f1=" in capsys.readouterr().out
    _frame(seed=5).to_csv("new.csv", index=False)
    assert main(["--home", home, "validate", "promoted", "--data", "new.csv",
                 "--name", "df"]) != EXIT_BAD_INPUT
    assert f"against run {run.id[:12]}" in capsys.readouterr().out
    # refitted since, with nothing scored: no run measured this model, it stays the cell's
    tracked.run("clf.fit(X, df.y)")
    tracked.run("mnb.log_model(clf, 'refit')")
    tracked.flush()
    log = StoreReader(home).session_log(tracked.tracker.session)
    assert _versions(tracked)["refit"]["run_id"] == log[-1].id != run.id


def test_save_models_saves_the_model_a_scoring_run_measured_from_its_lineage(tracked):
    _frame().to_csv("train.csv", index=False)
    tracked.run("%track on --experiment test --save-models")
    tracked.run(TRAIN)
    tracked.run("C = 0.25")
    tracked.run(FIT_ONLY)
    tracked.run("f1 = f1_score(df.y[300:], clf.predict(X[300:]))")
    (run,) = _runs(tracked)
    model = mnb.load_model(run.id, "clf", home=tracked.tracker.home)
    assert model.C == 0.25


def test_validating_the_runs_own_csv_is_clean_with_zoned_times_and_categories(tracked, capsys):
    """A CSV has no zone-aware time or category type: the run's own file, validated against
    the frame it became (times over a DST change, a category column), was a schema error."""
    frame = pd.DataFrame({"when": pd.date_range("2024-03-30", periods=96, freq="h",
                                                tz="Europe/Paris"),
                          "plan": np.resize(["free", "pro", "team"], 96),
                          "x": np.arange(96.0)})
    frame.to_csv("ts.csv", index=False)
    tracked.run("import pandas as pd\ndf = pd.read_csv('ts.csv')\n"
                "df['when'] = pd.to_datetime(df['when'], utc=True).dt.tz_convert('Europe/Paris')\n"
                "df['plan'] = df['plan'].astype('category')\nscore = df['x'].mean()")
    (run,) = _runs(tracked)
    assert str(run.effective_data["df"]["dtypes"]["when"]).endswith("Europe/Paris]")
    home = str(tracked.tracker.home)
    capsys.readouterr()
    assert main(["--home", home, "validate", run.id, "--data", "ts.csv", "--name", "df",
                 "--format", "json"]) == EXIT_OK, capsys.readouterr()
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] == []
    shifted = frame.assign(when=frame["when"].dt.tz_convert("UTC"))
    findings = mnb.validate(run.id, shifted, name="df", home=home).findings
    assert [(f.column, f.check) for f in findings] == [("when", "dtype")]  # a zone is said


FIT_AND_LOG = FIT + "mnb.log_model(clf, 'clf')\n"


@pytest.mark.slow  # several fresh training processes
def test_a_run_that_logs_its_model_exports_reproduces_and_retrains(tracked, capsys):
    """The README's way to version a model, `mnb.log_model(clf, 'clf')` in the scoring cell:
    its train.py failed (`'Tracking' object has no attribute 'log_model'`), so the run could
    not be reproduced (NOT reproduced) nor retrained (SCRIPT_FAILED)."""
    _frame().to_csv("train.csv", index=False)
    tracked.run(TRAIN)
    tracked.run("import mlops_nb as mnb\nC = 1.0")
    tracked.run(FIT_AND_LOG)
    (run,) = _runs(tracked)
    tracked.flush()
    home = str(tracked.tracker.home)
    assert _versions(tracked)["clf"]["run_id"] == run.id
    assert main(["--home", home, "reproduce", run.id]) == EXIT_OK, capsys.readouterr()
    capsys.readouterr()
    before = [v for v in _listing(home) if not v[0].startswith(("verdicts", "index"))]
    # the replay's --save-model writes the model the cell logged
    assert main(["--home", home, "export", run.id, "-o", "exp"]) == EXIT_OK
    out = subprocess.run([sys.executable, "exp/train.py", "--save-model", "m.bin",
                          "--output-dir", "o"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(Path("m.bin.json").read_text())["class"].endswith("LogisticRegression")
    assert [v for v in _listing(home) if not v[0].startswith(("verdicts", "index"))] == before
    _frame(seed=5).to_csv("new.csv", index=False)
    capsys.readouterr()
    assert _retrain(home, run.id, "--data", "new.csv", "--promote", "--format", "json"
                    ) == EXIT_OK, capsys.readouterr()
    res = json.loads(capsys.readouterr().out)
    assert res["outcome"] == "promoted" and res["version"]
    from mlops_nb.models import promoted

    assert promoted(home)["clf"]["run_id"] == res["run_id"]


def test_every_public_name_replays_in_an_export_and_none_touches_the_store(tmp_path, capsys):
    """What a replayed cell gets for each public `mlops_nb` name: tracking logs into the
    script, `log_model` notes the model, store calls do nothing (said once on stderr), and
    `get_run`/`load_model`, which have nothing to return, raise `mnb.MlopsNbError`."""
    from mlops_nb.exporting import support

    replay = support.Tracking()
    missing = [n for n in mnb.__all__ if not hasattr(replay, n)]
    assert missing == []
    model = object()
    assert replay.log_model(model, "clf") is model and replay.models == {"clf": model}
    for fn in ("promote", "validate", "retrain", "export", "reproduce", "compare",
               "sync_mlflow"):
        assert getattr(replay, fn)("ab12", "clf", home=str(tmp_path)) is None
        getattr(replay, fn)("ab12")
    assert len(replay.runs()) == 0
    err = capsys.readouterr().err
    assert err.count("mnb.promote(...) is not replayed") == 1 and "mnb.runs(...)" in err
    for fn in (replay.get_run, replay.load_model):
        with pytest.raises(replay.MlopsNbError, match="never reads"):
            fn("promoted")
    with replay.start("x") as started:
        assert isinstance(started, replay.Tracking)
    assert list(tmp_path.iterdir()) == []


def test_one_blank_cell_in_an_integer_column_is_a_null_note_not_drift(trained, capsys):
    """The training CSV with one blank cell in an integer column: pandas reads the column as
    float, whose values (`1.0`) never matched the profile's labels (`1`), so every value was
    an unseen category: chi2 statistic 1e7, psi 16, DRIFT (exit 1). Now: clean, a note."""
    sh, run = trained
    home = str(sh.tracker.home)
    df = pd.read_csv("train.csv")
    df["y"] = df["y"].astype(object)
    df.loc[7, "y"] = None
    df.to_csv("blank.csv", index=False)
    capsys.readouterr()
    assert main(["--home", home, "validate", run.id, "--data", "blank.csv", "--format",
                 "json"]) == EXIT_OK, capsys.readouterr().out
    out = json.loads(capsys.readouterr().out)
    assert out["drifted"] == [] and out["ok"]
    assert [(f["column"], f["check"], f["severity"]) for f in out["findings"]] == [
        ("y", "null_rate", "note")]
    # in memory, a nullable Int64 column with one pd.NA: the same
    frame = pd.read_csv("train.csv").astype({"y": "Int64"})
    frame.loc[7, "y"] = pd.NA
    report = mnb.validate(run.id, frame, name="df", home=home)
    assert report.ok and not report.drifted
    # a value that is no integer the run saw is still counted, as "(other)"
    frame.loc[:40, "y"] = 7
    assert "y" in mnb.validate(run.id, frame, name="df", home=home).drifted


def test_a_few_integers_column_recorded_as_floats_matches_integers_by_value():
    from mlops_nb.validation import compare_frame
    from mlops_nb.validation.drift import Thresholds
    from mlops_nb.validation.profile import profile

    visits = np.random.default_rng(0).poisson(3, 3000).astype(float)
    visits[3] = np.nan  # the run's own file had a blank cell: recorded as 1.0, 2.0...
    prof = profile(pd.DataFrame({"visits": visits}))
    assert prof["columns"]["visits"]["discrete"]
    new = pd.DataFrame({"visits": np.nan_to_num(visits).astype(np.int64)})
    report = compare_frame("a" * 32, "df", prof, new, Thresholds())
    (d,) = report.drift
    assert d.test == "chi2" and not d.drifted and d.psi < 0.01


def test_infinite_values_are_counted_in_drift_and_an_all_infinite_column_is_an_error():
    """Drift kept only finite values: half of a column turned `inf` was no drift, and an
    all-inf column was no schema error (an all-null one is). Now the shares of -inf/+inf
    are compared with the reference's."""
    from mlops_nb.validation import compare_frame
    from mlops_nb.validation.drift import Thresholds
    from mlops_nb.validation.profile import profile

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"income": rng.normal(5e4, 1.5e4, 3000), "x": rng.normal(size=3000)})
    prof = profile(df)

    def check(ref, new):
        return compare_frame("a" * 32, "df", ref, new, Thresholds())

    half = df.assign(income=np.where(np.arange(3000) % 2, np.inf, df.income))
    report = check(prof, half)
    assert report.drifted == ["income"]
    assert "infinite: 50.0% of values, was 0.0%" in report.summary()
    everything = check(prof, df.assign(income=np.inf))
    assert [(f.column, f.check, f.severity) for f in everything.findings] == [
        ("income", "finite", "error")]
    assert check(prof, df).ok
    # a reference that had infinities: the same share is clean (and in range), a new one not
    ref = profile(df.assign(income=np.where(np.arange(3000) % 10, df.income, np.inf)))
    assert ref["columns"]["income"]["posinf_fraction"] == 0.1
    same = df.assign(income=np.where(np.arange(3000) % 10 == 3, np.inf, df.income))
    assert check(ref, same).ok
    assert check(ref, half).drifted == ["income"]


def _promote_trained(sh, run):
    home = str(sh.tracker.home)
    sh.flush()
    promoted_run = _versions(sh)["clf"]["run_id"]
    mnb.promote(promoted_run, "clf", home=home)
    _frame(seed=5).to_csv("new.csv", index=False)
    return home, promoted_run


def test_beat_noise_without_measured_noise_is_bad_input_before_training(trained, capsys,
                                                                        monkeypatch):
    """`retrain --beat-noise` with no `reproduce --seeds` of the promoted run was the gate
    `--no-worse-than 0`: a tie passed (exit 0)."""
    from mlops_nb import retraining

    sh, run = trained
    home, promoted_run = _promote_trained(sh, run)
    before = _listing(home)
    monkeypatch.setattr(retraining, "run_script", _never_trains)
    assert _retrain(home, run.id, "--data", "new.csv", "--beat-noise") == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "no noise measured" in err and f"reproduce {promoted_run[:12]} --seeds" in err
    assert _listing(home) == before


def _never_trains(*_args, **_kwargs):
    raise AssertionError("the training script ran")


def test_retrain_refuses_two_files_for_one_and_another_format_up_front(trained, capsys,
                                                                       monkeypatch):
    """`--data a.csv --data b.csv` for a one-file run: the second silently won. A parquet
    or tsv file passed validate, then the script read it with read_csv: SCRIPT_FAILED."""
    from mlops_nb import retraining

    sh, run = trained
    home = str(sh.tracker.home)
    monkeypatch.setattr(retraining, "run_script", _never_trains)
    _frame(seed=5).to_csv("a.csv", index=False)
    _frame(seed=6).to_csv("b.csv", index=False)
    assert _retrain(home, run.id, "--data", "a.csv", "--data", "b.csv") == EXIT_BAD_INPUT
    assert "two files for the run's 'train.csv' ('a.csv' and 'b.csv')" in capsys.readouterr().err
    _frame(seed=5).to_parquet("new.parquet")
    _frame(seed=5).to_csv("new.tsv", sep="\t", index=False)
    _frame(seed=5).to_parquet("parquet_named.csv")
    for name, fmt in (("new.parquet", "parquet"), ("new.tsv", "tsv"),
                      ("parquet_named.csv", "parquet")):
        assert _retrain(home, run.id, "--data", name) == EXIT_BAD_INPUT
        assert f"is {fmt}, but the run read 'train.csv' as csv" in capsys.readouterr().err
    assert retraining.table_format("x.csv.gz") == "csv"


def test_retrain_on_a_read_only_store_says_so_before_training(trained, capsys, monkeypatch):
    """A read-only store: the retrain trained to the end, then a traceback (the error masked
    by OSError EROFS from the writer's close). Now one line, exit 2, nothing run. (As in the
    reliability battery where no mount is allowed, read-only is simulated at fsync.)"""
    import errno

    from mlops_nb import retraining

    sh, run = trained
    home = str(sh.tracker.home)
    sh.flush()
    _frame(seed=5).to_csv("new.csv", index=False)
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.realpath(f"/proc/self/fd/{fd}").startswith(os.path.realpath(home)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_fsync(fd)

    calls = []
    real_run = retraining.run_script
    monkeypatch.setattr(retraining, "run_script", lambda *a, **k: calls.append(1) or real_run(
        *a, **k))
    monkeypatch.setattr(os, "fsync", fsync)
    before = _listing(home)
    assert _retrain(home, run.id, "--data", "new.csv") == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "cannot be written" in err and "Read-only file system" in err
    assert len(err.strip().splitlines()) == 1 and calls == []
    assert _listing(home) == before


def test_bad_timeouts_and_unknown_gate_metrics_are_bad_input_before_anything_runs(
        trained, capsys, monkeypatch):
    """`retrain --timeout -1` was SCRIPT_FAILED; `reproduce --gate auc>=0.5` ran the whole
    reproduction, then exited 2."""
    from mlops_nb import reproduction, retraining

    sh, run = trained
    home = str(sh.tracker.home)
    _frame(seed=5).to_csv("new.csv", index=False)
    monkeypatch.setattr(retraining, "run_script", _never_trains)
    for bad in ("-1", "0", "nan"):
        with pytest.raises(SystemExit) as exc:
            _retrain(home, run.id, "--data", "new.csv", "--timeout", bad)
        assert exc.value.code == EXIT_BAD_INPUT
    with pytest.raises(MlopsNbError, match="timeout"):
        mnb.retrain(run.id, "new.csv", home=home, timeout=-1, progress=False)
    # nor is a watch every -1 s (it was accepted: "watching for new runs every -1 s")
    with pytest.raises(SystemExit) as exc:
        main(["--home", home, "sync", "mlflow", "--watch", "--interval", "-1",
              "--tracking-uri", "http://127.0.0.1:9"])
    assert exc.value.code == EXIT_BAD_INPUT
    monkeypatch.setattr(reproduction, "_run_script", _never_trains)
    assert main(["--home", home, "export", run.id, "-o", "exp"]) == EXIT_OK
    for target in (run.id, "exp"):
        assert main(["--home", home, "reproduce", target, "--gate", "auc>=0.5"]
                    ) == EXIT_BAD_INPUT
        assert "unknown" in capsys.readouterr().err


@pytest.mark.slow  # real training processes, stopped by signals
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_retrain_stops_its_training_script_and_cleans_up(tracked, tmp_path, sig,
                                                                     code):
    """SIGTERM to `mlops-nb retrain` left train.py running (until --timeout) and its
    mlops-nb-retrain-* folder behind; SIGINT printed a KeyboardInterrupt traceback."""
    run, home = _slow_fit_run(tracked)
    tracked.flush()
    _frame(seed=9).to_csv("new.csv", index=False)
    before = _listing(home)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "MNB_SLOW_FIT": "1", "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_nb.cli", "--home", home, "retrain", run.id, "--data",
         "new.csv", "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.time() + 120
        children = []
        while time.time() < deadline and not children:
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                      text=True).stdout.split()
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"retrain stopped by {sig.name}" in err
    time.sleep(0.2)
    assert [c for c in children if Path(f"/proc/{c}").exists()] == []
    assert list(tmp.iterdir()) == []
    assert _listing(home) == before


def test_a_repeated_csv_header_and_a_one_row_file_are_findings(trained, capsys):
    """A CSV whose header repeats `x1` was reported as "column 'x1.1' is new" (pandas renames
    it); a one-row file was "clean"."""
    sh, run = trained
    home = str(sh.tracker.home)
    df = _frame(seed=3)
    with open("dup.csv", "w", encoding="utf-8") as fh:
        fh.write("x1,x2,color,y,x1\n")
        for r in df.itertuples(index=False):
            fh.write(f"{r.x1},{r.x2},{r.color},{r.y},{r.x1}\n")
    assert main(["--home", home, "validate", run.id, "--data", "dup.csv"]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "column 'x1' appears more than once" in out and "x1.1" not in out
    df.head(1).to_csv("one.csv", index=False)
    assert main(["--home", home, "validate", run.id, "--data", "one.csv"]) == EXIT_FAILED
    assert "only 1 row(s): too few to judge drift" in capsys.readouterr().out
