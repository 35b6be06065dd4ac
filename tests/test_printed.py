"""Metrics a cell only prints (capture/printed.py): found in the code, read exactly where they
are computed, recorded, and replayed by the export."""

from __future__ import annotations

import ast

import numpy as np
import pytest
from test_export_patterns import runs_of, verify

from mlops_nb.capture.printed import file_printed, labelled_values, metric_label


def found(code: str) -> list[tuple[str, str]]:
    """(metric, the printed expression's source) for each labelled value in `code`."""
    out = []
    for name, holder, field, index in labelled_values(ast.parse(code).body):
        node = getattr(holder, field) if index is None else getattr(holder, field)[index]
        out.append((name, ast.unparse(node)))
    return out


@pytest.mark.parametrize(("label", "name"), [
    ("Test accuracy: ", "test_accuracy"),
    ("CV RMSE =", "cv_rmse"),
    ("ROC AUC", "roc_auc"),
    ("epoch 3, val loss:", "val_loss"),
    ("R2", "r2"),
    ("R^2 = ", "r2"),
    ("Adjusted R²:", "adjusted_r2"),
    ("R-squared", "r2"),
    ("RMSE (train): ", "rmse_train"),
    ("epoch 3 (val acc: ", "val_acc"),
    ("[test] f1=", "test_f1"),
    ("mean absolute error -> ", "mean_absolute_error"),
    ("n_samples:", None),  # no metric word
    ("best k", None),
    ("", None),
    (": ", None),
    ("The accuracy of the final model on the held out test set is", None),  # a sentence
    ("3 accuracy", None),
    ("AKIAIOSFODNN7EXAMPLE auc: ", None),  # a token in the label: no metric is named by it
])
def test_a_label_names_a_metric_only_in_a_few_words_with_a_metric_word(label, name):
    assert metric_label(label) == name


def test_labelled_values_in_prints_that_run_now():
    code = (
        "print(f'Test accuracy: {np.mean(pred == y):.3f}')\n"
        "print('RMSE', np.sqrt(mse), 'n', len(y))\n"
        "print(f'epoch {e}: loss {losses[e]:.4f} ± {sd}')\n"
        "print('final loss', final_loss)\n"  # a metric-named variable: recorded by its name
        "print(f'accuracy: {acc}')\n"
        "print('accuracy', 0.5)\n"  # a constant: nothing computed
        "for lr in lrs:\n"
        "    print(f'lr={lr}: val acc {evaluate(lr)}')\n"
        "def report(m):\n"
        "    print(f'accuracy: {m.value}')\n"  # runs when called, not now
        "log(f'accuracy: {a.mean()}')\n"  # not a print
        "print('accuracy', *scores)\n"  # several arguments, or none: not one value
        "print('RMSE', *[f(x)], 'acc', g(y), sep=': ')\n"
    )
    assert found(code) == [
        ("test_accuracy", "np.mean(pred == y)"), ("rmse", "np.sqrt(mse)"),
        ("loss", "losses[e]"), ("acc", "g(y)"),
        ("val_acc", "evaluate(lr)")]  # outer statements first, as sweeps walks them


@pytest.mark.parametrize(("code", "expected"), [
    ('print("Accuracy: {:.3f}".format(np.mean(a == b)))', [("accuracy", "np.mean(a == b)")]),
    ('print("acc {0:.2f} loss {1}".format(a.mean(), b.sum()))',
     [("acc", "a.mean()"), ("loss", "b.sum()")]),
    ('print("F1 {f:.2f}".format(f=f1_of(a)))', [("f1", "f1_of(a)")]),
    ('print("{}: {acc:.2f}".format(name, acc=a.mean()))', []),  # the label is a variable's
    ('print("{0.mean}".format(a))', []),
    ('print("Accuracy: %.3f" % hits(y, p))', [("accuracy", "hits(y, p)")]),
    ('print("acc %.2f%% loss %5.1f" % (a.mean() * 100, b.sum()))',
     [("acc", "a.mean() * 100"), ("loss", "b.sum()")]),
    ('print("%(acc)s" % {"acc": a.mean()})', []),
    ('print("acc %*d" % (3, a.sum()))', []),
    ('print("Accuracy: {:.3f" .format(a.mean()))', []),  # raises when run, untracked too
])
def test_labelled_values_of_format_and_percent_strings(code, expected):
    assert found(code) == expected


def test_a_printed_value_is_below_every_other_metric_and_not_a_copy_of_one():
    metrics = {"acc": 0.9, "loss": 0.3}
    steps: dict[str, list[float]] = {}
    file_printed(metrics, steps, {"loss": [0.5], "accuracy": [0.9], "val_loss": [0.7, 0.6],
                                  "f1": [0.8]})
    assert metrics == {"acc": 0.9, "loss": 0.3, "val_loss": 0.6, "f1": 0.8}
    assert steps == {"val_loss": [0.7, 0.6]}
    file_printed(metrics, steps, {"history": [0.1], "mae": [0.2]}, bound=["history"])
    assert "history" not in metrics and metrics["mae"] == 0.2


def test_a_label_the_cell_binds_as_a_variable_is_the_variables_and_the_export_agrees(tracked):
    tracked.run("import numpy as np\nloss = [0.9, 0.4]\n"
                "print(f'loss: {loss[-1]}')\nprint(f'RMSE: {np.sqrt(loss[-1])}')")
    (run,) = runs_of(tracked)
    assert run.metrics == {"rmse": float(np.sqrt(0.4))}
    verify(run)


def test_a_metric_only_printed_is_a_run_with_its_exact_value_and_reproduces(tracked, capsys):
    tracked.run("import numpy as np\n"
                "rng = np.random.default_rng(0)\n"
                "y = rng.integers(0, 2, 101)\npred = rng.integers(0, 2, 101)")
    capsys.readouterr()
    tracked.run("print('MAE', *[0.5, 0.25])")  # two values printed, as untracked
    assert capsys.readouterr().out == "MAE 0.5 0.25\n"
    tracked.run("for e in range(3):\n"
                "    print('epoch %d: loss %.2f' % (e, 1 / (e + 2)))\n"
                "print(f'Test accuracy: {np.mean(pred == y):.3f}')\n"
                "print('MAE:', (pred != y).mean())")
    out = capsys.readouterr().out
    assert out == ("epoch 0: loss 0.50\nepoch 1: loss 0.33\nepoch 2: loss 0.25\n"
                   f"Test accuracy: {float((tracked.ns['pred'] == tracked.ns['y']).mean()):.3f}\n"
                   f"MAE: {(tracked.ns['pred'] != tracked.ns['y']).mean()}\n")
    (run,) = runs_of(tracked)
    accuracy = float((tracked.ns["pred"] == tracked.ns["y"]).mean())
    assert run.metrics == {"loss": 0.25, "test_accuracy": accuracy,
                           "mae": 1 - accuracy}
    assert run.metric_steps["loss"] == [0.5, 1 / 3, 0.25]
    _, verdict, src = verify(run)
    assert "_mnb.printed('test_accuracy', np.mean(pred == y))" in src
    assert {k: v["reproduced"] for k, v in verdict.metrics.items()} == run.metrics


def test_a_printed_metric_autolog_or_a_variable_named_is_not_recorded_twice(tracked):
    tracked.run("from sklearn.datasets import make_classification\n"
                "from sklearn.linear_model import LogisticRegression\n"
                "from sklearn.metrics import roc_auc_score\n"
                "X, y = make_classification(n_samples=120, random_state=0)\n"
                "clf = LogisticRegression().fit(X, y)")
    tracked.run("print('test AUC', roc_auc_score(y, clf.predict_proba(X)[:, 1]))\n"
                "accuracy = clf.score(X, y)\n"
                "print(f'Accuracy: {accuracy * 1.0}')\n"
                "print(f'loss: {1 - accuracy:.3f}')")
    (run,) = [r for r in runs_of(tracked) if "roc_auc_score" in r.metrics]
    assert set(run.metrics) == {"roc_auc_score", "accuracy", "loss"}
    assert run.metrics["loss"] == 1 - run.metrics["accuracy"]


def test_each_iteration_of_a_sweep_has_the_value_it_printed(tracked):
    tracked.run("import numpy as np\ndef evaluate(lr):\n    return 1 - lr / 10")
    tracked.run("for lr in [0.5, 2.0]:\n"
                "    print(f'lr={lr}: val acc {evaluate(lr):.2f}')")
    runs = [r for r in runs_of(tracked) if r.iteration is not None]
    assert [(r.params["lr"], r.metrics) for r in runs] == [
        (0.5, {"val_acc": 0.95}), (2.0, {"val_acc": 0.8})]
    _, verdict, src = verify(runs[1])
    assert "for lr in [lr]:" in src
    assert verdict.metrics["val_acc"]["reproduced"] == 0.8


def test_tracking_off_leaves_prints_as_written(tracked, capsys):
    tracked.run("import numpy as np\nprint(f'accuracy: {np.mean([1, 1]):.2f}')")
    assert "_mlops_nb_printed" in tracked.ns
    tracked.run("%track off")
    assert "_mlops_nb_printed" not in tracked.ns  # nothing of ours left in the namespace
    tracked.run("import numpy as np\nprint(f'accuracy: {np.mean([1, 0]):.2f}')")
    assert capsys.readouterr().out.endswith("accuracy: 0.50\n")
    assert [r.metrics for r in runs_of(tracked)] == [{"accuracy": 1.0}]


def test_a_timed_or_captured_cells_prints_are_its_metrics_and_reproduce(tracked):
    """`%%time` parses its body itself and `%%capture` runs it as a nested cell: the prints
    in either are the cell's, as they are in its export (`%%capture out` a `with` block)."""
    tracked.run("import numpy as np\ny = np.array([1, 0, 1, 1])\np = np.array([1, 0, 0, 1])")
    tracked.run("%%time\nlr = 0.1\nprint(f'Accuracy: {np.mean(p == y) + lr:.3f}')")
    tracked.run("%%capture out\nprint(f'Test loss: {np.abs(p - y).mean() * 2:.3f}')")
    tracked.run("%time print('RMSE', np.sqrt(np.mean((p - y) ** 2)))")
    runs = runs_of(tracked)
    assert [r.metrics for r in runs] == [{"accuracy": 0.85}, {"test_loss": 0.5},
                                         {"rmse": 0.5}]
    assert tracked.ns["out"].stdout == "Test loss: 0.500\n"
    for i, run in enumerate(runs):
        _, verdict, _ = verify(run, name=f"exp{i}")
        assert {k: v["reproduced"] for k, v in verdict.metrics.items()} == run.metrics


def test_a_track_cells_prints_are_its_metrics_and_its_code_is_recorded_as_written(tracked):
    tracked.run("%track off")
    tracked.run("import numpy as np\ny = np.array([1, 0, 1, 1])\np = np.array([1, 0, 0, 1])")
    tracked.run("%%track --name by_hand\nprint(f'accuracy: {np.mean(p == y)}')\n"
                "print('MAE', np.abs(p - y).mean())")
    (run,) = runs_of(tracked)
    assert run.name == "by_hand" and run.metrics == {"accuracy": 0.75, "mae": 0.25}
    assert "_mlops_nb_printed" not in run.uses
    src = verify(run)[2]
    assert "_mnb.printed('mae', np.abs(p - y).mean())" in src
