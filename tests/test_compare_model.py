"""The comparison model without any widget: columns, sort, filter, best, diff."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlops_nb as mnb
from mlops_nb.comparison.model import (
    Comparison,
    Filter,
    best_runs,
    default_metric,
    diff_runs,
    diff_values,
    filter_runs,
    flatten_environment,
    resolve_metric,
    sort_runs,
    split_params,
)
from mlops_nb.errors import MlopsNbError
from mlops_nb.store.index import Columns
from mlops_nb.store.reader import RunColumns, StoreReader
from mlops_nb.table import runs_frame


def frame(rows: list[dict]) -> pd.DataFrame:
    """A runs DataFrame built the way `mnb.runs()` builds it, from summary rows."""
    cols = Columns()
    for i, row in enumerate(rows):
        base = {"id": f"{i:032x}", "experiment": "e", "session": "s", "seq": i,
                "started_at": 1_790_000_000.0 + i, "duration_s": 1.0, "status": "ok"}
        full = {**base, **{k: v for k, v in row.items() if k in ("id", "name")}}
        for k, v in row.items():
            if k not in ("id", "name"):
                full[k if "." in k else ("metrics." + k if k in ("f1", "acc", "val_loss")
                                         else "params." + k)] = v
        cols.add_row(full)
    return runs_frame(RunColumns(cols.cols, cols.n))


RUNS = [
    {"name": "rf", "max_depth": 3, "lr": 0.1, "seed": 0, "f1": 0.80, "val_loss": 0.3},
    {"name": "rf", "max_depth": 5, "lr": 0.01, "seed": 0, "f1": 0.90, "val_loss": 0.2},
    {"name": "gbm", "max_depth": None, "lr": 0.001, "seed": 0, "f1": float("nan"),
     "val_loss": 0.25},
    {"name": "gbm", "max_depth": 5, "lr": 0.1, "seed": 0, "f1": 0.90, "val_loss": 0.4},
]


# -- columns ---------------------------------------------------------------------------------------
def test_varying_and_constant_parameters():
    split = split_params(frame(RUNS))
    assert split.varying == ["params.max_depth", "params.lr"]
    assert split.constant == {"params.seed": 0}


def test_set_in_some_runs_only_is_folded_and_lists_do_not_break_detection():
    df = frame([{"a": 1, "opts": [1, 2], "b": 1, "f1": 0.1},
                {"opts": [1, 2], "b": None, "f1": 0.2},
                {"opts": [1, 2], "b": 2, "f1": 0.3}])
    split = split_params(df)
    assert split.varying == ["params.b"]  # 1 vs 2 (and one run without it)
    assert split.constant == {"params.a": 1, "params.opts": [1, 2]}
    assert split.present == {"params.a": 1, "params.opts": 3}


def test_one_run_has_nothing_varying():
    split = split_params(frame(RUNS[:1]))
    assert split.varying == []
    assert set(split.constant) == {"params.max_depth", "params.lr", "params.seed"}


def test_default_metric_is_the_most_common_and_unknown_metric_is_a_clear_error():
    df = frame([{"f1": 0.1}, {"f1": 0.2, "acc": 0.3}])
    assert default_metric(df) == "metrics.f1"
    assert resolve_metric(df, "acc") == "metrics.acc"
    assert resolve_metric(df, "metrics.acc") == "metrics.acc"
    with pytest.raises(MlopsNbError, match=r"no run has metric 'auc'.*f1, acc"):
        resolve_metric(df, "auc")
    assert default_metric(frame([{"x": 1}])) is None


# -- sort ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ascending", [True, False])
def test_sort_puts_missing_last_both_ways(ascending):
    df = frame(RUNS)
    out = sort_runs(df, "metrics.f1", ascending=ascending)
    values = list(out["metrics.f1"])
    assert math.isnan(values[-1])
    assert values[:3] == sorted(values[:3], reverse=not ascending)
    out = sort_runs(df, "params.max_depth", ascending=ascending)
    assert pd.isna(out["params.max_depth"].iloc[-1])


def test_sort_is_stable_for_ties():
    out = sort_runs(frame(RUNS), "metrics.f1", ascending=False)
    assert list(out["id"][:2]) == [f"{1:032x}", f"{3:032x}"]  # tie at 0.9 keeps run order


def test_sort_mixed_types_numbers_then_text_then_missing():
    df = frame([{"depth": "auto", "f1": 1}, {"depth": 10, "f1": 1}, {"depth": 2, "f1": 1},
                {"f1": 1}])
    assert list(sort_runs(df, "params.depth")["params.depth"])[:3] == [2, 10, "auto"]
    assert list(sort_runs(df, "params.depth", ascending=False)["params.depth"])[:3] == \
        [10, 2, "auto"]
    with pytest.raises(MlopsNbError):
        sort_runs(df, "params.nope")


# -- filter ----------------------------------------------------------------------------------------
def test_filter_free_text_matches_names_and_params_case_insensitively():
    df = frame(RUNS)
    assert list(filter_runs(df, Filter("GBM"))["name"]) == ["gbm", "gbm"]
    assert len(filter_runs(df, Filter("max_depth=5"))) == 2
    assert len(filter_runs(df, Filter("rf lr=0.01"))) == 1  # every token must match
    assert len(filter_runs(df, Filter("nothing-like-this"))) == 0


def test_filter_comparisons_on_parameters():
    df = frame(RUNS)
    assert len(filter_runs(df, Filter("lr<0.05"))) == 2
    assert len(filter_runs(df, Filter("lr>=0.1"))) == 2
    assert len(filter_runs(df, Filter("max_depth!=5"))) == 2  # 3 and missing
    assert len(filter_runs(df, Filter("MAX_DEPTH=3"))) == 1
    with pytest.raises(MlopsNbError, match="not a number"):
        filter_runs(df, Filter("lr>abc"))


def test_filter_by_metric_range_excludes_missing():
    df = frame(RUNS)
    assert len(filter_runs(df, Filter("", "metrics.f1", 0.85, None))) == 2
    assert len(filter_runs(df, Filter("", "metrics.f1", None, 0.85))) == 1
    assert len(filter_runs(df, Filter("", "metrics.f1", 0.8, 0.9))) == 3
    assert len(filter_runs(df, Filter("rf", "metrics.val_loss", 0.0, 0.25))) == 1


# -- best ------------------------------------------------------------------------------------------
def test_best_keeps_every_tie_and_ignores_nan():
    df = frame(RUNS)
    assert best_runs(df, "metrics.f1") == [f"{1:032x}", f"{3:032x}"]


def test_best_follows_the_goal():
    df = frame(RUNS)
    assert best_runs(df, "metrics.val_loss") == [f"{1:032x}"]  # a loss: lower is better
    assert best_runs(df, "metrics.val_loss", "max") == [f"{3:032x}"]
    assert best_runs(df, "metrics.f1", "min") == [f"{0:032x}"]


def test_best_with_no_finite_value_is_empty():
    df = frame([{"f1": float("nan")}, {"f1": None}, {"acc": 1.0}])
    assert best_runs(df, "metrics.f1") == []
    assert best_runs(df, None) == []
    assert best_runs(frame([{"f1": "n/a"}, {"f1": 0.5}]), "metrics.f1") == [f"{1:032x}"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.just(float("nan")),
                          st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=12))
def test_best_is_exactly_the_runs_at_the_finite_maximum(values):
    df = frame([{"f1": v} for v in values])
    finite = [v for v in values if v is not None and not math.isnan(v)]
    expected = [f"{i:032x}" for i, v in enumerate(values) if finite and v == max(finite)]
    assert best_runs(df, "metrics.f1") == expected


# -- the comparison state --------------------------------------------------------------------------
def test_comparison_defaults_to_best_first_and_folds_constants():
    cmp = Comparison(frame(RUNS), metric="f1")
    assert cmp.sort_by == "metrics.f1"
    assert list(cmp.view["metrics.f1"])[:2] == [0.9, 0.9]
    assert "params.seed" not in cmp.columns and "params.lr" in cmp.columns
    assert cmp.columns[:3] == ["id", "name", "metrics.f1"]
    cmp.set_filter("gbm")
    assert len(cmp.view) == 2 and cmp.best == [f"{1:032x}", f"{3:032x}"]  # best over all runs
    cmp.set_sort("params.lr", ascending=True)
    assert list(cmp.view["params.lr"]) == [0.001, 0.1]
    cmp.set_metric("val_loss")
    assert cmp.goal == "min" and cmp.best == [f"{1:032x}"]


def test_paging():
    cmp = Comparison(frame([{"f1": i / 100} for i in range(23)]), metric="f1")
    assert cmp.pages(10) == 3
    assert len(cmp.page(2, 10)) == 3
    assert cmp.page(0, 10)["metrics.f1"].iloc[0] == 0.22
    assert Comparison(frame([]), metric=None).pages(10) == 1


def test_empty_store_is_a_valid_comparison():
    cmp = Comparison(frame([]))
    assert cmp.metric is None and cmp.best == [] and len(cmp.view) == 0


# -- diff ------------------------------------------------------------------------------------------
def test_diff_values_reports_changed_and_missing_keys():
    rows, same = diff_values({"a": 1, "b": 2, "c": True, "n": float("nan")},
                             {"a": 1, "b": 3, "c": 1, "d": 4, "n": float("nan")})
    assert same == 2  # a and n (NaN equals NaN here)
    assert rows == [("b", 2, 3), ("c", True, 1), ("d", "(missing)", 4)]


def test_flatten_environment():
    env = {"python": "3.11.9", "platform": "Linux", "git": {"commit": "abc", "dirty": True},
           "packages": {"numpy": "2.0"}}
    assert flatten_environment(env) == {"python": "3.11.9", "platform": "Linux",
                                        "git.commit": "abc", "git.dirty": True,
                                        "package numpy": "2.0"}
    assert flatten_environment(None) == {}


def test_diff_of_two_real_runs(tracked):
    tracked.run("import numpy as np\nX = np.arange(10.0)")
    tracked.run("max_depth = 3\nlr = 0.1")
    tracked.run("accuracy = float(np.mean(X) * max_depth * lr)")
    tracked.run("max_depth = 5\nlr = 0.1\nX = X * 2")
    tracked.run("accuracy = float(np.mean(X) * max_depth * lr)")
    tracked.run("accuracy = float(np.mean(X) * max_depth * lr)")
    tracked.flush()
    df = mnb.runs()
    a, b, c = df["id"]
    reader = StoreReader(tracked.tracker.home)
    d = diff_runs(reader, a, b)
    assert d.params == [("max_depth", 3, 5)]
    assert d.same_params == 1
    assert [name for name, _, _ in d.data] == ["X"]
    assert d.metrics == [("accuracy", 1.35, 4.5)]
    assert d.environment == [] and d.same_environment > 0  # one session, one environment
    assert "-max_depth = 3" in d.code and "+max_depth = 5" in d.code
    assert "+X = X * 2" in d.code
    assert d.code_a.startswith("# --- cell") and "import numpy as np" in d.code_a
    same = diff_runs(reader, b, c, sessions={b: df["session"][1], c: df["session"][2]})
    assert same.params == [] and same.data == [] and same.code == "" and same.identical


def _write_session(home, session: str, env: dict, runs: list[dict]) -> list[str]:
    """Runs written through the real SessionWriter, with a given session environment."""
    import uuid

    from mlops_nb.records import CellRun
    from mlops_nb.store.writer import SessionWriter

    writer = SessionWriter(home, session)
    writer.update_session(session=session, environment=env)
    code = writer.blobs.put(b"x = 1\n")
    ids = []
    for seq, run in enumerate(runs):
        cr = CellRun(id=uuid.uuid4().hex, session=session, experiment="e", seq=seq,
                     started_at=1_790_000_000.0 + seq, code=code, lineage=[], **run)
        writer.append(cr)
        ids.append(cr.id)
    writer.flush(30)
    writer.close()
    return ids


def test_diff_across_sessions_shows_the_environment(tmp_path):
    home = tmp_path / ".mlops_nb"
    env = {"python": "3.11.9", "packages": {"numpy": "2.0.0", "pandas": "2.2.0"},
           "git": {"commit": "a" * 40, "dirty": False}}
    (a,) = _write_session(home, "s1", env, [{"params": {"lr": 0.1}, "metrics": {"f1": 0.5}}])
    env2 = {**env, "packages": {"numpy": "2.1.0", "pandas": "2.2.0"},
            "git": {"commit": "b" * 40, "dirty": True}}
    (b,) = _write_session(home, "s2", env2, [{"params": {"lr": 0.1}, "metrics": {"f1": 0.6}}])
    d = diff_runs(StoreReader(home), a, b)
    assert d.environment == [("git.commit", "a" * 40, "b" * 40), ("git.dirty", False, True),
                             ("package numpy", "2.0.0", "2.1.0")]
    assert d.same_environment == 2  # python and pandas
    assert d.params == [] and d.code == ""


def test_ten_thousand_runs_go_to_the_view_as_one_compact_payload(tmp_path):
    from mlops_nb.comparison.widget import CompareWidget

    home = tmp_path / ".mlops_nb"
    _write_session(home, "big", {}, [
        {"params": {"lr": i / 10_000, "depth": i % 7}, "metrics": {"f1": (i * 7919 % 10_000)
                                                                    / 10_000}}
        for i in range(10_000)])
    w = CompareWidget(metric="f1", home=home)
    assert len(w.cmp.df) == 10_000
    p = w.payload
    assert p["n"] == 10_000 and len(p["data"]["params.depth"]) == 10_000
    assert p["data"]["metrics.f1"][0] == max(p["data"]["metrics.f1"])  # best first
    w.set_filter("depth=3 f1>=0.5")
    assert len(w.view) == int(((w.cmp.df["params.depth"] == 3)
                               & (w.cmp.df["metrics.f1"] >= 0.5)).sum())
