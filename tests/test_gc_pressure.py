"""What the recorder makes the kernel's garbage collector do (issue 14's per-cell budget).

A cell's parse tree is hundreds of counted objects; what the recorder keeps alive until its
writer thread is done with a record used to bring the collector's count over its threshold
in every second 50-statement cell's parse, where a collection walks the whole tree. The
lineage index now gets a shared stand-in for a plain cell's analysis (so the cell's own is
freed with the cell), and a collection that the next such cell would make in its parse is
made at the end of this one, where the young generation is small."""

from __future__ import annotations

import gc
import threading

import pytest

from benchmarks.overhead import fifty_statement_cell
from mlops_nb.capture import recorder
from mlops_nb.capture.analysis import NO_EFFECTS, CellAnalysis, analyze, for_lineage
from mlops_nb.capture.effects import real_mutations
from mlops_nb.lineage import SessionLog
from mlops_nb.records import CellRun

CELLS = [
    "import numpy as np\nimport pandas as pd",
    "from helpers import *",
    "lr = 0.1\nx = [1, 2]",
    "def grow():\n    x.append(3)\n",
    "grow()",
    "y = x\nz = y[0]",
    "y.append(4)",
    "depth = slider.value",
    "f = lambda: lr * 2",
    "acc = f() + len(x)",
    "total = sum(x)\nacc = total / 10",
    "class M:\n    def fit(self):\n        return lr\n",
    "m = M()\nscore = m.fit()",
    "lr = 0.2",
    "acc = f()",
    "np = None",
    "z += 1",
]


def _feed(log: SessionLog, cells: list[str], slim: bool) -> list[tuple]:
    out = []
    for seq, code in enumerate(cells):
        a = analyze(code)
        cr = CellRun.from_analysis(a, id=f"c{seq}", session="s", experiment="e", seq=seq,
                                   started_at=0.0, mutations=real_mutations(a, {}),
                                   metrics={"acc": 1.0} if "acc" in a.defs else {},
                                   widget_values={"depth": 3} if "depth" in a.defs else {})
        log.add(cr, for_lineage(a) if slim else a)
        out.append((cr.deps, cr.effective_params, cr.effective_data))
    return out


def test_the_lineage_index_reads_nothing_of_a_plain_cells_analysis():
    """Fed the stand-in wherever `for_lineage` gives it, the index finds the same direct
    dependencies and effective parameters as with every cell's own analysis: through
    functions, lambdas, aliases, star imports, module rebinding and widget reads."""
    assert _feed(SessionLog(), CELLS, slim=True) == _feed(SessionLog(), CELLS, slim=False)
    assert for_lineage(analyze("lr = 0.1\nacc = lr * 2")) is NO_EFFECTS
    for code in ("import numpy as np", "def f():\n    pass", "b = a[0]", "d = w.value",
                 "f = lambda: 1"):
        a = analyze(code)
        assert for_lineage(a) is a, code


def test_the_shared_stand_in_is_never_changed(tracked):
    """Plain cells, loops logging per iteration (child runs) and a search's candidates all
    hand the writer the one shared stand-in: nothing may write into it."""
    tracked.run("import mlops_nb as mnb\nlr = 0.1")
    tracked.run("for k in range(3):\n    mnb.log_metric('loss', 1 / (k + 1), step=k)")
    tracked.run("for lr in [0.1, 0.2]:\n    acc = lr * 2\n    mnb.log_metric('acc', acc)")
    tracked.run("acc = lr + 1")
    tracked.flush()
    assert CellAnalysis() == NO_EFFECTS


class _Collections:
    def __init__(self) -> None:
        self.generations: list[int] = []
        self.window = False  # counting only while set
        self._main = threading.get_ident()

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start" and self.window and threading.get_ident() == self._main:
            self.generations.append(info["generation"])


@pytest.fixture
def collections():
    seen = _Collections()
    gc.callbacks.append(seen)
    try:
        yield seen
    finally:
        gc.callbacks.remove(seen)


@pytest.fixture
def threshold():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield 700
    finally:
        gc.set_threshold(*before)


def _at(count: int) -> list[list]:
    """Bring the young generation's count to about `count` (objects kept alive), the middle
    one's to 0."""
    gc.collect(1)
    return [[] for _ in range(count)]


def test_collects_now_when_a_cell_like_this_one_would_in_its_parse(collections, threshold):
    kept = _at(300)
    collections.window = True
    recorder.collect_early(400)  # 300 + 400 + headroom > 700: the next parse would collect
    collections.window = False
    assert collections.generations == [0]
    assert gc.get_count()[0] < 50
    del kept


def test_the_middle_generation_when_the_collector_would_take_it(collections, threshold):
    kept = _at(0)
    for _ in range(12):  # each young collection counts one for the middle generation
        gc.collect(0)
    kept = [[] for _ in range(300)]
    collections.window = True
    recorder.collect_early(400)
    collections.window = False
    assert collections.generations == [1]
    assert gc.get_count()[1] == 0
    del kept


def test_no_collection_when_the_next_parse_fits(collections, threshold):
    kept = _at(100)
    collections.window = True
    recorder.collect_early(200)
    recorder.collect_early(0)  # no parse measured (a syntax error, a `%%track` body)
    recorder.collect_early(-5)  # the parse itself collected
    collections.window = False
    assert collections.generations == []
    del kept


def test_no_collection_for_a_short_cell(collections, threshold):
    """A parse of a few statements adds little to a collection made inside it: the young
    generation is left to the collector, to run in the user's time as it would untracked."""
    kept = _at(640)
    collections.window = True
    recorder.collect_early(40)  # 640 + 40 + headroom > 700, but the parse is small
    collections.window = False
    assert collections.generations == []
    del kept


def test_no_collection_when_the_user_turned_the_collector_off(collections, threshold):
    kept = _at(600)
    gc.disable()
    try:
        collections.window = True
        recorder.collect_early(600)
        gc.set_threshold(0)  # no threshold: the collector never runs on its own
        gc.enable()
        recorder.collect_early(600)
        collections.window = False
    finally:
        gc.enable()
    assert collections.generations == []
    del kept


def test_back_to_back_cells_never_collect_inside_their_parse(tracked, collections, threshold,
                                                               monkeypatch):
    """Twenty 50-statement cells back to back, the writer thread held so that only this
    thread allocates (and the records it holds stay counted, the worst case): after the
    first, no collection starts while a cell's parse tree is alive (IPython's parse to the
    end of the cell's code); before, every second cell collected there. The parse measured
    is the tree's size."""
    tracked.run("import math, random\nhistory = []")
    tracked.flush()
    release = threading.Event()
    writer = tracked.tracker.ensure_writer()
    take = writer._take  # the writer thread, before it takes any lock the kernel's needs

    def held(items):
        release.wait(30)
        take(items)

    monkeypatch.setattr(writer, "_take", held)
    writer.max_lag = 60.0  # held on purpose: no back-pressure
    measured: list[int] = []
    monkeypatch.setattr(recorder, "collect_early",
                        lambda n, real=recorder.collect_early: measured.append(n) or real(n))
    compiler = tracked.ip.compile
    inner = compiler.ast_parse

    def parse(*args, **kwargs):
        collections.window = True
        return inner(*args, **kwargs)

    def executed():
        collections.window = False

    per_cell: list[int] = []
    compiler.ast_parse = parse
    tracked.ip.events.register("post_execute", executed)
    try:
        for i in range(20):
            tracked.run(fifty_statement_cell(i))
            per_cell.append(len(collections.generations))
    finally:
        tracked.ip.events.unregister("post_execute", executed)
        compiler.ast_parse = inner
        release.set()
    tracked.flush()
    # the first follows a small cell: nothing told the one before it to collect
    assert per_cell[-1] - per_cell[0] == 0, per_cell
    assert len(measured) == 20 and all(n > 300 for n in measured[1:])
