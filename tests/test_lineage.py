from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_nb.capture.analysis import analyze
from mlops_nb.capture.effects import real_mutations
from mlops_nb.exporting.slicing import compute_slice
from mlops_nb.lineage import SessionLog, deps_closure, lineage_ids
from mlops_nb.records import CellRun


class Log:
    """Feeds cells through analysis into a SessionLog, as the recorder does."""

    def __init__(self, ns: dict | None = None) -> None:
        self.log = SessionLog()
        self.runs: list[CellRun] = []
        self.codes: list[str] = []
        self.ns = ns or {}  # what the names are after each cell (unknown: conservative)

    def cell(self, code: str, metrics: dict | None = None, data: dict | None = None) -> CellRun:
        a = analyze(code)
        cr = CellRun(
            id=f"c{len(self.runs)}", session="s", experiment="e", seq=len(self.runs),
            started_at=0.0, defs=a.defs, uses=a.uses, mutations=real_mutations(a, self.ns),
            params=dict(a.params), metrics=metrics or {}, data=data or {},
            files_read=a.files_read, files_written=a.files_written,
        )
        self.log.add(cr, a)
        self.runs.append(cr)
        self.codes.append(code)
        return cr

    def lineage(self, cr: CellRun) -> list[str]:
        """What readers derive from the stored direct deps."""
        got = lineage_ids(self.runs, cr)
        assert got == self.log.lineage(cr.seq)
        return got


def test_last_definer_wins():
    lg = Log()
    lg.cell("x = 1")
    lg.cell("x = 2")
    r = lg.cell("acc = x", metrics={"acc": 2})
    assert r.deps == ["c1"]
    assert lg.lineage(r) == ["c1"]
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
    assert lg.lineage(r) == ["c0", "c1", "c3", "c4"]
    assert r.effective_params == {"max_depth": 3}


def test_mutation_makes_a_definer():
    lg = Log()
    lg.cell("hist = []")
    lg.cell("hist.append(1)")
    lg.cell("other = 2")
    lg.cell("hist.append(2)")
    r = lg.cell("loss = len(hist)", metrics={"loss": 2})
    assert lg.lineage(r) == ["c0", "c1", "c3"]


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
    assert lg.lineage(r) == ["c0", "c1", "c2", "c3", "c4", "c5"]


def test_nested_function_calls_are_followed():
    lg = Log()
    lg.cell("scale = 10")
    lg.cell("def inner(x):\n    return x * scale")
    lg.cell("def outer(x):\n    return inner(x) + 1")
    r = lg.cell("score = outer(1)", metrics={"score": 11})
    assert lg.lineage(r) == ["c0", "c1", "c2"]


def test_global_write_from_function_defines_the_name():
    lg = Log()
    lg.cell("counter = 0")
    lg.cell("def bump():\n    global counter\n    counter += 1")
    lg.cell("bump()")
    r = lg.cell("score = counter", metrics={"score": 1})
    assert r.deps == ["c2"]
    assert lg.lineage(r) == ["c0", "c1", "c2"]


def test_rebinding_a_function_name_stops_following_it():
    lg = Log()
    lg.cell("g = 1")
    lg.cell("def f():\n    return g")
    lg.cell("f = 5")
    r = lg.cell("score = f", metrics={"score": 5})
    assert lg.lineage(r) == ["c2"]


def test_effective_data_is_that_of_the_lineage_when_it_ran():
    lg = Log()
    lg.cell("df = load()", data={"df": {"hash": "h1"}})
    r1 = lg.cell("score = fit(df)", metrics={"score": 1}, data={"df": {"hash": "h1"}})
    lg.cell("df = load2()", data={"df": {"hash": "h2"}})
    r2 = lg.cell("score = fit(df)", metrics={"score": 2}, data={"df": {"hash": "h2"}})
    assert r1.effective_data["df"]["hash"] == "h1"
    assert r2.effective_data["df"]["hash"] == "h2"
    assert lg.lineage(r2) == ["c2"]


def test_runs_store_direct_deps_only():
    lg = Log()
    lg.cell("a = 1")
    cr = lg.cell("b = a")
    assert cr.deps == ["c0"] and cr.lineage is None
    r = lg.cell("score = b", metrics={"score": 1})
    assert r.deps == ["c1"] and r.lineage is None  # the closure is derived when read
    assert lg.lineage(r) == ["c0", "c1"]


def test_old_records_with_a_stored_lineage_are_read_as_they_were():
    old = [CellRun(id=f"c{i}", session="s", experiment="e", seq=i, started_at=0.0)
           for i in range(3)]
    old[1].deps = ["c0"]
    old[2].deps, old[2].lineage = ["c1"], ["c0", "c1"]
    new = CellRun(id="c3", session="s", experiment="e", seq=3, started_at=0.0, deps=["c2"])
    assert lineage_ids(old, old[2]) == ["c0", "c1"]
    assert lineage_ids([*old, new], new) == ["c0", "c1", "c2"]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_lineage_of_a_log_in_order_is_the_one_deps_closure_gives(data):
    """`lineage_ids` walks a log in execution order by position (no sort); any log, in order
    or not, with unknown ids, repeated seqs or ids, or stored closures, gives what
    `deps_closure` gives."""
    n = data.draw(st.integers(1, 12))
    seqs = data.draw(st.one_of(st.just(list(range(n))),
                               st.lists(st.integers(-1, n), min_size=n, max_size=n)))
    ids = data.draw(st.one_of(st.just([f"c{i}" for i in range(n)]),
                              st.lists(st.sampled_from([f"c{i}" for i in range(n)]),
                                       min_size=n, max_size=n)))
    pool = st.sampled_from([*ids, "gone1", "gone2"])
    log = [CellRun(id=ids[i], session="s", experiment="e", seq=seqs[i], started_at=0.0,
                   deps=data.draw(st.lists(pool, max_size=3)),
                   lineage=data.draw(st.none() | st.lists(pool, max_size=2)) if data.draw(
                       st.integers(0, 9)) == 0 else None)
           for i in range(n)]
    run = CellRun(id="run", session="s", experiment="e", seq=n + 1, started_at=0.0,
                  deps=data.draw(st.lists(pool, max_size=3)))
    expected = deps_closure(run.deps, {cr.id: cr.deps for cr in log},
                            {cr.id: cr.lineage for cr in log if cr.lineage is not None},
                            {cr.id: cr.seq for cr in log})
    assert lineage_ids(log, run) == expected


def test_a_long_chain_lineage_is_every_earlier_cell_run_in_order():
    log = [CellRun(id=f"{i:06x}", session="s", experiment="e", seq=i, started_at=0.0,
                   deps=[f"{i - 1:06x}"] if i else []) for i in range(5000)]
    run = CellRun(id="run", session="s", experiment="e", seq=5000, started_at=0.0,
                  deps=[log[-1].id, "gone"])
    assert lineage_ids(log, run) == ["gone", *(cr.id for cr in log)]


class Estimator:
    def fit(self, X, y):
        return self

    def get_params(self, deep=True):
        return {}


def test_non_mutating_calls_do_not_chain_re_runs():
    lg = Log({"clf": Estimator(), "arr": [1, 2]})
    lg.cell("clf = Estimator()")
    lg.cell("X, y = 1, 2")
    runs = [lg.cell("acc = clf.score(X, y)", metrics={"acc": 1}) for _ in range(6)]
    assert all(r.deps == ["c0", "c1"] for r in runs)
    assert all(lg.lineage(r) == ["c0", "c1"] for r in runs)
    fit = lg.cell("clf.fit(X, y)")
    assert fit.mutations == ["clf"]
    assert lg.cell("acc = clf.score(X, y)", metrics={"acc": 1}).deps == ["c1", fit.id]
    lg.cell("arr.count(1)")
    assert lg.runs[-1].mutations == []
    lg.cell("arr.sort()")
    assert lg.runs[-1].mutations == ["arr"]


def test_unknown_receivers_stay_mutated():
    lg = Log()
    lg.cell("thing = make()")
    assert lg.cell("thing.score()").mutations == ["thing"]


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
    assert lg.lineage(r) == ["c2"]


def test_effective_params_take_the_latest_setting_across_branches():
    lg = Log()
    lg.cell("x = 1")
    lg.cell("a = g(x)")
    lg.cell("x = 2")
    lg.cell("b = g(x)")
    r = lg.cell("score = f(b, a)", metrics={"score": 1})
    assert lg.lineage(r) == ["c0", "c1", "c2", "c3"]
    assert r.effective_params == {"x": 2}
    # and the other way round: the branch holding the later setting comes first
    lg2 = Log()
    lg2.cell("x = 1")
    lg2.cell("b = g(x)")
    lg2.cell("x = 2")
    lg2.cell("a = g(x)")
    assert lg2.cell("score = f(a, b)", metrics={"score": 1}).effective_params == {"x": 2}


def test_a_value_the_run_read_wins_over_one_a_rerun_params_cell_only_bound():
    """A parameters cell edited and re-run, then only the model cell re-run: the split was
    made with the cell's first `test_frac`, read by the data cell; the model cell reads only
    `C` from the re-run. The table showed the second `test_frac` (and named the run by it)."""
    lg = Log()
    lg.cell("test_frac = 0.3\nC = 1.0")
    lg.cell("X_tr, X_te = split(data, test_size=test_frac)")
    first = lg.cell("acc = fit(X_tr, C).score(X_te)", metrics={"acc": 0.8})
    assert first.effective_params == {"test_frac": 0.3, "C": 1.0}
    lg.cell("test_frac = 0.2\nC = 2.0")
    r = lg.cell("acc = fit(X_tr, C).score(X_te)", metrics={"acc": 0.7})
    assert r.effective_params == {"test_frac": 0.3, "C": 2.0}
    assert lg.lineage(r) == ["c0", "c1", "c3"]
    # a parameter only bound, that nothing the run read sets, stays as bound
    lg.cell("C = 3.0\nkind = 'rf'")
    r = lg.cell("acc = fit(X_tr, C).score(X_te)", metrics={"acc": 0.6})
    assert r.effective_params == {"test_frac": 0.3, "C": 3.0, "kind": "rf"}
    # a cell that computed something the run reads brings all it had in effect, its own
    # parameters included: they may have gone into what it computed
    lg.cell("model = make(C)\nunused = 5")
    r = lg.cell("acc = model.score(X_te)", metrics={"acc": 0.6})
    assert r.effective_params == {"test_frac": 0.3, "C": 3.0, "kind": "rf", "unused": 5}


def test_long_mutation_chains_stay_cheap_and_exact():
    lg = Log()
    lg.cell("hist = []")
    for i in range(3000):
        lg.cell(f"hist.append({i})\nlr = {i}")
    r = lg.cell("loss = len(hist)", metrics={"loss": 3000})
    lineage = lg.lineage(r)
    assert len(lineage) == 3001 and lineage[0] == "c0" and lineage[-1] == "c3000"
    assert r.effective_params == {"hist": [], "lr": 2999}


def test_alias_mutation_reaches_the_original():
    lg = Log()
    lg.cell("a = [1]")
    lg.cell("b = a")
    lg.cell("b.append(2)")
    lg.cell("unrelated = 0")
    r = lg.cell("score = len(a)", metrics={"score": 2})
    assert r.deps == ["c2"]
    assert lg.lineage(r) == ["c0", "c1", "c2"]


def test_rebinding_breaks_the_alias():
    lg = Log()
    lg.cell("a = [1]")
    lg.cell("b = a")
    lg.cell("b = []")
    lg.cell("b.append(2)")
    r = lg.cell("score = len(a)", metrics={"score": 1})
    assert lg.lineage(r) == ["c0"]


def test_a_file_written_then_read_ties_the_cells_and_their_params():
    lg = Log()
    lg.cell("rows = 5")
    lg.cell("df.head(rows).to_csv('part.csv')")
    lg.cell("x = 1")
    r = lg.cell("d = pd.read_csv('part.csv')\nscore = len(d)", metrics={"score": 5})
    assert r.deps == ["c1"]
    assert lg.lineage(r) == ["c0", "c1"]
    assert r.effective_params == {"rows": 5}


def test_a_lambda_binds_late_like_a_def():
    lg = Log()
    lg.cell("k = 2")
    lg.cell("f = lambda v: v * k")
    lg.cell("k = 3")
    r = lg.cell("score = f(1)", metrics={"score": 3})
    assert lg.lineage(r) == ["c0", "c1", "c2"]


# -- one def-use index: the export slice holds the recorded lineage ------------------------------
_NAMES = ["a", "b", "c", "xs"]
_name = st.sampled_from(_NAMES)
_stmt = st.one_of(
    st.builds(lambda x, y: f"{x} = {y} + 1", _name, _name),
    st.builds(lambda x: f"{x} = 1", _name),
    st.builds(lambda x: f"{x} = []", _name),
    st.builds(lambda x, y: f"{x}.append({y})", _name, _name),
    st.builds(lambda x, y: f"{x}[0] = {y}", _name, _name),
    st.builds(lambda x: f"{x} += 1", _name),
    st.builds(lambda x, y: f"{x} = {y}", _name, _name),  # an alias
    st.builds(lambda x: f"def f():\n    return {x}", _name),
    st.builds(lambda x: f"def g():\n    {x}.append(1)", _name),
    st.builds(lambda x: f"{x} = f()", _name),
    st.just("g()"),
    st.just("from math import *"),
    st.just("a = sqrt(4)"),
    st.just("get_ipython().run_line_magic('cd', '.')"),
    st.builds(lambda x: f"open('f.txt', 'w').write(str({x}))", _name),
    st.builds(lambda x: f"{x} = open('f.txt').read()", _name),
)
_cells = st.lists(st.lists(_stmt, min_size=1, max_size=3).map("\n".join),
                  min_size=1, max_size=10)


def _slice_of(lg: Log, target: CellRun):
    code_of = {cr.seq: code for cr, code in zip(lg.runs, lg.codes, strict=True)}
    return compute_slice(lg.runs, target, code_of)


@settings(max_examples=150, deadline=None)
@given(_cells, st.lists(_name, min_size=1, max_size=2))
def test_the_export_slice_always_contains_the_recorded_lineage(cells, used):
    lg = Log()
    for code in cells:
        lg.cell(code)
    run = lg.cell(f"score = len(str(({', '.join(used)},)))", metrics={"score": 1})
    sl = _slice_of(lg, run)
    recorded = [int(i[1:]) for i in lg.lineage(run)]
    assert sl.lineage == recorded  # one index: the slice's own lineage is the recorded one
    assert set(recorded) | {run.seq} <= {c.seq for c in sl.cells}


def test_export_alone_adds_cd_cells_and_star_import_providers():
    lg = Log()
    lg.cell("get_ipython().run_line_magic('cd', 'sub')")
    lg.cell("x = 2")
    run = lg.cell("score = x", metrics={"score": 2})
    assert lg.lineage(run) == ["c1"]
    sl = _slice_of(lg, run)
    assert sl.lineage == [1] and [c.seq for c in sl.cells] == [0, 1, 2]

    lg = Log()
    lg.cell("from math import *")
    run = lg.cell("score = sqrt(4.0)", metrics={"score": 2})
    assert lg.lineage(run) == []
    sl = _slice_of(lg, run)
    assert sl.lineage == [] and [c.seq for c in sl.cells] == [0, 1]
    assert sl.unresolved == {}
