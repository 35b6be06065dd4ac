"""What the recorder reads from a namespace, tested on plain dicts without a kernel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_nb.capture.analysis import analyze
from mlops_nb.capture.namespace import (
    estimator_params,
    is_fitted_estimator,
    read_data,
    read_estimators,
    read_metrics,
    read_widget_values,
)


def test_metrics_by_name_watched_present_and_required():
    a = analyze("f1 = 0.5\nloss = 1\nn_trees = 3\nacc.append(1)")
    ns = {"f1": 0.5, "loss": 1, "n_trees": 3, "acc": [1], "custom": 2.0, "old": 9.0}
    warnings: list[str] = []
    assert read_metrics(ns, a, by_name=True, warnings=warnings) == {"f1": 0.5, "loss": 1}
    assert read_metrics(ns, a, by_name=False, watched=["n_trees", "old"],
                        warnings=warnings) == {"n_trees": 3}
    got = read_metrics(ns, a, by_name=False, present=["custom", "nope"],
                       required=["old", "missing"], warnings=warnings)
    assert got == {"custom": 2.0, "old": 9.0}
    assert warnings == ["--metric missing: no such variable after the cell ran"]


def test_estimators_only_when_fitted():
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression(fit_intercept=False).fit(np.ones((3, 1)), np.arange(3.0))
    ns = {"m": fitted, "raw": LinearRegression(), "x": 1}
    assert is_fitted_estimator(fitted) and not is_fitted_estimator(ns["raw"])
    est = read_estimators(ns, ["m", "raw", "x", "m"])
    assert list(est) == ["m"] and est["m"]["class"].endswith("LinearRegression")
    assert estimator_params(est)["m.fit_intercept"] is False


def test_data_fingerprints_and_files(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    ns = {"df": pd.DataFrame({"x": [1]}), "arr": np.zeros(2), "n": 3}
    warnings: list[str] = []
    got = read_data(ns, ["df", "arr", "n", "absent"],
                    [str(tmp_path / "a.csv"), str(tmp_path / "gone.csv")],
                    warn_missing_files=True, warnings=warnings)
    assert set(got) == {"df", "arr", f"file:{tmp_path / 'a.csv'}"}
    assert len(warnings) == 1 and "gone.csv" in warnings[0]


def test_widget_values_frozen_only_from_ipywidgets():
    import ipywidgets as w

    slider = w.IntSlider(value=7)
    ns = {"depth": 7, "slider": slider, "other": object(), "x": 1}
    warnings: list[str] = []
    got = read_widget_values(ns, {"depth": "slider", "x": "other"}, warnings)
    assert got == {"depth": 7} and warnings == []
