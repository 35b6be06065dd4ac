"""scikit-learn autologging in a real InteractiveShell: every capture path, naming, restore."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_nb.capture import autolog
from mlops_nb.errors import MlopsNbError
from mlops_nb.exporting import export_run
from mlops_nb.reproduction import reproduce
from mlops_nb.store.index import run_model
from mlops_nb.store.reader import StoreReader

DATA = """from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.metrics import accuracy_score, f1_score
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
clf = LogisticRegression(max_iter=300).fit(X_train, y_train)"""



def saved_model(path: Path) -> Any:
    """What `train.py --save-model PATH` wrote, read back as mlops-nb reads model versions
    (skops for scikit-learn, the format and sha256 in PATH.json)."""
    from mlops_nb.models import deserialize

    meta = json.loads(Path(str(path) + ".json").read_text())
    return deserialize(meta["format"], path.read_bytes(), meta["sha256"], trusted=True)

def log_of(sh):
    sh.flush()
    return StoreReader(sh.tracker.home).session_log(sh.tracker.session)


def last_run(sh):
    return [cr for cr in log_of(sh) if cr.is_run and cr.parent is None][-1]


def verify(run, name: str = "exp"):
    out = export_run(run.id, Path.cwd() / name)
    verdict = reproduce(out)
    assert verdict.ok, verdict.summary() + "\n" + verdict.stderr_tail
    return out, verdict


@pytest.fixture
def iris(tracked):
    tracked.run(DATA)
    return tracked


def test_nothing_imported_or_patched_until_tracking_and_sklearn(shell):
    shell.run("%load_ext mlops_nb")
    assert "sklearn" not in sys.modules or autolog.STATE.sink is None
    shell.run("%track on")
    assert autolog.STATE.sink is not None
    shell.run("%track off")
    assert autolog.STATE.sink is None


def test_printed_fstring_and_expression_metrics_named_by_data(iris):
    iris.run('print(f"train {accuracy_score(y_train, clf.predict(X_train)):.3f}")\n'
             'print("test", accuracy_score(y_test, clf.predict(X_test)))\n'
             "clf.score(X_test, y_test)")
    run = last_run(iris)
    acc = iris.ns["accuracy_score"]
    assert run.metrics["accuracy_score_X_train"] == acc(iris.ns["y_train"],
                                                        iris.ns["clf"].predict(iris.ns["X_train"]))
    assert "accuracy_score_X_test" in run.metrics
    assert run.metrics["LogisticRegression_score"] == iris.ns["clf"].score(
        iris.ns["X_test"], iris.ns["y_test"])
    assert run.metric_models["accuracy_score_X_test"] == "clf"


def test_single_use_keeps_the_plain_function_name(iris):
    iris.run("print(f1_score(y_test, clf.predict(X_test), average='macro'))")
    assert set(last_run(iris).metrics) == {"f1_score"}


def test_metrics_not_named_score_are_metrics_too(iris):
    iris.run("from sklearn.metrics import matthews_corrcoef, confusion_matrix\n"
             "print(matthews_corrcoef(y_test, clf.predict(X_test)))\n"
             "print(confusion_matrix(y_test, clf.predict(X_test)))")
    run = last_run(iris)
    assert set(run.metrics) == {"matthews_corrcoef"}
    assert run.metric_models == {"matthews_corrcoef": "clf"}


def test_lambda_comprehension_and_nested_function(iris):
    iris.run("score = lambda m: accuracy_score(y_test, m.predict(X_test))\n"
             "def evaluate(m, X, y):\n    return f1_score(y, m.predict(X), average='micro')\n"
             "print(score(clf))\n"
             "print([evaluate(clf, a, b) for a, b in [(X_train, y_train), (X_test, y_test)]])")
    run = last_run(iris)
    assert "accuracy_score" in run.metrics
    assert {"f1_score_X_train", "f1_score_X_test"} <= set(run.metrics)
    assert run.metrics["f1_score_X_train"] != run.metrics["f1_score_X_test"]


def test_metrics_on_slices_of_the_same_data(iris):
    iris.run("pred = clf.predict(X_test)\n"
             "print(accuracy_score(y_test[:20], pred[:20]))\n"
             "print(accuracy_score(y_test[20:], pred[20:]))")
    run = last_run(iris)
    names = sorted(n for n in run.metrics if n.startswith("accuracy_score"))
    assert names == ["accuracy_score_1", "accuracy_score_2"]
    pred, y_test = iris.ns["pred"], iris.ns["y_test"]
    acc = iris.ns["accuracy_score"]
    assert run.metrics["accuracy_score_1"] == acc(y_test[:20], pred[:20])
    assert run.metrics["accuracy_score_2"] == acc(y_test[20:], pred[20:])


def test_same_call_in_a_range_loop_is_one_metric_with_steps(iris):
    iris.run("for n in range(3):\n    accuracy_score(y_test[n:], clf.predict(X_test)[n:])")
    run = last_run(iris)
    assert list(run.metrics) == ["accuracy_score"]
    assert len(run.metric_steps["accuracy_score"]) == 3


def test_loop_over_parameters_is_one_run_per_iteration_with_its_model(iris):
    iris.run("for C in [0.01, 1.0]:\n"
             "    model = LogisticRegression(C=C, max_iter=300).fit(X_train, y_train)\n"
             "    print(accuracy_score(y_test, model.predict(X_test)))")
    log = log_of(iris)
    kids = [cr for cr in log if cr.parent is not None]
    assert [{n: v for n, v in k.params.items() if "." not in n} for k in kids] == [
        {"C": 0.01}, {"C": 1.0}]
    # each iteration's own model, not the loop's last one the cell's run holds
    assert [k.params["model.C"] for k in kids] == [0.01, 1.0]
    assert [k.estimators["model"]["class"].rsplit(".", 1)[-1] for k in kids] == [
        "LogisticRegression"] * 2
    assert all("accuracy_score" in k.metrics for k in kids)
    assert kids[0].metrics["accuracy_score"] < kids[1].metrics["accuracy_score"]
    assert all(k.metric_models == {"accuracy_score": "model"} for k in kids)
    # --save-model of the first iteration saves ITS model (C=0.01), not the loop's last one
    out, _ = verify(kids[0])
    target = Path.cwd() / "m.pkl"
    subprocess.run([sys.executable, str(out / "train.py"), "--save-model", str(target)],
                   cwd=out, check=True, capture_output=True, timeout=300)
    assert saved_model(target).C == 0.01


def test_a_parameter_grid_loop_through_a_function_is_a_run_per_setting(iris):
    """`for params in ParameterGrid(grid): auc = evaluate(params, df)`: the loop was not a
    sweep (its variable reaches a model only as `**params` inside the function), so one run
    held the last setting's last fold. And the metric the notebook prints, the mean over
    folds it binds to `auc`, is no call autolog sees: it is read per iteration."""
    iris.run("import numpy as np\n"
             "from sklearn.model_selection import ParameterGrid, KFold\n"
             "def evaluate(params):\n"
             "    accs = []\n"
             "    for tr, va in KFold(3, shuffle=True, random_state=0).split(X):\n"
             "        m = LogisticRegression(**params, max_iter=500).fit(X[tr], y[tr])\n"
             "        accs.append(accuracy_score(y[va], m.predict(X[va])))\n"
             "    return float(np.mean(accs))")
    iris.run("mean_acc = -1.0\n"
             "for params in ParameterGrid({'C': [0.001, 1.0], 'fit_intercept': [True]}):\n"
             "    mean_acc = evaluate(params)\n"
             "    print(params, mean_acc)")
    kids = [cr for cr in log_of(iris) if cr.parent is not None]
    assert [k.params["params"] for k in kids] == [{"C": 0.001, "fit_intercept": True},
                                                  {"C": 1.0, "fit_intercept": True}]
    assert [k.metrics["mean_acc"] for k in kids] == [
        iris.ns["evaluate"]({"C": c, "fit_intercept": True}) for c in (0.001, 1.0)]
    assert kids[0].metrics["mean_acc"] < kids[1].metrics["mean_acc"]
    assert all("accuracy_score" in k.metrics for k in kids)  # the last fold, with its steps
    assert all(next(iter(k.metrics)) == "mean_acc" for k in kids)  # the notebook's first
    _, verdict = verify(kids[0])
    assert verdict.metrics["mean_acc"]["reproduced"] == kids[0].metrics["mean_acc"]


def test_a_sweep_with_no_metric_function_is_a_run_per_iteration(tracked):
    """`for lr in lrs: val_mse = ...` in numpy (or PyTorch): no metric function autolog sees,
    so the loop was one run holding the last value. The recorder makes such loops iterate
    through `loops.sweep` in the kernel, which marks each iteration's end; the notebook's
    code, its tracebacks, `break` and `else` are as written, and a loop over data (more than
    MAX_SWEEP_ITERATIONS items) is no sweep."""
    from mlops_nb.capture import loops

    tracked.run("import numpy as np\nrng = np.random.default_rng(0)\n"
                "X = rng.normal(size=(120, 3))\ny = X @ np.array([1.0, -2.0, 0.5])\n"
                "def train(lr, epochs=30):\n    w = np.zeros(3)\n"
                "    for _ in range(epochs):\n"
                "        w += lr * 2 * X.T @ (y - X @ w) / len(y)\n    return w")
    tracked.run("val_mse = None\n"
                "for lr in [0.001, 0.01, 0.1]:\n    w = train(lr)\n"
                "    val_mse = float(np.mean((y - X @ w) ** 2))\n"
                "    print(f'lr={lr}: {val_mse:.4f}')\n"
                "else:\n    finished = True")
    kids = [cr for cr in log_of(tracked) if cr.parent is not None]
    assert [k.params["lr"] for k in kids] == [0.001, 0.01, 0.1]
    expected = [float(np.mean((tracked.ns["y"] - tracked.ns["X"] @ tracked.ns["train"](lr))
                              ** 2)) for lr in (0.001, 0.01, 0.1)]
    assert [k.metrics["val_mse"] for k in kids] == expected
    assert tracked.ns["finished"] is True
    parent = next(cr for cr in log_of(tracked) if cr.id == kids[0].parent)
    reader = StoreReader(tracked.tracker.home)
    assert "__import__" not in reader.blobs.get_text(parent.code)  # recorded as written
    _, verdict = verify(kids[1])
    assert verdict.metrics["val_mse"]["reproduced"] == expected[1]
    # an error in the body points at the notebook's line; break leaves the loop as ever
    result = tracked.run("for lr in [0.5, 0.25]:\n    val_loss = 1 / (lr - 0.25)\n"
                         "    if lr < 1:\n        pass", check=False)
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert result.error_in_exec.__traceback__.tb_next.tb_lineno == 2
    tracked.run("seen = []\nfor k in [1, 2, 3]:\n    score = k * 0.5\n    seen.append(k)\n"
                "    if k == 2:\n        break")
    assert tracked.ns["seen"] == [1, 2]
    kids = [cr for cr in log_of(tracked) if cr.parent is not None]
    assert [k.metrics["score"] for k in kids[-2:]] == [0.5, 1.0]
    # a loop over data: no run per item
    before = len([cr for cr in log_of(tracked) if cr.parent is not None])
    n = loops.MAX_SWEEP_ITERATIONS + 20
    tracked.run(f"values = [i / 10 for i in range({n})]\ntotal = 0\n"
                "for v in values:\n    score = v * 2\n    total += score")
    log = log_of(tracked)
    assert len([cr for cr in log if cr.parent is not None]) == before
    assert log[-1].metrics == {"score": (n - 1) / 10 * 2}
    assert "total" not in log[-1].params  # an accumulator, not a setting


def test_explicit_log_metric_wins(iris):
    iris.run("import mlops_nb as mnb\n"
             "mnb.log_metric('accuracy_score', 0.5)\n"
             "accuracy_score(y_test, clf.predict(X_test))")
    assert last_run(iris).metrics["accuracy_score"] == 0.5


def test_names_imported_before_tracking_are_swapped_and_restored(shell):
    shell.run("%load_ext mlops_nb")
    shell.run("from sklearn.metrics import accuracy_score\nimport sklearn.metrics as skm\n"
              "from sklearn.linear_model import LogisticRegression")
    original = shell.ns["accuracy_score"]
    fit = shell.ns["LogisticRegression"].fit
    assert not isinstance(original, autolog.MetricWrapper)
    shell.run("%track on")
    assert isinstance(shell.ns["accuracy_score"], autolog.MetricWrapper)
    shell.run("s = accuracy_score([0, 1, 1], [0, 1, 0])")
    assert last_run(shell).metrics["accuracy_score"] == pytest.approx(2 / 3)
    shell.run("%track off")
    import sklearn.metrics
    from sklearn.linear_model import LogisticRegression

    assert shell.ns["accuracy_score"] is original
    assert sklearn.metrics.accuracy_score is original
    assert LogisticRegression.fit is fit
    assert "__init_subclass__" not in vars(sys.modules["sklearn.base"].BaseEstimator)
    assert not any(isinstance(f, autolog.ImportWatcher) for f in sys.meta_path)


def test_unload_restores_every_patch(iris):
    import sklearn.base
    import sklearn.model_selection

    assert isinstance(sklearn.model_selection.cross_val_score, autolog.MetricWrapper)
    iris.run("%unload_ext mlops_nb")
    assert not isinstance(sklearn.model_selection.cross_val_score, autolog.MetricWrapper)
    for cls in (sklearn.base.ClassifierMixin, iris.ns["LogisticRegression"]):
        for name, attr in vars(cls).items():
            assert not hasattr(attr, "__mnb_original__"), (cls, name)
            assert not isinstance(attr, autolog._WrappedDescriptor), (cls, name)


def test_sklearn_imported_in_the_tracked_cell_itself(tracked):
    tracked.run("from sklearn.metrics import mean_squared_error\n"
                "err = 1 + mean_squared_error([1.0, 2.0], [1.5, 2.0])")
    assert last_run(tracked).metrics["mean_squared_error"] == 0.125


def test_cross_validation_mean_std_and_folds(iris):
    iris.run("from sklearn.model_selection import cross_val_score, cross_validate\n"
             "scores = cross_val_score(clf, X, y, cv=4)")
    run = last_run(iris)
    scores = iris.ns["scores"]
    assert run.metrics["cv_accuracy_mean"] == float(scores.mean())
    assert run.metrics["cv_accuracy_std"] == float(scores.std())
    assert run.metric_steps["cv_accuracy_mean"] == [float(s) for s in scores]
    iris.run("res = cross_validate(clf, X, y, cv=3, scoring=['accuracy', 'f1_macro'])")
    run = last_run(iris)
    assert run.metrics["cv_f1_macro_mean"] == float(iris.ns["res"]["test_f1_macro"].mean())
    assert "cv_f1_macro_mean" not in run.metric_models  # CV fits clones: no model behind it


def test_a_cross_validation_mean_bound_in_one_line_is_the_mean(iris):
    """`acc = cross_val_score(...).mean()`: the mean's series takes the name, and the std of
    the same call site followed it there, so `acc` held the folds' std (an export then
    computed the mean and was not reproduced, and `--best acc` chose by the std)."""
    iris.run("from sklearn.model_selection import cross_val_score\n"
             "acc = cross_val_score(clf, X, y, cv=4).mean()")
    run = last_run(iris)
    assert run.metrics["acc"] == iris.ns["acc"]
    assert run.metric_steps["acc"] == [float(s) for s in cross_val_score_of(iris)]
    assert run.metrics["cv_accuracy_std"] == float(cross_val_score_of(iris).std())
    verify(run)


def cross_val_score_of(sh):
    from sklearn.model_selection import cross_val_score

    return cross_val_score(sh.ns["clf"], sh.ns["X"], sh.ns["y"], cv=4)


def test_a_cross_validated_model_is_the_runs_model_with_its_parameters(iris):
    """CV fits clones: the notebook's pipeline stays unfitted, and its run had metrics but no
    model (an empty model column) nor hyper-parameters. It names them now, and neither
    `--save-model` nor the registry takes it for a fitted model."""
    from mlops_nb.store.index import run_model

    iris.run("from sklearn.model_selection import cross_val_score, cross_validate\n"
             "from sklearn.pipeline import make_pipeline\n"
             "from sklearn.preprocessing import StandardScaler\n"
             "from sklearn.ensemble import RandomForestClassifier\n"
             "pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=300))\n"
             "res = cross_validate(pipe, X_train, y_train, cv=3)")
    run = last_run(iris)
    assert run.estimators["pipe"]["cross_validated"] is True
    assert run.estimators["pipe"]["class"] == "sklearn.pipeline.Pipeline"
    assert run.params["pipe.logisticregression__C"] == 0.5
    assert run_model(run) == "Pipeline"
    out, _ = verify(run)
    target = Path.cwd() / "cv.pkl"
    proc = subprocess.run([sys.executable, str(out / "train.py"), "--save-model", str(target)],
                          cwd=out, capture_output=True, text=True, timeout=300, check=False)
    assert "this run cross-validated pipe, and cross-validation fits copies it does not " \
        "keep: no fitted model to save" in proc.stderr and not target.exists()
    # an estimator made in the call has no name: its class stands for it
    iris.run("s = cross_val_score(RandomForestClassifier(n_estimators=7, random_state=0), "
             "X, y, cv=3)")
    run = last_run(iris)
    assert run.params["RandomForestClassifier.n_estimators"] == 7
    assert run_model(run) == "RandomForestClassifier"
    # a model fitted earlier, cross-validated: that model is saved, as the cell that fitted
    # it left it, and no other (the pipeline fitted below is not what the run measured)
    iris.run("pipe.fit(X_train, y_train)\nprint(cross_val_score(clf, X, y, cv=3).mean())")
    run = last_run(iris)
    assert run.estimators["clf"]["cross_validated"] is True, run.estimators
    assert run_model(run) == "LogisticRegression", list(run.estimators)
    out, _ = verify(run, "exp_clf")
    subprocess.run([sys.executable, str(out / "train.py"), "--save-model", str(target)],
                   cwd=out, check=True, capture_output=True, timeout=300)
    assert type(saved_model(target)).__name__ == "LogisticRegression"


def test_validation_and_learning_curves(iris):
    iris.run("from sklearn.model_selection import validation_curve, learning_curve\n"
             "tr, te = validation_curve(clf, X, y, param_name='C', param_range=[0.01, 1], cv=3)\n"
             "sizes, ltr, lte = learning_curve(clf, X, y, cv=3, train_sizes=[0.5, 1.0])")
    run = last_run(iris)
    assert run.metrics["vc_test_accuracy_best"] == max(iris.ns["te"].mean(axis=1))
    assert len(run.metric_steps["vc_test_accuracy_best"]) == 2
    assert run.metrics["lc_test_accuracy_last"] == iris.ns["lte"].mean(axis=1)[-1]


def test_search_best_score_params_and_children(iris, monkeypatch):
    iris.tracker.search_children = 2
    iris.run("from sklearn.model_selection import GridSearchCV\n"
             "grid = GridSearchCV(LogisticRegression(max_iter=300), {'C': [0.01, 0.1, 1]},"
             " cv=3, scoring='f1_macro').fit(X_train, y_train)")
    log = log_of(iris)
    run = [cr for cr in log if cr.is_run and cr.parent is None][-1]
    grid = iris.ns["grid"]
    assert run.metrics["best_cv_f1_macro"] == grid.best_score_
    assert run.params["grid.best_params.C"] == grid.best_params_["C"]
    assert run.metric_models["best_cv_f1_macro"] == "grid"
    assert run.params["grid.cv"] == 3
    kids = [cr for cr in log if cr.parent == run.id]
    assert len(kids) == 2 and kids[0].params == grid.best_params_
    assert kids[0].metrics["mean_test_score"] == grid.best_score_
    assert [k.name for k in kids] == ["grid #1", "grid #2"]
    # tied candidates (one rank for both in scikit-learn): a name each, in their order
    iris.run("tie = GridSearchCV(LogisticRegression(max_iter=300), {'C': [1e-9, 1, 1]},"
             " cv=3).fit(X_train, y_train)")
    log = log_of(iris)
    tied = [cr for cr in log if cr.parent == log[-1].parent and cr.parent is not None]
    assert list(iris.ns["tie"].cv_results_["rank_test_score"]) == [3, 1, 1]
    assert [(k.name, k.params) for k in tied] == [("tie #1", {"C": 1}), ("tie #2", {"C": 1})]
    with pytest.raises(MlopsNbError, match="candidate of a search"):
        export_run(kids[0].id, Path.cwd() / "kid")
    # a search repeated in a loop (trials): the last search's candidates only
    iris.run("for _ in range(3):\n"
             "    s = GridSearchCV(LogisticRegression(max_iter=300), {'C': [0.1, 1]}, cv=3)\n"
             "    s.fit(X_train, y_train)")
    log = log_of(iris)
    run = [cr for cr in log if cr.is_run and cr.parent is None][-1]
    assert len(run.metric_steps["best_cv_accuracy"]) == 3
    assert len([cr for cr in log if cr.parent == run.id]) == 2


def test_classification_report_string_and_dict(iris):
    iris.run("from sklearn.metrics import classification_report\n"
             "print(classification_report(y_test, clf.predict(X_test)))")
    run = last_run(iris)
    rep = iris.ns["classification_report"](iris.ns["y_test"], iris.ns["clf"].predict(
        iris.ns["X_test"]), output_dict=True)
    assert run.metrics["report_accuracy"] == rep["accuracy"]
    assert run.metrics["report_macro_f1"] == rep["macro avg"]["f1-score"]
    assert run.metrics["report_weighted_recall"] == rep["weighted avg"]["recall"]


def test_pipeline_is_the_model_and_fitted_and_saved(iris):
    iris.run("from sklearn.pipeline import make_pipeline\n"
             "from sklearn.preprocessing import StandardScaler\n"
             "from sklearn.svm import LinearSVC\n"
             "pipe = make_pipeline(StandardScaler(), LinearSVC(C=0.5, dual='auto'))\n"
             "pipe.fit(X_train, y_train)\n"
             "print(accuracy_score(y_test, pipe.predict(X_test)))\n"
             "print(hasattr(pipe, 'predict_proba'))")
    run = last_run(iris)
    assert run.metric_models["accuracy_score"] == "pipe"
    assert "pipe" in run.estimators
    assert run.params["pipe.C"] == 0.5 and run.params["pipe.linearsvc__C"] == 0.5
    out, _ = verify(run)
    target = Path.cwd() / "pipe.pkl"
    subprocess.run([sys.executable, str(out / "train.py"), "--save-model", str(target)],
                   cwd=out, check=True, capture_output=True, timeout=300)
    assert type(saved_model(target)).__name__ == "Pipeline"


def test_exported_script_reproduces_autologged_metrics_and_kwarg_options(iris):
    iris.run("from sklearn.ensemble import RandomForestClassifier\n"
             "rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, y_train)\n"
             "print('train', accuracy_score(y_train, rf.predict(X_train)))\n"
             "print('test', accuracy_score(y_test, rf.predict(X_test)))")
    run = last_run(iris)
    assert run.params["rf.n_estimators"] == 5
    out, verdict = verify(run)
    src = (out / "train.py").read_text()
    assert "rf_n_estimators = 5" in src and "n_estimators=rf_n_estimators" in src
    assert "train_test_split_test_size = 0.3" in src
    assert verdict.metrics["accuracy_score_X_test"]["reproduced"] == run.metrics[
        "accuracy_score_X_test"]
    done = subprocess.run([sys.executable, str(out / "train.py"), "--rf-n-estimators", "1"],
                          cwd=out, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_plotting_keywords_are_not_parameters():
    from mlops_nb.capture.analysis import analyze

    a = analyze("import matplotlib.pyplot as plt\n"
                "fig, ax = plt.subplots(figsize=(4, 3))\n"
                "ax.scatter([1], [2], color='red')\n"
                "sns.heatmap(m, cmap='viridis', annot=True)\n"
                "m = Ridge(alpha=0.5)\n")
    assert a.params == {"m.alpha": 0.5}


def test_fitted_models_recognised_by_sklearn(iris):
    from mlops_nb.capture.namespace import is_fitted_estimator

    iris.run("from sklearn.pipeline import Pipeline\n"
             "unfitted = Pipeline([('m', LogisticRegression())])\n"
             "fitted = Pipeline([('m', LogisticRegression(max_iter=300))]).fit(X, y)")
    assert is_fitted_estimator(iris.ns["fitted"])
    assert not is_fitted_estimator(iris.ns["unfitted"])


def test_a_failing_metric_call_still_raises_and_nothing_breaks(iris):
    result = iris.ip.run_cell("accuracy_score([0, 1], [0])", store_history=True)
    assert isinstance(result.error_in_exec, ValueError)
    iris.run("ok = accuracy_score([0, 1], [0, 1])")
    assert last_run(iris).metrics["accuracy_score"] == 1.0


def test_wrapped_metric_pickles_as_the_original(iris):
    from sklearn.metrics import make_scorer

    iris.run("from sklearn.metrics import make_scorer\nsc = make_scorer(accuracy_score)")
    restored = pickle.loads(pickle.dumps(iris.ns["sc"]))
    assert restored._score_func is sys.modules["sklearn.metrics"].accuracy_score.original
    assert make_scorer is not None
    # loaded where mlops-nb is not installed (a model served elsewhere): nothing of it inside
    loaded = subprocess.run(
        [sys.executable, "-c", "import pickle, sys; sys.modules['mlops_nb'] = None\n"
         "sc = pickle.loads(sys.stdin.buffer.read()); print(sc._score_func.__module__)"],
        input=pickle.dumps(iris.ns["sc"]), capture_output=True, timeout=120, check=False)
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert loaded.stdout.decode().strip() == "sklearn.metrics._classification"


def test_halving_search_defined_after_patching_is_logged(iris):
    iris.run("from sklearn.experimental import enable_halving_search_cv  # noqa\n"
             "from sklearn.model_selection import HalvingGridSearchCV\n"
             "halving = HalvingGridSearchCV(LogisticRegression(max_iter=300),"
             " {'C': [0.01, 0.1, 1, 10]}, cv=3, random_state=0)\n"
             "halving.fit(X_train, y_train)")
    run = last_run(iris)
    assert run.metrics["best_cv_accuracy"] == iris.ns["halving"].best_score_
    assert run.metric_models["best_cv_accuracy"] == "halving"


def test_explicit_cell_is_patched_only_while_it_runs(shell):
    shell.run("%load_ext mlops_nb")
    shell.run("from sklearn.metrics import r2_score")
    original = shell.ns["r2_score"]
    shell.run("%%track --name r2\nprint(r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 2.5]))")
    assert shell.ns["r2_score"] is original and autolog.STATE.sink is None
    run = last_run(shell)
    assert run.name == "r2" and run.metrics["r2_score"] == original([1.0, 2.0, 3.0],
                                                                   [1.0, 2.0, 2.5])


# -- one metric per value the cell named (issue 7, duplicates) ---------------------------------
def test_score_bound_to_a_metric_name_is_recorded_once_under_that_name(iris):
    iris.run("from sklearn.linear_model import Ridge\n"
             "reg = Ridge().fit(X_train, y_train)\n"
             "r2_score = reg.score(X_test, y_test)\n"
             "accuracy = accuracy_score(y_test, clf.predict(X_test))")
    run = last_run(iris)
    assert set(run.metrics) == {"r2_score", "accuracy"}
    assert run.metrics["r2_score"] == iris.ns["r2_score"]
    assert run.metric_models == {"r2_score": "reg", "accuracy": "clf"}
    verify(run)


@pytest.mark.parametrize("magic", ["%%time\n", "%%capture cap\n", "%%timeit -n1 -r1\n",
                                   "%%track --metric test_acc\n"])
def test_a_metric_bound_in_a_magic_body_is_recorded_once(iris, magic):
    """A magic's body is compiled on its own, numbered from its first line: where the cell's
    lines were read, the magic line shifted them by one and `test_acc = accuracy_score(...)`
    was recorded twice, as `test_acc` and as `accuracy_score`. (`%%timeit` binds its body's
    names in a function of its own: `test_acc` is the one the cell before bound.)"""
    body = ("pred = clf.predict(X_test)\n"
            "test_acc = accuracy_score(y_test, pred)\n"
            "print(f'accuracy {test_acc:.3f}')")
    if "timeit" in magic:
        iris.run(body)
    iris.run(magic + body)
    run = last_run(iris)
    if "timeit" in magic:  # it bound no `test_acc` of the notebook's: the call is the metric
        assert run.metrics == {"accuracy_score": iris.ns["test_acc"]}
        assert "test_acc" not in run.defs and "pred" not in run.defs
        iris.run("acc_again = test_acc")  # depends on the cell that bound it, not %%timeit
        later = last_run(iris)
        assert run.id not in later.deps and len(later.deps) == 1
        return
    assert run.metrics == {"test_acc": iris.ns["test_acc"]}
    assert run.metric_models == {"test_acc": "clf"}
    if "track" not in magic:
        verify(run)


def test_a_metric_bound_on_a_time_line_is_recorded_once(iris):
    """`%time x = ...` runs its statement as code of its own (line 1), several in a cell."""
    iris.run("pred = clf.predict(X_test)\n"
             "%time test_acc = accuracy_score(y_test, pred)\n"
             "%time test_f1 = f1_score(y_test, pred, average='macro')\n"
             "print(accuracy_score(y_train, clf.predict(X_train)))")
    run = last_run(iris)
    assert set(run.metrics) == {"test_acc", "test_f1", "accuracy_score_X_train"}
    assert run.metrics["test_acc"] == iris.ns["test_acc"]
    verify(run)


def test_precision_recall_fscore_support_is_a_metric_per_part(iris):
    """It returns a tuple, and its name ends in no `_score`: no run at all. Its parts are
    metrics named as it documents them (`f1` at beta 1); the support is a count. Per class
    with `average=None`; bound to metric-named variables, recorded once under theirs."""
    iris.run("from sklearn.metrics import precision_recall_fscore_support\n"
             "from sklearn.ensemble import RandomForestClassifier\n"
             "yb_train, yb_test = (y_train == 1).astype(int), (y_test == 1).astype(int)\n"
             "rf = RandomForestClassifier(n_estimators=5, max_depth=1, random_state=0)"
             ".fit(X_train, yb_train)")
    iris.run("p, r, f, _ = precision_recall_fscore_support(yb_test, rf.predict(X_test),"
             " average='binary')")
    run = last_run(iris)
    ns = iris.ns
    assert run.metrics == {"precision": ns["p"], "recall": ns["r"], "f1": ns["f"]}
    assert run.metric_models == {"precision": "rf", "recall": "rf", "f1": "rf"}
    _, verdict = verify(run, "binary")
    assert verdict.metrics["recall"]["reproduced"] == ns["r"]
    iris.run("out = precision_recall_fscore_support(y_test, clf.predict(X_test), beta=2.0)")
    run = last_run(iris)
    assert set(run.metrics) == {f"{m}_{c}" for m in ("precision", "recall", "fbeta_score")
                                for c in (0, 1, 2)}
    assert run.metrics["recall_2"] == ns["out"][1][2]
    verify(run, "per_class")
    iris.run("import numpy as np\ntarget_names = ['setosa', 'versicolor', 'virginica']\n"
             "named = precision_recall_fscore_support(np.take(target_names, y_test),"
             " np.take(target_names, clf.predict(X_test)))")
    assert "f1_virginica" in last_run(iris).metrics
    iris.run("macro_precision, macro_recall, macro_f1, _ = precision_recall_fscore_support("
             "yb_test, rf.predict(X_test), average='macro')")
    run = last_run(iris)
    assert run.metrics == {n: ns[n] for n in ("macro_precision", "macro_recall", "macro_f1")}


def test_scoring_a_model_fitted_in_an_earlier_cell_has_its_model(iris, capsys):
    """`final` fitted in one cell and scored in the next: the run had no model (`model` NaN,
    named just "run") though its metrics name `final`. Its class comes with the lineage, in
    the record, so the index is the same whether the writer or a reader rebuilt it."""
    from mlops_nb.cli import main

    iris.run("from sklearn.linear_model import Ridge\n"
             "final = Ridge(alpha=0.1).fit(X_train, y_train)")
    iris.run("from sklearn.metrics import r2_score\n"
             "r2 = r2_score(y_test, final.predict(X_test))")
    run = last_run(iris)
    assert run.metric_models == {"r2": "final"} and not run.estimators
    assert run_model(run) == "Ridge"
    home = iris.tracker.home

    def listed(*argv: str) -> list[dict[str, Any]]:
        capsys.readouterr()
        assert main(["--home", str(home), "runs", "--format", "json", *argv]) == 0
        return json.loads(capsys.readouterr().out)

    for rebuilt in (False, True):
        if rebuilt:  # a reader summarising the segments itself
            for index in home.rglob("*.cols"):
                index.unlink()
        rows = listed("--filter", "model=Ridge")
        assert [(r["id"], r["model"]) for r in rows] == [(run.id, "Ridge")]
        capsys.readouterr()
        assert main(["--home", str(home), "runs"]) == 0
        header, row = capsys.readouterr().out.splitlines()[:2]
        assert header.split()[:3] == ["id", "name", "model"]
        assert row.split()[1:3] == ["Ridge", "Ridge"]  # named by its model, not just "run"
    assert listed("--filter", "model=LogisticRegression") == []
    _, verdict = verify(run)
    assert verdict.metrics["r2"]["reproduced"] == run.metrics["r2"]


def test_model_is_named_as_the_running_code_names_it_not_by_an_older_alias(iris):
    """`model_a` was bound first, but the code scores `best`: the run says `best`, as the
    exported script (where the same code runs) will. A helper reading globals is named by the
    names in its own code; a search bound by a helper's `global` is still found."""
    iris.run("model_a = LogisticRegression(C=0.5, max_iter=300).fit(X_train, y_train)")
    iris.run("best = model_a")
    iris.run("print(accuracy_score(y_test, best.predict(X_test)))")
    run = last_run(iris)
    assert run.metric_models == {"accuracy_score": "best"}
    verify(run)
    iris.run("def evaluate():\n    return best.score(X_test, y_test)\nprint(evaluate())")
    assert last_run(iris).metric_models == {"LogisticRegression_score": "best"}
    iris.run("from sklearn.model_selection import GridSearchCV\n"
             "def search():\n    global grid\n"
             "    grid = GridSearchCV(LogisticRegression(max_iter=300), {'C': [0.1, 1.0]},"
             " cv=3).fit(X_train, y_train)\n"
             "search()")
    assert last_run(iris).metric_models == {"best_cv_accuracy": "grid"}


def test_explicit_log_metric_of_a_metric_call_is_not_recorded_twice(iris):
    iris.run("import mlops_nb as mnb\n"
             "mnb.log_metric('test_acc', accuracy_score(y_test, clf.predict(X_test)))\n"
             "print(f1_score(y_test, clf.predict(X_test), average='macro'))")
    assert set(last_run(iris).metrics) == {"test_acc", "f1_score"}


def test_a_coincidentally_equal_metric_elsewhere_is_kept(iris):
    iris.run("acc = accuracy_score(y_test, clf.predict(X_test))\n"
             "print(accuracy_score(y_test, clf.predict(X_test)))")
    run = last_run(iris)
    assert run.metrics["acc"] == iris.ns["acc"]
    others = [n for n in run.metrics if n.startswith("accuracy_score")]
    assert len(others) == 1  # another call on another line: its own metric


def test_metric_variable_in_a_loop_keeps_the_series_steps(iris):
    iris.run("for n in range(3):\n"
             "    acc = accuracy_score(y_test[n:], clf.predict(X_test)[n:])")
    run = last_run(iris)
    assert list(run.metrics) == ["acc"]
    assert len(run.metric_steps["acc"]) == 3 and run.metric_steps["acc"][-1] == iris.ns["acc"]


# -- sweeps written with range / np.arange / zip / enumerate (issue 7) --------------------------
def _kids(sh):
    return [cr for cr in log_of(sh) if cr.parent is not None]


def _own(kid):
    """An iteration's loop values: its parameters but its models' (`m.C`)."""
    return {n: v for n, v in kid.params.items() if "." not in n}


def test_range_sweep_is_one_run_per_value_and_exports_that_value(iris):
    iris.run("from sklearn.tree import DecisionTreeClassifier\n"
             "train_acc, test_acc = [], []\n"
             "for depth in range(1, 5):\n"
             "    tree = DecisionTreeClassifier(max_depth=depth, random_state=0)\n"
             "    tree.fit(X_train, y_train)\n"
             "    train_acc.append(tree.score(X_train, y_train))\n"
             "    test_acc.append(tree.score(X_test, y_test))\n"
             "assert len(test_acc) == 4  # a plot of every value, after the sweep")
    kids = _kids(iris)
    assert [_own(k) for k in kids] == [{"depth": d} for d in range(1, 5)]
    assert [k.params["tree.max_depth"] for k in kids] == [1, 2, 3, 4]
    names = {"DecisionTreeClassifier_score_X_train", "DecisionTreeClassifier_score_X_test"}
    assert all(set(k.metrics) == names for k in kids)
    assert [k.metrics["DecisionTreeClassifier_score_X_test"] for k in kids] == \
        iris.ns["test_acc"]
    out, verdict = verify(kids[1])
    assert verdict.metrics["DecisionTreeClassifier_score_X_test"]["reproduced"] == \
        iris.ns["test_acc"][1]
    target = Path.cwd() / "tree.pkl"
    subprocess.run([sys.executable, str(out / "train.py"), "--save-model", str(target)],
                   cwd=out, check=True, capture_output=True, timeout=300)
    assert saved_model(target).max_depth == 2


def test_each_iteration_has_the_model_its_body_fitted(iris):
    """`m = Model(...).fit(...)` inside a sweep: each iteration's run has the model its body
    fitted, with that model's hyper-parameters. It showed none, and through its loop's cell
    run the loop's last model's (`m.C=0.5` beside the tree's iteration), which no table could
    tell from its own."""
    iris.run("from sklearn.tree import DecisionTreeClassifier\n"
             "for name in ['tree', 'logreg']:\n"
             "    m = (DecisionTreeClassifier(max_depth=2, random_state=0) if name == 'tree'\n"
             "         else LogisticRegression(C=0.5, max_iter=300))\n"
             "    m.fit(X_train, y_train)\n"
             "    print(name, accuracy_score(y_test, m.predict(X_test)))")
    kids = _kids(iris)
    assert [_own(k) for k in kids] == [{"name": "tree"}, {"name": "logreg"}]
    assert [run_model(k) for k in kids] == ["DecisionTreeClassifier", "LogisticRegression"]
    tree, logreg = (k.effective_params for k in kids)
    assert tree["m.max_depth"] == 2 and "m.C" not in tree
    assert logreg["m.C"] == 0.5 and "m.max_depth" not in logreg
    _, verdict = verify(kids[0])
    assert verdict.metrics["accuracy_score"]["reproduced"] == kids[0].metrics["accuracy_score"]
    # a loop seen through `loops.sweep` (a metric no function computed) likewise
    iris.run("from sklearn.linear_model import Ridge\n"
             "for a in [0.1, 10.0]:\n"
             "    r = Ridge(alpha=a).fit(X_train, y_train)\n"
             "    val_mse = float(((r.predict(X_test) - y_test) ** 2).mean())")
    kids = _kids(iris)[2:]
    assert [(k.params["a"], k.params["r.alpha"], run_model(k)) for k in kids] == [
        (0.1, 0.1, "Ridge"), (10.0, 10.0, "Ridge")]
    # a model made in the scoring call itself: the one whose `score` made the metric
    iris.run("for c in [0.05, 5.0]:\n"
             "    acc = LogisticRegression(C=c, max_iter=300).fit(X_train, y_train)"
             ".score(X_test, y_test)")
    kids = _kids(iris)[4:]
    assert [(k.params["c"], k.params["LogisticRegression.C"], run_model(k)) for k in kids] == [
        (0.05, 0.05, "LogisticRegression"), (5.0, 5.0, "LogisticRegression")]
    _, verdict = verify(kids[1], "inline")
    assert verdict.metrics["acc"]["reproduced"] == kids[1].metrics["acc"]


def test_a_model_bound_after_its_metric_is_its_own_iterations(iris):
    """`m, s = fit_eval(alpha)`: the metric is logged inside the helper, before `m` is bound,
    so at the next iteration's metric `m` still held the one before's model and each run
    showed the previous iteration's hyper-parameters (`alpha=1 · m.alpha=0.01`), the last
    iteration none of its own. A variable holding the model an iteration's metrics were made
    by belongs to that iteration, read at the next one's first metric or at the cell's end.
    Run twice, so `m` holds the last run's model when the loop starts."""
    iris.run("from sklearn.linear_model import Ridge\n"
             "from sklearn.metrics import r2_score\n"
             "def fit_eval(alpha):\n"
             "    model = Ridge(alpha=alpha).fit(X_train, y_train)\n"
             "    return model, r2_score(y_test, model.predict(X_test))")
    loop = ("results = []\n"
            "for alpha in [0.01, 1.0, 100.0]:\n"
            "    m, s = fit_eval(alpha)\n"
            "    results.append((alpha, s))")
    iris.run(loop)
    iris.run(loop)
    for kids in (_kids(iris)[:3], _kids(iris)[3:]):
        assert [(k.params["alpha"], k.params["m.alpha"], run_model(k)) for k in kids] == [
            (0.01, 0.01, "Ridge"), (1.0, 1.0, "Ridge"), (100.0, 100.0, "Ridge")]
    kid = _kids(iris)[4]
    out, verdict = verify(kid)
    assert verdict.metrics["r2_score"]["reproduced"] == kid.metrics["r2_score"]
    target = Path.cwd() / "m.pkl"
    subprocess.run([sys.executable, str(out / "train.py"), "--save-model", str(target)],
                   cwd=out, check=True, capture_output=True, timeout=300)
    assert saved_model(target).alpha == 1.0


def test_a_loop_lets_each_models_go_as_untracked(iris):
    """What autolog remembers during a cell (the model behind each score and prediction, the
    names it found) holds the models weakly: a loop fitting one model per iteration keeps only
    the one its variable still holds, as untracked, not every iteration's until the cell ends
    (twenty forests at once where one fitted). Each iteration still has its own model."""
    iris.run("import gc, weakref\n"
             "from sklearn.ensemble import RandomForestClassifier\n"
             "refs = []\n"
             "for n in [5, 10, 15, 20]:\n"
             "    forest = RandomForestClassifier(n_estimators=n, random_state=0)\n"
             "    forest.fit(X_train, y_train)\n"
             "    refs.append(weakref.ref(forest))\n"
             "    pred = forest.predict(X_test)\n"
             "    print(accuracy_score(y_test, pred), forest.score(X_test, y_test))\n"
             "gc.collect()\n"
             "alive = sum(r() is not None for r in refs)")
    assert iris.ns["alive"] == 1
    kids = _kids(iris)
    assert [(k.params["n"], k.params["forest.n_estimators"]) for k in kids] == [
        (5, 5), (10, 10), (15, 15), (20, 20)]
    assert all(set(k.metrics) == {"accuracy_score", "RandomForestClassifier_score"}
               for k in kids)


def test_numpy_enumerate_zip_and_set_params_sweeps(iris):
    iris.run("import numpy as np\n"
             "for C in np.logspace(-2, 1, 3):\n"
             "    m = LogisticRegression(C=C, max_iter=300).fit(X_train, y_train)\n"
             "    print(m.score(X_test, y_test))")
    assert [_own(k) for k in _kids(iris)] == [{"C": float(c)} for c in np.logspace(-2, 1, 3)]
    verify(_kids(iris)[0], "e1")
    iris.run("for i, c in enumerate([0.05, 5.0]):\n"
             "    clf.set_params(C=c).fit(X_train, y_train)\n"
             "    print(accuracy_score(y_test, clf.predict(X_test)))")
    kids = _kids(iris)[3:]
    assert [_own(k) for k in kids] == [{"i": 0, "c": 0.05}, {"i": 1, "c": 5.0}]
    assert [k.params["clf.C"] for k in kids] == [0.05, 5.0]  # set_params: the same object
    verify(kids[1], "e2")
    iris.run("for a, it in zip([0.1, 1.0], [100, 300]):\n"
             "    m = LogisticRegression(C=a, max_iter=it).fit(X_train, y_train)\n"
             "    print(m.score(X_test, y_test))")
    assert [_own(k) for k in _kids(iris)[5:]] == [{"a": 0.1, "it": 100}, {"a": 1.0, "it": 300}]


def test_nested_sweep_with_an_inner_epoch_loop(iris):
    iris.run("from sklearn.linear_model import SGDClassifier\n"
             "for alpha in [1e-4, 1e-2]:\n"
             "    sgd = SGDClassifier(alpha=alpha, random_state=0)\n"
             "    for epoch in range(3):\n"
             "        sgd.partial_fit(X_train, y_train, classes=[0, 1, 2])\n"
             "        print(epoch, sgd.score(X_test, y_test))")
    kids = _kids(iris)
    assert [_own(k) for k in kids] == [{"alpha": 1e-4}, {"alpha": 1e-2}]
    assert [k.params["sgd.alpha"] for k in kids] == [1e-4, 1e-2]
    assert kids[1].metrics["SGDClassifier_score"] == iris.ns["sgd"].score(
        iris.ns["X_test"], iris.ns["y_test"])
    verify(kids[0])


def test_sweep_loops_are_found_under_track_and_inside_an_if(iris, monkeypatch):
    """The cell's own parse says whether it can hold a sweep at all: a loop-free cell's
    metrics never parse it again, while a `%%track` body (parsed apart from the magic call
    IPython saw) and a sweep nested in an `if` are still one run per iteration."""
    from mlops_nb.capture import loops

    parsed: list[str] = []
    real = loops.sweep_loops
    monkeypatch.setattr(loops, "sweep_loops",
                        lambda code: parsed.append(code) or real(code))
    iris.run("acc = accuracy_score(y_test, clf.predict(X_test))\nclf.score(X_test, y_test)")
    assert last_run(iris).metrics and parsed == []
    iris.run("%%track --name sweep\n"
             "for C in [0.05, 5.0]:\n"
             "    m = LogisticRegression(C=C, max_iter=300).fit(X_train, y_train)\n"
             "    print(m.score(X_test, y_test))")
    assert [_own(k) for k in _kids(iris)] == [{"C": 0.05}, {"C": 5.0}]
    iris.run("if True:\n"
             "    for depth in [0.1, 1.0]:\n"
             "        m = LogisticRegression(C=depth, max_iter=300).fit(X_train, y_train)\n"
             "        print(m.score(X_test, y_test))")
    assert [_own(k) for k in _kids(iris)[2:]] == [{"depth": 0.1}, {"depth": 1.0}]
    assert len(parsed) == 2  # once for each cell with a loop, at its first metric


def test_epoch_and_fold_loops_stay_one_run_with_steps(iris):
    iris.run("from sklearn.model_selection import KFold\n"
             "for train, test in KFold(3, shuffle=True, random_state=0).split(X):\n"
             "    m = LogisticRegression(max_iter=300).fit(X[train], y[train])\n"
             "    print(m.score(X[test], y[test]))")
    assert not _kids(iris)
    run = last_run(iris)
    assert len(run.metric_steps["LogisticRegression_score"]) == 3


def test_helper_defined_and_called_in_one_cell_exports(iris):
    # a plotting helper around learning_curve, defined and used in the same cell (corpus)
    iris.run("from sklearn.model_selection import learning_curve\n"
             "import numpy as np\n"
             "def curve(est, X, y):\n"
             "    sizes, tr, te = learning_curve(est, X, y, cv=3,\n"
             "                                   train_sizes=np.linspace(.3, 1, 3))\n"
             "    return te.mean(axis=1)\n"
             "curve(LogisticRegression(max_iter=300), X, y)")
    run = last_run(iris)
    assert "lc_test_accuracy_last" in run.metrics
    verify(run)


@pytest.mark.parametrize(("code", "names"), [
    ("for k in [1, 5]:\n    m = KNN(n_neighbors=k)", ["k"]),
    ("for k in ks:\n    pass", ["k"]),
    ("for depth in range(1, 9):\n    DecisionTreeClassifier(max_depth=depth)", ["depth"]),
    ("for C in np.logspace(-3, 3, 7):\n    SVC(C=C / 2)", ["C"]),
    ("for i, a in enumerate(alphas):\n    m.set_params(ridge__alpha=a)", ["i", "a"]),
    ("for a, b in zip(x, y):\n    M(a, b)", ["a", "b"]),
    ("for d in range(3):\n    make_pipeline(PolynomialFeatures(d), LinearRegression())", ["d"]),
    ("for g in range(3):\n    for e in range(9):\n        SVC(gamma=g).partial_fit(X)",
     ["g"]),
    ("for epoch in range(9):\n    sgd.partial_fit(X, y, classes=c, epoch=epoch)", []),
    ("for n in range(3):\n    accuracy_score(y[n:], p[n:])", []),
    ("for tr, te in kf.split(X):\n    m.fit(X[tr], y[tr])", []),
    ("for name, m in models.items():\n    m.fit(X, y)", ["name", "m"]),
    ("for m in estimators:\n    cross_val_score(m, X, y)", ["m"]),
    ("for X_tr, y_tr in pairs():\n    model.fit(X_tr, y_tr)", []),
    ("for i in range(3):\n    plt.subplot(1, 3, i + 1)\n    print(i, end=i)", []),
    ("def f():\n    for k in [1, 2]:\n        pass", []),
    ("if fast:\n    for k in [1, 2]:\n        M(k)", ["k"]),
    ("with ctx:\n    for k in [1, 2]:\n        M(k)", ["k"]),
    ("try:\n    pass\nexcept E:\n    for k in [1, 2]:\n        M(k)", ["k"]),
    ("x = 1\ny = [k for k in [1, 2]]", []),
    ("for p in ParameterGrid(grid):\n    score = evaluate(p, df)", ["p"]),
    ("for p in ParameterSampler(dist, n_iter=5):\n    pass", ["p"]),
    ("for p in settings():\n    m = Model(**p).fit(X, y)", ["p"]),
])
def test_which_loops_are_sweeps(code, names):
    import ast

    from mlops_nb.capture.sweeps import may_sweep, sweep_loop_targets

    assert sweep_loop_targets(code) == names
    # the recorder's shortcut never says "no sweep" where the walk finds one
    assert may_sweep(ast.parse(code).body) or not names


def test_a_scorer_function_passed_not_called_brings_its_imports(tracked):
    # the scorer reads `np` from an earlier cell; only passing it to cross_val_score uses it
    tracked.run("import numpy as np")
    tracked.run("from sklearn.datasets import load_iris\n"
                "from sklearn.model_selection import cross_val_score\n"
                "from sklearn.svm import SVC\n"
                "X, y = load_iris(return_X_y=True)")
    tracked.run("def my_scoring(est, X, y):\n    return np.mean(est.predict(X) == y)\n"
                "cross_val_score(SVC(), X, y, scoring=my_scoring)")
    run = last_run(tracked)
    assert "cv_my_scoring_mean" in run.metrics
    verify(run)


def test_auc_of_a_roc_curve_is_logged_with_its_model(tracked):
    tracked.run("from sklearn.datasets import load_breast_cancer\n"
                "from sklearn.linear_model import LogisticRegression\n"
                "from sklearn.model_selection import train_test_split\n"
                "from sklearn.metrics import roc_curve, auc\n"
                "X, y = load_breast_cancer(return_X_y=True)\n"
                "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
                "clf = LogisticRegression(max_iter=5000).fit(X_train, y_train)\n"
                "other = LogisticRegression(C=0.01, max_iter=5000).fit(X_train, y_train)")
    tracked.run("fpr, tpr, _ = roc_curve(y_test, clf.predict_proba(X_test)[:, 1])\n"
                "other.predict(X_test)\n"  # the last model used is not the one behind the curve
                "print('AUC = %.3f' % auc(fpr, tpr))")
    run = last_run(tracked)
    ns = tracked.ns
    assert run.metrics == {"auc": ns["auc"](ns["fpr"], ns["tpr"])}
    assert run.metric_models == {"auc": "clf"}
    tracked.run("roc_auc = auc(fpr, tpr)")  # bound to a metric name: recorded once, so named
    assert set(last_run(tracked).metrics) == {"roc_auc"}
    verify(last_run(tracked))


def test_permutation_test_score_gives_score_and_pvalue(iris):
    iris.run("from sklearn.model_selection import permutation_test_score\n"
             "score, perm, pvalue = permutation_test_score(\n"
             "    clf, X, y, cv=3, n_permutations=5, random_state=0)\n"
             "print(f'{score:.2f} (p={pvalue:.3f})')")
    run = last_run(iris)
    assert run.metrics["permutation_accuracy"] == iris.ns["score"]
    assert run.metrics["permutation_accuracy_pvalue"] == iris.ns["pvalue"]
    from mlops_nb.metrics import metric_goal

    assert metric_goal("permutation_accuracy_pvalue") == "min"
    assert metric_goal("permutation_accuracy") == "max"
    verify(run)


def test_scores_scikit_learn_computes_inside_its_own_functions_are_not_metrics(iris):
    """`permutation_importance` scores the model on each permuted copy of the data through
    the model's `score`: those calls were recorded as `LogisticRegression_score_X_test` and
    `..._X_permuted` (the function's own local variable), a run with two metrics the notebook
    never computed. The notebook's own score beside it, and a metric a scorer object computes
    for the notebook, stay."""
    iris.run("from sklearn.inspection import permutation_importance\n"
             "from sklearn.metrics import make_scorer\n"
             "imp = permutation_importance(clf, X_test, y_test, n_repeats=3, random_state=0)\n"
             "print(imp.importances_mean)")
    assert not [cr for cr in log_of(iris) if cr.metrics]
    iris.run("imp = permutation_importance(clf, X_test, y_test, n_repeats=3, random_state=0)\n"
             "test_accuracy = clf.score(X_test, y_test)\n"
             "f1 = make_scorer(f1_score, average='macro')(clf, X_test, y_test)")
    run = last_run(iris)
    assert run.metrics == {"test_accuracy": iris.ns["test_accuracy"], "f1": iris.ns["f1"]}
    verify(run)


MODELS_LOOP = (
    "from sklearn.tree import DecisionTreeClassifier\n"
    "from sklearn.neighbors import KNeighborsClassifier\n"
    "models = {'logreg': LogisticRegression(max_iter=300),\n"
    "          'tree': DecisionTreeClassifier(max_depth=2, random_state=0),\n"
    "          'knn': KNeighborsClassifier(n_neighbors=3)}\n"
    "for name, model in models.items():\n"
    "    model.fit(X_train, y_train)\n"
    "    print(f'{name}: {accuracy_score(y_test, model.predict(X_test)):.3f}')")


def test_loop_over_models_is_one_run_per_model_and_exports_that_model(iris):
    iris.run(MODELS_LOOP)
    log = log_of(iris)
    kids = [cr for cr in log if cr.parent is not None]
    assert [k.params["name"] for k in kids] == ["logreg", "tree", "knn"]
    models = iris.ns["models"]
    for kid, model in zip(kids, models.values(), strict=True):
        assert kid.metrics == {"accuracy_score": iris.ns["accuracy_score"](
            iris.ns["y_test"], model.predict(iris.ns["X_test"]))}
        assert kid.metric_models == {"accuracy_score": "model"}
        assert kid.estimators["model"]["class"].endswith(type(model).__name__)
    assert kids[1].params["model.max_depth"] == 2 and kids[2].params["model.n_neighbors"] == 3
    from mlops_nb.store.index import run_model

    assert [run_model(k) for k in kids] == [
        "LogisticRegression", "DecisionTreeClassifier", "KNeighborsClassifier"]
    # the tree's run replays the tree only, and --save-model saves that tree
    out, verdict = verify(kids[1])
    assert verdict.metrics["accuracy_score"]["reproduced"] == kids[1].metrics["accuracy_score"]
    target = Path.cwd() / "tree.pkl"
    done = subprocess.run([sys.executable, str(out / "train.py"), "--save-model", str(target)],
                          cwd=out, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert type(saved_model(target)).__name__ == "DecisionTreeClassifier"
    assert "knn" not in done.stdout and "logreg" not in done.stdout  # one item ran


def test_a_loop_over_the_notebooks_own_baseline_and_a_model_is_a_run_each_named_alike(iris):
    """A baseline class of the notebook's own has no `get_params` and its `predict` is not
    traced: its metrics were filed under no iteration, and named by the labels (`_y_test`)
    where the model's were named by the inputs (`_X_test`), so the loop was one run with
    both models' metrics under four names."""
    iris.run("import numpy as np\n"
             "class MajorityBaseline:\n"
             "    def fit(self, X, y):\n"
             "        self.label_ = np.bincount(y).argmax()\n"
             "        return self\n"
             "    def predict(self, X):\n"
             "        return np.full(len(X), self.label_)")
    iris.run("for name, model in {'baseline': MajorityBaseline(),\n"
             "                     'logreg': LogisticRegression(max_iter=300)}.items():\n"
             "    model.fit(X_train, y_train)\n"
             "    pred = model.predict(X_test)\n"
             "    print(name, accuracy_score(y_test, pred), f1_score(y_test, pred, average='macro'))")
    kids = [cr for cr in log_of(iris) if cr.parent is not None]
    assert [k.params["name"] for k in kids] == ["baseline", "logreg"]
    assert [set(k.metrics) for k in kids] == [{"accuracy_score", "f1_score"}] * 2
    ns = iris.ns
    for kid, key in zip(kids, ("baseline", "logreg"), strict=True):
        model = ns["MajorityBaseline"]() if key == "baseline" else ns["LogisticRegression"](
            max_iter=300)
        pred = model.fit(ns["X_train"], ns["y_train"]).predict(ns["X_test"])
        assert kid.metrics["accuracy_score"] == ns["accuracy_score"](ns["y_test"], pred)
    assert kids[0].metrics["accuracy_score"] < kids[1].metrics["accuracy_score"]
    for kid in kids:  # each replays its own item of the loop
        _, verdict = verify(kid, f"exp_{kid.params['name']}")
        assert verdict.metrics["accuracy_score"]["reproduced"] == kid.metrics["accuracy_score"]


def test_loop_over_a_literal_list_of_models(iris):
    iris.run("from sklearn.tree import DecisionTreeClassifier\n"
             "for model in [DecisionTreeClassifier(max_depth=1, random_state=0),\n"
             "              DecisionTreeClassifier(max_depth=3, random_state=0)]:\n"
             "    print(model.fit(X_train, y_train).score(X_test, y_test))")
    kids = [cr for cr in log_of(iris) if cr.parent is not None]
    assert [k.params["model.max_depth"] for k in kids] == [1, 3]
    assert kids[0].metrics["model_score"] < kids[1].metrics["model_score"]
    _, verdict = verify(kids[1])  # same class twice: its parameters pick the item
    assert verdict.metrics["model_score"]["reproduced"] == kids[1].metrics["model_score"]


def test_score_of_a_loop_over_models_is_one_metric_named_after_the_variable(iris):
    iris.run("from sklearn.tree import DecisionTreeClassifier\n"
             "models = {'logreg': LogisticRegression(max_iter=300),\n"
             "          'tree': DecisionTreeClassifier(max_depth=2, random_state=0)}\n"
             "for name, model in models.items():\n"
             "    model.fit(X_train, y_train)\n"
             "    print(name, model.score(X_test, y_test))")
    kids = [cr for cr in log_of(iris) if cr.parent is not None]
    assert [set(k.metrics) for k in kids] == [{"model_score"}, {"model_score"}]
    assert kids[0].metrics["model_score"] == iris.ns["models"]["logreg"].score(
        iris.ns["X_test"], iris.ns["y_test"])
    verify(kids[0])
    iris.run("clf.score(X_test, y_test)")  # not a loop variable: the class names it
    assert set(last_run(iris).metrics) == {"LogisticRegression_score"}


def test_cv_estimators_log_their_cross_validated_score_with_folds(iris):
    iris.run("from sklearn.linear_model import LogisticRegressionCV, LassoCV\n"
             "from sklearn.datasets import load_diabetes\n"
             "lr = LogisticRegressionCV(Cs=[0.01, 1.0], cv=3, max_iter=500).fit(X, y)")
    run = last_run(iris)
    folds = next(iter(iris.ns["lr"].scores_.values()))
    best = folds.mean(axis=0).argmax()
    assert run.metrics["cv_accuracy_mean"] == float(folds[:, best].mean())
    assert run.metric_steps["cv_accuracy_mean"] == [float(v) for v in folds[:, best]]
    assert run.params["lr.C_"] == iris.ns["lr"].Cs_[best]
    assert run.metric_models["cv_accuracy_mean"] == "lr"  # refitted on all data: the model
    iris.run("Xd, yd = load_diabetes(return_X_y=True)\n"
             "lasso = LassoCV(cv=3, random_state=0).fit(Xd, yd)")
    run = last_run(iris)
    path = iris.ns["lasso"].mse_path_
    chosen = list(iris.ns["lasso"].alphas_).index(iris.ns["lasso"].alpha_)
    assert run.metrics["cv_mse_mean"] == float(path[chosen].mean())
    assert run.metrics["cv_mse_std"] == float(path[chosen].std())
    verify(run)


def test_search_over_a_home_made_classifier_is_named_by_accuracy(iris):
    """A notebook's own classifier with its mixins in the wrong order (sklearn then sees no
    classifier tags) is still scored by ClassifierMixin.score: accuracy."""
    iris.run("from sklearn.base import BaseEstimator, ClassifierMixin\n"
             "from sklearn.model_selection import GridSearchCV\n"
             "class Nearest(BaseEstimator, ClassifierMixin):\n"
             "    def __init__(self, shift=0.0):\n"
             "        self.shift = shift\n"
             "    def fit(self, X, y):\n"
             "        self.X_, self.y_ = X + self.shift, y\n"
             "        return self\n"
             "    def predict(self, X):\n"
             "        d = ((X[:, None, :] - self.X_[None]) ** 2).sum(-1)\n"
             "        return self.y_[d.argmin(1)]\n"
             "grid = GridSearchCV(Nearest(), {'shift': [0.0, 1.0]}, cv=3).fit(X, y)\n"
             "print(f'accuracy = {grid.best_score_}')")
    run = last_run(iris)
    assert run.metrics["best_cv_accuracy"] == iris.ns["grid"].best_score_


def test_metric_function_imported_in_its_own_cell_is_replayed_by_autolog(iris):
    iris.run("from sklearn.metrics import balanced_accuracy_score\n"
             "balanced_accuracy_score(y_test, clf.predict(X_test))")
    run = last_run(iris)
    assert set(run.metrics) == {"balanced_accuracy_score"}
    _, verdict = verify(run)  # not the imported function's repr read from the namespace
    assert verdict.metrics["balanced_accuracy_score"]["reproduced"] == run.metrics[
        "balanced_accuracy_score"]


def test_a_notebook_estimator_class_goes_to_joblib_workers(iris):
    """A class the notebook defines is pickled by value (cloudpickle) when joblib sends a
    search's fits to its worker processes, wrapped methods and all. Their wrapper reached
    the autolog's state, which holds the kernel's shell and its history database
    connection: `GridSearchCV(..., n_jobs=2)` failed with "Could not pickle the task to send
    it to the workers" under tracking only. Pickled, the state is `False`: the workers run
    the notebook's own methods, untracked."""
    iris.run("import numpy as np\n"
             "from sklearn.base import BaseEstimator, TransformerMixin\n"
             "class Scale(BaseEstimator, TransformerMixin):\n"
             "    def __init__(self, k=2.0):\n"
             "        self.k = k\n"
             "    def fit(self, X, y=None):\n"
             "        return self\n"
             "    def transform(self, X):\n"
             "        return np.asarray(X) * self.k")
    result = iris.run(
        "from sklearn.pipeline import Pipeline\n"
        "from sklearn.model_selection import GridSearchCV\n"
        "pipe = Pipeline([('scale', Scale()), ('clf', LogisticRegression(max_iter=300))])\n"
        "grid = GridSearchCV(pipe, {'scale__k': [0.5, 2.0]}, cv=3, n_jobs=2)\n"
        "grid.fit(X_train, y_train)\n"
        "print(grid.best_score_)")
    assert result.error_in_exec is None, result.error_in_exec
    run = last_run(iris)
    assert run.metrics["best_cv_accuracy"] == iris.ns["grid"].best_score_
    import cloudpickle  # joblib requires it: how loky sends tasks to its workers

    copy = pickle.loads(cloudpickle.dumps(iris.ns["Scale"]))  # the methods it had
    assert copy().fit(None).transform([1.0]) == [2.0]
    _, verdict = verify(run)
    assert verdict.metrics["best_cv_accuracy"]["reproduced"] == run.metrics["best_cv_accuracy"]
