from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from mlops_nb.capture.values import jsonable, metric_value, numeric_scalar
from mlops_nb.metrics import is_metric_name, metric_goal


@pytest.mark.parametrize(
    "name",
    ["accuracy", "acc", "f1", "precision", "recall", "auc", "roc_auc", "r2", "mse", "rmse",
     "mae", "loss", "score", "val_loss", "test_accuracy", "f1_macro", "r2_score",
     "mean_squared_error", "best_score", "val_acc"],
)
def test_metric_names(name):
    assert is_metric_name(name)


@pytest.mark.parametrize(
    "name", ["n_estimators", "max_depth", "accumulate", "scorer",
             "lossless", "_accuracy", "f10", "data"],
)
def test_not_metric_names(name):
    assert not is_metric_name(name)


def test_goal():
    assert metric_goal("val_loss") == "min" and metric_goal("rmse") == "min"
    assert metric_goal("mean_squared_error") == "min"
    assert metric_goal("f1") == "max" and metric_goal("roc_auc") == "max"


def test_numeric_scalar():
    assert numeric_scalar(np.float32(0.5)) == 0.5 and type(numeric_scalar(np.int64(3))) is int
    assert numeric_scalar(np.array(2.5)) == 2.5
    assert numeric_scalar(True) is None and numeric_scalar("1") is None
    assert numeric_scalar(np.array([1.0])) is None


def test_metric_value_keeps_bad_values_with_warning():
    assert metric_value(0.5) == (0.5, None)
    v, w = metric_value(float("nan"))
    assert math.isnan(v) and "not finite" in w
    v, w = metric_value("high")
    assert v == "high" and "not a number" in w
    v, w = metric_value(10**5000)
    assert v == 10**5000 and w is None


def test_jsonable_survives_hostile_repr():
    class Evil:
        def __repr__(self):
            raise RuntimeError("no")

    assert "unrepresentable" in jsonable(Evil())
    assert jsonable({1: {2, 1}, "t": (1, np.int8(2))}) == {"1": [1, 2], "t": [1, 2]}


def test_not_plain_keeps_the_names_a_capture_step_must_look_at_in_order():
    import math
    import types

    from mlops_nb.capture.values import not_plain

    class Floaty(float):  # the user's subclass: looked at, like any user object
        pass

    class Model:
        pass

    ns = {"a": 1, "b": "x", "c": [1], "d": {"k": 1}, "m": Model(), "f": Floaty(1.0),
          "fn": lambda: 1, "mod": math, "none": None, "t": (1,), "mt": types.SimpleNamespace()}
    names = ["m", "a", "missing", "f", "b", "c", "d", "fn", "mod", "none", "t", "mt", "m"]
    assert not_plain(ns, names) == ["m", "f", "mt", "m"]
    assert not_plain(ns, iter(["a", "m"])) == ["m"]  # any iterable
    assert not_plain(ns, []) == []


def test_jsonable_keeps_ints_a_float_can_hold_and_names_the_others():
    biggest = int(sys.float_info.max)
    for value in (0, -7, 2**63, biggest, -biggest, True, False):
        assert jsonable(value) is value
    for value in (biggest * 2, -biggest * 2, 10**400):
        text = jsonable(value)
        assert text == f"<int of {value.bit_length()} bits, too large to store>"
    assert jsonable([1, 10**400, np.int64(3)]) == [
        1, f"<int of {(10**400).bit_length()} bits, too large to store>", 3]
    assert type(jsonable(np.int64(3))) is int


def test_estimator_params_take_as_is_only_what_jsonable_would_return_unchanged():
    """`estimator_params` skips `jsonable` for the JSON_AS_IS types: for those it must be
    the identity, whatever the value; every other type still goes through it."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from mlops_nb.capture.namespace import estimator_params
    from mlops_nb.capture.values import JSON_AS_IS

    assert int not in JSON_AS_IS  # an int a float cannot hold becomes text

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.text(min_size=1), st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.text(), st.booleans(), st.none(),
        st.integers(min_value=-(2 ** 1100), max_value=2 ** 1100),
        st.tuples(st.integers(), st.text()), st.lists(st.floats(allow_nan=False)))))
    def check(params):
        for value in params.values():
            if type(value) in JSON_AS_IS:
                assert jsonable(value) is value
        got = estimator_params({"model": {"class": "x.Model", "params": params}})
        want = {f"model.{k}": jsonable(v) for k, v in params.items()}
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert got[key] == value or (value != value and got[key] != got[key])  # NaN

    check()
