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


def _estimators() -> list:
    from sklearn.dummy import DummyClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import FunctionTransformer, Normalizer

    X, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
    out = []
    for make in (LogisticRegression, StandardScaler, DummyClassifier, KNeighborsClassifier,
                 Normalizer, FunctionTransformer, lambda: _Custom(max_iter=50),
                 lambda: make_pipeline(StandardScaler(), LogisticRegression()),
                 lambda: GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=2)):
        out += [make(), make().fit(X, y)]
    return out


def test_fitted_test_without_tags_agrees_with_check_is_fitted():
    """The shortcut past scikit-learn's tags says what `check_is_fitted` says: fitted and
    unfitted models, stateless ones (Normalizer, FunctionTransformer: fitted unfitted), a
    subclass, a pipeline and a search (asked through `__sklearn_is_fitted__`)."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from mlops_nb.capture.namespace import is_fitted_estimator

    seen = set()
    for est in _estimators():
        try:
            check_is_fitted(est)
            want = True
        except NotFittedError:
            want = False
        assert is_fitted_estimator(est) is want, est
        seen.add(want)
    assert seen == {True, False}


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


_SPAN_CELLS = [
    "a = 1\nacc = m.score(X, y)\nb, c = 2, m.score(X, y)",
    "a = (c := m.score(X, y)); b = m.score(X, y)",  # one line, two statements, a walrus
    "for i in range(3):\n    acc = m.score(X, y)\n    best = (top := acc)\nz = [w := 1]",
    "x = {\n  'a': (q := 1),\n}\nmnb.log_metric('acc', m.score(X, y))\nacc: float = 0.5",
    "def f():\n    inner = m.score(X, y)\n    return inner\nouter = f()",
    "acc = m.score(X, y)\nother = 1\nacc = m.score(X, y)",  # one statement text, two lines
]


def _walk_spans(code: str, lines: set[int]) -> tuple[list, list]:
    """The reference: `ast.walk` (breadth first) over the statements spanning `lines`."""
    wanted = [s for s in ast.parse(code).body
              if any(s.lineno <= line <= s.end_lineno for line in lines)]
    binds, logs = [], []

    def bind(target, value):
        if isinstance(target, ast.Name):
            binds.append((target.id, value.lineno, value.end_lineno))
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            for t, v in zip(target.elts, value.elts, strict=True):
                bind(t, v)

    for node in ast.walk(ast.Module(body=wanted, type_ignores=[])):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                bind(target, node.value)
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            bind(node.target, node.value)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "log_metric"):
            logs.append((node.args[0].value, node.lineno, node.end_lineno))
    return binds, logs


@pytest.mark.parametrize("code", _SPAN_CELLS)
def test_parts_cut_out_and_cached_give_the_whole_cells_spans(code):
    """The statements parsed one part at a time (and cached by their text) give the spans,
    in the order, of one walk over the whole cell's statements, for every line asked."""
    autolog._part_spans.cache_clear()
    bounds = _bounds(code)
    n = code.count("\n") + 1
    asked = [{line} for line in range(1, n + 1)] + [set(range(1, n + 1)), {1, n}]
    for _ in range(2):  # cold, then from the cache
        for lines in asked:
            whole = autolog._spans(ast.parse(code), lines)
            assert whole == _walk_spans(code, lines), lines
            cut = autolog._cut_spans(code, bounds, lines)
            if cut is not None:
                assert cut == whole, lines
    assert autolog._part_spans.cache_info().hits


def test_a_cached_part_is_numbered_where_it_stands():
    autolog._part_spans.cache_clear()
    first = "acc = m.score(X, y)\nz = 1"
    later = "a = 1\nb = 2\n\nacc = m.score(X, y)"
    assert autolog._cut_spans(first, _bounds(first), {1}) == ([("acc", 1, 1)], [])
    assert autolog._cut_spans(later, _bounds(later), {4}) == ([("acc", 4, 4)], [])
    assert autolog._part_spans.cache_info().hits == 1


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
