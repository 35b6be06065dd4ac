from __future__ import annotations

import pytest

from mlops_nb.capture.analysis import analyze
from mlops_nb.lineage import SessionLog
from mlops_nb.records import CellRun


class Log:
    """Feeds cells through analysis into a SessionLog, as the recorder does."""

    def __init__(self) -> None:
        self.log = SessionLog()
        self.runs: list[CellRun] = []

    def cell(self, code: str, metrics: dict | None = None, data: dict | None = None) -> CellRun:
        a = analyze(code)
        cr = CellRun(
            id=f"c{len(self.runs)}", session="s", experiment="e", seq=len(self.runs),
            started_at=0.0, defs=a.defs, uses=a.uses, mutations=a.mutations,
            params=dict(a.params), metrics=metrics or {}, data=data or {},
            files_read=a.files_read, files_written=a.files_written,
        )
        self.log.add(cr, a)
        self.runs.append(cr)
        return cr


def test_last_definer_wins():
    lg = Log()
    lg.cell("x = 1")
    lg.cell("x = 2")
    r = lg.cell("acc = x", metrics={"acc": 2})
    assert r.deps == ["c1"]
    assert r.lineage == ["c1"]
    assert r.effective_params == {"x": 2}


def test_transitive_lineage_in_execution_order_and_effective_params():
    lg = Log()
    lg.cell("import numpy as np")
    lg.cell("max_depth = 3")
    lg.cell("unrelated = 5")
    lg.cell("data = np.arange(10)")
    lg.cell("model = make(max_depth, data)")
    r = lg.cell("f1 = score(model)", metrics={"f1": 0.9})
    assert r.deps == ["c4"]
    assert r.lineage == ["c0", "c1", "c3", "c4"]
    assert r.effective_params == {"max_depth": 3}


def test_mutation_makes_a_definer():
    lg = Log()
    lg.cell("hist = []")
    lg.cell("hist.append(1)")
    lg.cell("other = 2")
    lg.cell("hist.append(2)")
    r = lg.cell("loss = len(hist)", metrics={"loss": 2})
    assert r.lineage == ["c0", "c1", "c3"]


def test_function_calls_follow_globals_read_and_mutated():
    lg = Log()
    lg.cell("acc = []")
    lg.cell("k = 2")
    lg.cell("def add(v):\n    acc.append(v * k)")
    lg.cell("add(1)")
    lg.cell("k = 3")
    lg.cell("add(2)")
    r = lg.cell("score = sum(acc)", metrics={"score": 8})
    # add(2) ran with k=3 (late binding) and after add(1) mutated acc: all of it matters
    assert r.lineage == ["c0", "c1", "c2", "c3", "c4", "c5"]


def test_nested_function_calls_are_followed():
    lg = Log()
    lg.cell("scale = 10")
    lg.cell("def inner(x):\n    return x * scale")
    lg.cell("def outer(x):\n    return inner(x) + 1")
    r = lg.cell("score = outer(1)", metrics={"score": 11})
    assert r.lineage == ["c0", "c1", "c2"]


def test_global_write_from_function_defines_the_name():
    lg = Log()
    lg.cell("counter = 0")
    lg.cell("def bump():\n    global counter\n    counter += 1")
    lg.cell("bump()")
    r = lg.cell("score = counter", metrics={"score": 1})
    assert r.deps == ["c2"]
    assert r.lineage == ["c0", "c1", "c2"]


def test_rebinding_a_function_name_stops_following_it():
    lg = Log()
    lg.cell("g = 1")
    lg.cell("def f():\n    return g")
    lg.cell("f = 5")
    r = lg.cell("score = f", metrics={"score": 5})
    assert r.lineage == ["c2"]


def test_effective_data_is_that_of_the_lineage_when_it_ran():
    lg = Log()
    lg.cell("df = load()", data={"df": {"hash": "h1"}})
    r1 = lg.cell("score = fit(df)", metrics={"score": 1}, data={"df": {"hash": "h1"}})
    lg.cell("df = load2()", data={"df": {"hash": "h2"}})
    r2 = lg.cell("score = fit(df)", metrics={"score": 2}, data={"df": {"hash": "h2"}})
    assert r1.effective_data["df"]["hash"] == "h1"
    assert r2.effective_data["df"]["hash"] == "h2"
    assert r2.lineage == ["c2"]


def test_non_runs_get_deps_but_no_lineage():
    lg = Log()
    lg.cell("a = 1")
    cr = lg.cell("b = a")
    assert cr.deps == ["c0"] and cr.lineage is None


def test_seq_must_follow_the_log():
    lg = Log()
    bad = CellRun(id="x", session="s", experiment="e", seq=3, started_at=0.0)
    with pytest.raises(ValueError, match="does not follow"):
        lg.log.add(bad, analyze(""))


def test_retraining_cell_does_not_depend_on_the_previous_model():
    lg = Log()
    lg.cell("n = 5")
    lg.cell("model = Model(n)\nmodel.fit(X)\nscore = model.score()", metrics={"score": 1})
    lg.cell("n = 50")
    r = lg.cell("model = Model(n)\nmodel.fit(X)\nscore = model.score()", metrics={"score": 2})
    assert r.lineage == ["c2"]


def test_effective_params_take_the_latest_setting_across_branches():
    lg = Log()
    lg.cell("x = 1")
    lg.cell("a = g(x)")
    lg.cell("x = 2")
    lg.cell("b = g(x)")
    r = lg.cell("score = f(b, a)", metrics={"score": 1})
    assert r.lineage == ["c0", "c1", "c2", "c3"]
    assert r.effective_params == {"x": 2}
    # and the other way round: the branch holding the later setting comes first
    lg2 = Log()
    lg2.cell("x = 1")
    lg2.cell("b = g(x)")
    lg2.cell("x = 2")
    lg2.cell("a = g(x)")
    assert lg2.cell("score = f(a, b)", metrics={"score": 1}).effective_params == {"x": 2}


def test_long_mutation_chains_stay_cheap_and_exact():
    lg = Log()
    lg.cell("hist = []")
    for i in range(3000):
        lg.cell(f"hist.append({i})\nlr = {i}")
    r = lg.cell("loss = len(hist)", metrics={"loss": 3000})
    assert len(r.lineage) == 3001 and r.lineage[0] == "c0" and r.lineage[-1] == "c3000"
    assert r.effective_params == {"hist": [], "lr": 2999}


def test_alias_mutation_reaches_the_original():
    lg = Log()
    lg.cell("a = [1]")
    lg.cell("b = a")
    lg.cell("b.append(2)")
    lg.cell("unrelated = 0")
    r = lg.cell("score = len(a)", metrics={"score": 2})
    assert r.deps == ["c2"]
    assert r.lineage == ["c0", "c1", "c2"]


def test_rebinding_breaks_the_alias():
    lg = Log()
    lg.cell("a = [1]")
    lg.cell("b = a")
    lg.cell("b = []")
    lg.cell("b.append(2)")
    r = lg.cell("score = len(a)", metrics={"score": 1})
    assert r.lineage == ["c0"]


def test_a_file_written_then_read_ties_the_cells_and_their_params():
    lg = Log()
    lg.cell("rows = 5")
    lg.cell("df.head(rows).to_csv('part.csv')")
    lg.cell("x = 1")
    r = lg.cell("d = pd.read_csv('part.csv')\nscore = len(d)", metrics={"score": 5})
    assert r.deps == ["c1"]
    assert r.lineage == ["c0", "c1"]
    assert r.effective_params == {"rows": 5}


def test_a_lambda_binds_late_like_a_def():
    lg = Log()
    lg.cell("k = 2")
    lg.cell("f = lambda v: v * k")
    lg.cell("k = 3")
    r = lg.cell("score = f(1)", metrics={"score": 3})
    assert r.lineage == ["c0", "c1", "c2"]
