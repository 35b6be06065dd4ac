"""Unit tests of export's pure parts: IPython translation, slicing, recorder loop runs."""

from __future__ import annotations

import ast

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from mlops_nb.capture.analysis import literal_loop_targets
from mlops_nb.exporting.slicing import compute_slice
from mlops_nb.exporting.translate import is_display_only, translate
from mlops_nb.lineage import lineage_ids
from mlops_nb.records import CellRun
from mlops_nb.store.reader import StoreReader

_TM = TransformerManager()


def tr(raw: str):
    return translate(_TM.transform_cell(raw), raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("%time x = f(1)", "x = f(1)"),
    ("%%time\nx = 1\ny = 2\n", "x = 1\ny = 2"),
    ("%%capture\nprint(1)\nz = 3\n", "print(1)\nz = 3"),
    ("%%capture out\nprint(1)\nz = 3\n",
     "with _mnb.capture(stdout=True, stderr=True) as out:\n    print(1)\n    z = 3"),
    ("%%capture --no-stderr\nz = 3\n",
     "with _mnb.capture(stdout=True, stderr=False):\n    z = 3"),
    ("%matplotlib inline\nx = 1", "x = 1"),
    ("%config InlineBackend.figure_format = 'svg'\nx = 1", "x = 1"),
    ("%load_ext autoreload\n%autoreload 2\nx = 1", "x = 1"),
    ("%env A=b c", "os.environ['A'] = 'b c'"),
    ("%env A b", "os.environ['A'] = 'b'"),
    ("%env", ""),
    ("%cd data", "os.makedirs('data', exist_ok=True)\nos.chdir('data')"),
    ("!pip install -q pandas==2.0 'scikit-learn>=1.3'", ""),
    ("%pip install tinydb", ""),
    ("x = 1\ndf.head()", "x = 1"),
    ("x = 1\nx", "x = 1"),
    ("model.fit(X, y)", "model.fit(X, y)"),
    ("%%time\n%time a = 1\n", "a = 1"),
    ("!ls -la", "_mnb.shell('ls -la')"),
    ("files = !ls {d}/*.csv\nn = len(files)", "files = _mnb.getoutput(f'ls {d}/*.csv')\nn = len(files)"),
    ("!echo $DATA_DIR", "_mnb.shell(f'echo {DATA_DIR}')"),
])
def test_translation(raw, expected):
    out = tr(raw)
    assert out.refused == []
    assert ast.unparse(ast.Module(out.body, [])) == expected


def test_pip_lines_become_requirements():
    assert tr("!pip install -q pandas==2.0 'scikit-learn>=1.3'").requirements == [
        "pandas==2.0", "scikit-learn>=1.3"]
    assert tr("%pip install -U tinydb").requirements == ["tinydb"]


@pytest.mark.parametrize(("raw", "word"), [
    ("!conda install -y numpy", "installs software"),
    ("!python -m pip install -e .", "installs software"),
    ("%timeit f()", "%timeit"),
    ("%%bash\necho hi\n", "%%bash"),
    ("%load_ext cython", "cython"),
    ("%run -m other", "%run option -m"),
    ("!pip install -r reqs.txt", "installs software"),
    ("!pip install 'x; rm -rf /'", "installs software"),
    ("%env BAD-NAME=1", "cannot translate"),
    ("await asyncio.sleep(0)", "await"),
    ("def f():\n    return get_ipython()", "IPython call"),
])
def test_untranslatable_syntax_is_refused_with_its_line(raw, word):
    out = tr(raw)
    assert out.refused and word in out.refused[0]


def test_refusal_names_the_raw_line():
    out = tr("x = 1\n%who_ls\n%xdel x")
    assert out.refused == ["%xdel x: magic %xdel has no plain-Python translation"]


def test_display_only_expressions():
    parse = lambda s: ast.parse(s).body[0]  # noqa: E731
    assert is_display_only(parse("df.shape"))
    assert is_display_only(parse("display(df)"))
    assert is_display_only(parse("df.describe()"))
    assert not is_display_only(parse("df.sample(3).head()"))  # sample draws from the RNG
    assert not is_display_only(parse("model.fit(X)"))
    assert not is_display_only(parse("x = 1"))


def _log(*cells: str) -> tuple[list[CellRun], dict[int, str]]:
    from mlops_nb.capture.analysis import analyze

    log, code = [], {}
    for i, c in enumerate(cells):
        a = analyze(c)
        log.append(CellRun(id=f"{i:032x}", session="s", experiment="e", seq=i, started_at=0.0,
                           defs=a.defs, uses=a.uses, mutations=a.mutations,
                           files_read=a.files_read, files_written=a.files_written,
                           metrics={"score": 1} if c.startswith("score") else {}))
        code[i] = c
    return log, code


def test_slice_reasons_and_position_in_the_log():
    log, code = _log("a = 1", "b = 2", "c = a + 1", "score = c", "a = 5", "score = c + a")
    sl = compute_slice(log, log[3], code)
    assert [c.seq for c in sl.cells] == [0, 2, 3]
    assert sl.cells[0].reasons == ["a -> seq 2"]
    sl = compute_slice(log, log[5], code)
    assert [c.seq for c in sl.cells] == [0, 2, 4, 5]


def test_slice_follows_files_aliases_and_reports_unresolved_names():
    log, code = _log("import json\nopen('f.txt', 'w').write('x')", "t = open('f.txt').read()",
                     "u = [1]", "v = u", "v.append(2)", "score = len(t) + len(u) + mystery")
    sl = compute_slice(log, log[5], code)
    assert [c.seq for c in sl.cells] == [0, 1, 2, 3, 4, 5]
    assert sl.unresolved == {"mystery": [5]}


def test_literal_loops_are_sweeps_and_range_loops_are_curves():
    assert literal_loop_targets("for lr in [0.1, 0.2]:\n    pass") == ["lr"]
    assert literal_loop_targets("for a, b in ((1, 2), (3, 4)):\n    pass") == ["a", "b"]
    assert literal_loop_targets("for lr in lrs:\n    for d in (1, 2):\n        pass") == [
        "lr", "d"]
    assert literal_loop_targets("for epoch in range(3):\n    pass") == []
    assert literal_loop_targets("x = 1") == []


def test_a_training_curve_stays_one_run_with_steps(tracked):
    tracked.run("import mlops_nb as mnb")
    tracked.run("for epoch in range(3):\n    mnb.log_metric('loss', 1.0 / (epoch + 1))")
    tracked.flush()
    reader = StoreReader(tracked.tracker.home)
    (run,) = [cr for cr in reader.session_log(tracked.tracker.session) if cr.is_run]
    assert run.metrics == {"loss": 1.0 / 3} and len(run.metric_steps["loss"]) == 3
    assert run.parent is None


def test_a_sweep_gives_one_run_per_iteration_with_lineage(tracked):
    tracked.run("import mlops_nb as mnb\nbase = 1.0")
    tracked.run("for lr in [0.1, 0.2]:\n"
                "    mnb.log_metric('acc', base + lr)\n"
                "    mnb.log_metric('f1', base - lr)")
    tracked.flush()
    reader = StoreReader(tracked.tracker.home)
    log = reader.session_log(tracked.tracker.session)
    runs = [cr for cr in log if cr.is_run]
    parent = next(cr for cr in log if cr.metric_steps)
    assert not parent.is_run
    assert [(r.params, r.metrics, r.iteration) for r in runs] == [
        ({"lr": 0.1}, {"acc": 1.1, "f1": 0.9}, 0), ({"lr": 0.2}, {"acc": 1.2, "f1": 0.8}, 1)]
    assert all(r.parent == parent.id and parent.id in lineage_ids(log, r) for r in runs)
    assert runs[1].effective_params == {"base": 1.0, "lr": 0.2}


def test_a_lambda_binds_late_like_a_def():
    log, code = _log("k = 2", "f = lambda x: x * k", "k = 3", "score = f(2)")
    sl = compute_slice(log, log[3], code)
    assert [c.seq for c in sl.cells] == [0, 1, 2, 3]  # k = 3 (seq 2) is in: the call reads it
