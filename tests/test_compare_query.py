"""The filter language, run identity and one-column-per-parameter, without a browser.

The parse and match vectors in tests/data/query_vectors.json are read by the front-end tests
too (frontend/test/query.test.js): both parsers must agree on every one.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_nb.comparison.identity import plan_params
from mlops_nb.comparison.model import load_comparison
from mlops_nb.comparison.payload import build_payload, payload_rows
from mlops_nb.comparison.query import (
    QueryError,
    acronym,
    closest,
    compile_query,
    parse,
    short_model,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "query_vectors.json").read_text("utf-8"))


@pytest.mark.parametrize("case", VECTORS["parse"], ids=lambda c: repr(c["query"]))
def test_parse_vectors(case):
    if "error" in case:
        with pytest.raises(QueryError) as err:
            parse(case["query"])
        assert str(err.value) == case["error"]
    else:
        assert [t.to_json() for t in parse(case["query"])] == case["terms"]


@pytest.mark.parametrize("case", VECTORS["match"], ids=lambda c: repr(c["query"]))
def test_match_vectors(case):
    cols, rows = VECTORS["columns"], VECTORS["rows"]
    if "error" in case:
        with pytest.raises(QueryError) as err:
            compile_query(case["query"], cols)
        assert str(err.value) == case["error"]
    else:
        pred = compile_query(case["query"], cols)
        assert [r["id"] for r in rows if pred(r)] == case["ids"]


def test_vectors_cover_the_documented_examples():
    queries = {c["query"] for c in VECTORS["match"]}
    assert {"model=RandomForest", "max_depth>=5", "f1>0.9", "name~rf", "max_depth=None",
            "lr=1e-4..1e-2", "max_dept>2"} <= queries
    errors = [c for c in VECTORS["match"] if "error" in c]
    assert any("closest: max_depth" in c["error"] for c in errors)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parse_never_crashes(text):
    try:
        terms = parse(text)
    except QueryError as exc:
        assert str(exc)  # a message, never a traceback from inside
        return
    for t in terms:
        assert t.op in ("text", "=", "!=", ">", ">=", "<", "<=", "~", "!~")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.one_of(st.none(), st.text(max_size=10), st.integers()))
def test_every_run_matches_name_contains_empty(name, value):
    cols = VECTORS["columns"]
    row = {"id": "ab", "name": name or "run", "params": {"max_depth": value}, "metrics": {}}
    assert compile_query('name~""', cols)(row)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_compiling_any_text_either_works_or_says_why(text):
    cols, rows = VECTORS["columns"], VECTORS["rows"]
    try:
        pred = compile_query(text, cols)
    except QueryError as exc:
        assert str(exc)
        return
    for r in rows:
        assert pred(r) in (True, False)


def test_names_helpers():
    assert acronym("RandomForestClassifier") == "rfc"
    assert short_model("RandomForestClassifier") == "RandomForest"
    assert short_model("Classifier") == "Classifier"
    assert closest("max_dept", ["name", "max_depth", "min_depth", "model"]) == \
        ["max_depth", "min_depth", "model"]


# -- run identity and parameter folding over a real store -----------------------------------------
def _write(home, runs: list[dict]) -> list[str]:
    from mlops_nb.records import CellRun
    from mlops_nb.store.writer import SessionWriter

    writer = SessionWriter(home, "s1")
    writer.update_session(session="s1", environment={})
    code = writer.blobs.put(b"x = 1\n")
    ids = []
    for seq, run in enumerate(runs):
        cr = CellRun(id=uuid.uuid4().hex, session="s1", experiment="e", seq=seq,
                     started_at=1_790_000_000.0 + seq, code=code, lineage=[], **run)
        writer.append(cr)
        ids.append(cr.id)
    writer.flush(30)
    writer.close()
    return ids


RF = "sklearn.ensemble._forest.RandomForestClassifier"
LR = "sklearn.linear_model._logistic.LogisticRegression"


def _rf(n, depth, **extra):
    est = {"n_estimators": n, "max_depth": depth, "criterion": "gini", "random_state": 0}
    return {"params": {"n_estimators": n, **{f"clf.{k}": v for k, v in est.items()}, **extra},
            "estimators": {"clf": {"class": RF, "params": est}}}


def _lr(c):
    est = {"C": c, "max_iter": 100, "random_state": None}
    return {"params": {"C": c, **{f"clf.{k}": v for k, v in est.items()}},
            "estimators": {"clf": {"class": LR, "params": est}}}


@pytest.fixture
def five_runs(tmp_path):
    home = tmp_path / ".mlops_nb"
    specs = [_rf(100, 8), _rf(300, 8), _rf(100, None), _lr(0.1), _lr(1.0)]
    f1 = [0.91, 0.93, 0.95, 0.81, 0.84]
    runs = [{**s, "metrics": {"f1": v}} for s, v in zip(specs, f1, strict=True)]
    runs[4]["name"] = "my favourite"
    ids = _write(home, runs)
    cmp, _ = load_comparison(metric="f1", home=home)
    return cmp, ids


def test_one_logical_parameter_per_knob(five_runs):
    cmp, _ = five_runs
    plan = cmp.plan
    # The notebook variable and the estimator's copy are one parameter; the variable wins.
    assert plan.params["params.n_estimators"].sources == ["params.n_estimators",
                                                         "params.clf.n_estimators"]
    assert plan.params["params.C"].sources == ["params.C", "params.clf.C"]
    # An estimator argument passed as a literal (max_depth) has no variable: its own column.
    assert plan.params["params.max_depth"].sources == ["params.clf.max_depth"]
    assert plan.columns == ["params.n_estimators", "params.C", "params.max_depth",
                            "params.random_state"]
    assert plan.constant == {}  # nothing is set, with one value, in every run
    assert plan.folded == {"criterion": "gini", "max_iter": 100}
    assert not [c for c in cmp.df.columns if c.startswith("params.clf.")]


def test_none_is_not_the_same_as_not_set(five_runs):
    cmp, _ = five_runs
    p = build_payload(cmp)
    rows = {r["name"]: r for r in payload_rows(p)}
    none_run = rows["RandomForest · n_estimators=100 · max_depth=None"]
    assert "max_depth" in none_run["params"] and none_run["params"]["max_depth"] is None
    assert "max_depth" not in rows["my favourite"]["params"]
    assert cmp.query_mask("max_depth=None").sum() == 1


def test_default_names_and_model_column(five_runs):
    cmp, ids = five_runs
    names = dict(zip(cmp.df["id"], cmp.df["name"], strict=True))
    assert names[ids[0]] == "RandomForest · n_estimators=100 · max_depth=8"
    assert names[ids[1]] == "RandomForest · n_estimators=300 · max_depth=8"
    assert names[ids[2]] == "RandomForest · n_estimators=100 · max_depth=None"
    assert names[ids[3]] == "LogisticRegression · C=0.1"
    assert names[ids[4]] == "my favourite"  # explicit names win
    assert list(cmp.df["name_auto"]) == [True, True, True, True, False]
    assert list(cmp.df["model"]) == ["RandomForestClassifier"] * 3 + ["LogisticRegression"] * 2
    assert cmp.query_mask("model=RandomForest n_estimators>=100 f1>0.92").sum() == 2
    assert cmp.query_mask("rf").sum() == 3
    with pytest.raises(QueryError, match="closest: n_estimators"):
        cmp.query_mask("n_estimator>3")


def test_same_for_all_runs_only_when_every_run_has_it(tmp_path):
    home = tmp_path / ".mlops_nb"
    _write(home, [{"params": {"seed": 0, "lr": 0.1, "extra": 1}, "metrics": {"f1": 0.5}},
                  {"params": {"seed": 0, "lr": 0.2}, "metrics": {"f1": 0.6}}])
    cmp, _ = load_comparison(home=home)
    plan = plan_params(cmp.raw)
    assert plan.constant == {"seed": 0}
    assert plan.columns == ["params.lr", "params.extra"]  # set in one run only: a column


def test_a_runs_details_show_each_parameter_once():
    from mlops_nb.comparison.identity import merged_params

    got = merged_params({"alpha": 0.5, "model.alpha": 0.5, "model.max_iter": 100,
                         "model.tol": 1e-3, "clf.tol": 1e-3, "lr": 0.1, "opt.lr": 0.2})
    # `model.alpha` echoes the variable `alpha`; `max_iter` and `tol` have no variable (and the
    # two `tol` entries agree); `opt.lr` disagrees with `lr`, so it keeps its full name.
    assert got == {"alpha": 0.5, "max_iter": 100, "tol": 1e-3, "lr": 0.1, "opt.lr": 0.2}
    assert merged_params({"flag": True, "m.flag": 1}) == {"flag": True, "m.flag": 1}


def test_server_run_detail_merges_parameters_as_the_table_does(tmp_path):
    from mlops_nb.server.service import run_detail

    ids = _write(tmp_path / ".mlops_nb", [_rf(100, 8, alpha=0.5, **{"clf.alpha": 0.5}),
                                          {**_lr(0.1), "metrics": {"f1": 0.8}}])
    params = run_detail(tmp_path, None, ids[0])["params"]
    assert params["alpha"] == 0.5 and "clf.alpha" not in params
    assert params["n_estimators"] == 100 and "clf.n_estimators" not in params
    assert params["max_depth"] == 8 and "clf.max_depth" not in params
