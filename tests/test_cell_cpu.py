"""The per-cell shortcuts of issue 14 keep the recorder's answers: scikit-learn's `fit` does
not make X and y count as changed unless it may write into them, the cached parameter names
give `get_params`' own result, and autolog's naming reads the cell's own parse."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from mlops_nb.capture import autolog
from mlops_nb.capture.analysis import analyze
from mlops_nb.capture.effects import possibly_changed, real_mutations
from mlops_nb.capture.namespace import _get_params
from mlops_nb.store.reader import StoreReader

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def _changed(code: str, ns: dict) -> set[str]:
    exec(code, ns)
    analysis = analyze(ast.parse(code))
    return possibly_changed(analysis, ns, real_mutations(analysis, ns))


@pytest.fixture
def ns() -> dict:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return {"np": np, "X": X, "y": (X[:, 0] > 0).astype(int), "LinearRegression":
            LinearRegression, "LogisticRegression": LogisticRegression,
            "StandardScaler": StandardScaler, "make_pipeline": make_pipeline,
            "GridSearchCV": GridSearchCV}


@pytest.mark.parametrize("code", [
    "clf = LogisticRegression(C=0.5, max_iter=50).fit(X, y)",
    "m = LinearRegression()\nm.fit(X, y)",
    "C = 2.0\nm = LogisticRegression(C=C).fit(X, y)\ns = m.score(X, y)",
])
def test_fit_leaves_x_and_y_unchanged(ns, code):
    assert not _changed(code, ns) & {"X", "y"}


@pytest.mark.parametrize("code", [
    "m = LinearRegression(copy_X=False).fit(X, y)",  # centres X in place
    "m = LinearRegression(copy_X=False)\nm.fit(X, y)",
    "p = make_pipeline(StandardScaler(copy=False), LinearRegression())\np.fit(X, y)",
    "base = LinearRegression(copy_X=False)\ng = GridSearchCV(estimator=base, param_grid={})"
    ".fit(X, y)",
    "kw = {'copy_X': False}\nm = LinearRegression(**kw).fit(X, y)",
    "m = LinearRegression(fit_intercept=bool(1)).fit(X, y)",  # not a plain argument
    "def Model():\n    return LinearRegression(copy_X=False)\nm = Model().fit(X, y)",
])
def test_fit_that_may_write_its_input_counts_it_changed(ns, code):
    assert {"X", "y"} <= _changed(code, ns)


def test_copy_x_false_fit_gets_a_new_fingerprint(tracked):
    tracked.run("import numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
                "X = np.arange(40.0).reshape(20, 2) + 5\ny = np.arange(20.0)")
    tracked.run("m = LinearRegression().fit(X, y)")
    tracked.run("m = LinearRegression(copy_X=False).fit(X, y)")  # X is centred in place
    tracked.run("s = X.sum()")
    tracked.flush()
    log = StoreReader(tracked.tracker.home).session_log(tracked.tracker.session)
    first, second, after = log[-3:]
    assert second.data["X"]["hash"] != first.data["X"]["hash"]  # hashed after the fit
    assert after.data["X"]["hash"] == second.data["X"]["hash"]


class _Custom(LogisticRegression):
    def get_params(self, deep=True):
        return {**super().get_params(deep), "extra": 1}


@pytest.mark.parametrize("est", [
    LogisticRegression(C=2.0), StandardScaler(copy=False), _Custom(),
    make_pipeline(StandardScaler(), LogisticRegression()),
    GridSearchCV(LogisticRegression(), {"C": [1.0]}),
])
def test_cached_parameter_names_give_get_params(est):
    got, want = _get_params(est), est.get_params(deep=True)
    assert list(got) == list(want)
    assert all(got[k] is want[k] for k in want)


def _bounds(code: str) -> list[int]:
    return [n for stmt in ast.parse(code).body for n in (stmt.lineno, stmt.end_lineno)]


@pytest.mark.parametrize("code, line", [
    ("acc = m.score(X, y)\nother = 1", 1),
    ("other = 1\nacc = m.score(X, y)", 2),
    ("x = 1\nacc = m.score(\n    X,\n    y)\nz = 2", 4),  # the call's last line
    ("for i in range(3):\n    acc = m.score(X, y)\n    print(acc)", 2),
    ("import mlops_nb as mnb\nmnb.log_metric('acc', m.score(X, y))", 2),
    ("x = (1,\n 2); acc = m.score(X, y)", 2),  # shares a line: the whole cell is parsed
    ("a = 1\r\nacc = m.score(X, y)", 2),
])
def test_bound_names_cut_out_of_the_cell_read_like_the_whole_cell(code, line):
    """Only the statements holding the calls are parsed again (the recorder keeps no tree),
    with the same answer as parsing the whole cell."""
    call = autolog.Call("metric", "score", (("<cell>", line),), None, 0.75, model="m")
    named = [("m_score", call)]
    found = {}
    for bound, explicit in (({"acc": 0.75}, {}), ({}, {"acc": 0.75})):
        whole = autolog.bound_names(code, named, bound, explicit)
        assert autolog.bound_names(code, named, bound, explicit, _bounds(code)) == whole
        found.update(whole)
    assert found  # each case names the series (`acc = ...`) or drops it (log_metric)
    # bounds holding none of the lines: the whole cell is parsed, with the same answer
    assert autolog.bound_names(code, named, {"acc": 0.75}, {}, [99, 99]) == \
        autolog.bound_names(code, named, {"acc": 0.75}, {})


def test_an_array_and_its_view_both_stay_cached_while_unchanged():
    from mlops_nb.capture.fingerprint import FingerprintCache, fingerprint

    cache = FingerprintCache()
    X = np.arange(400.0).reshape(100, 4)
    X_test = X[:25]
    for _ in range(2):  # the first round hashes each once: neither evicts the other
        for obj in (X, X_test):
            cache.fingerprint(obj, changed=False)
    assert (cache.misses, cache.hits) == (2, 2)
    X_test[0, 0] = -1.0  # the cell stored into the view: X shares that memory
    assert cache.fingerprint(X_test, changed=True) == fingerprint(X_test)
    assert cache.fingerprint(X, changed=False) == fingerprint(X)
