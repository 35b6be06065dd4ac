"""The column-wise parameter model (`comparison/identity.py`: `Coded`) against the plain
per-run rules it computes in numpy: a value per run, MISSING when not set, None when set to
None; two settings are one value exactly when `hashable` says so (True is not 1)."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_nb.comparison.identity import (
    _agree,
    default_names,
    encode,
    hashable,
    names_by_id,
    plan_params,
)
from mlops_nb.comparison.query import MISSING
from mlops_nb.table import SharedAttr

NOT_SET = object()
VALUES = st.one_of(st.just(NOT_SET), st.none(), st.integers(-3, 3), st.booleans(),
                   st.sampled_from([0.5, 1.0, 1e-4, 2.5]), st.sampled_from(["a", "b", "auto"]))


def _frame(columns: dict[str, list]) -> pd.DataFrame:
    """Runs as `mnb.runs()` gives them: NA where not set or None, None-sets in attrs."""
    n = len(next(iter(columns.values())))
    ids = [f"{i:032x}" for i in range(n)]
    data: dict[str, object] = {"id": ids}
    nones: dict[str, list[str]] = {}
    for col, vals in columns.items():
        cells = [None if v is NOT_SET or v is None else v for v in vals]
        try:
            data[col] = pd.array(cells)
        except (TypeError, ValueError):
            data[col] = pd.array(cells, dtype=object)
        for rid, v in zip(ids, vals, strict=True):
            if v is None:
                nones.setdefault(rid, []).append(col.removeprefix("params."))
    df = pd.DataFrame(data)
    df.attrs["params_none"] = SharedAttr({rid: nones.get(rid) for rid in ids})
    return df


def _plain(vals: list) -> list:
    return [MISSING if v is NOT_SET else v for v in vals]


column = st.lists(VALUES, min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(column)
def test_encode_gives_each_run_its_value(vals):
    df = _frame({"params.p": vals})
    got = encode(df, "params.p").values()
    want = _plain(vals)
    assert [hashable(g) if g is not MISSING else g for g in got] == \
        [hashable(w) if w is not MISSING else w for w in want]
    coded = encode(df, "params.p")
    assert coded.distinct() == len({hashable(v) for v in want if v is not MISSING})


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 10).flatmap(lambda n: st.tuples(st.lists(VALUES, min_size=n, max_size=n),
                                                       st.lists(VALUES, min_size=n, max_size=n))))
def test_agree_and_fill_are_the_per_run_rules(pair):
    a_vals, b_vals = pair
    df = _frame({"params.a": a_vals, "params.b": b_vals})
    a, b = encode(df, "params.a"), encode(df, "params.b")
    both = [(x, y) for x, y in zip(_plain(a_vals), _plain(b_vals), strict=True)
            if x is not MISSING and y is not MISSING]
    agree = all(hashable(x) == hashable(y) for x, y in both)
    got_agree, got_both = _agree(a, b)
    assert got_agree == agree
    if agree:
        assert got_both == len(both)
    filled = a.filled_from(b).values()
    want = [y if x is MISSING else x for x, y in zip(_plain(a_vals), _plain(b_vals), strict=True)]
    assert [v if v is MISSING else hashable(v) for v in filled] == \
        [v if v is MISSING else hashable(v) for v in want]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["RandomForestClassifier", "Ridge", None]),
                          st.sampled_from([1, 2, 3]), st.sampled_from([0.1, 0.2])),
                min_size=2, max_size=10), st.data())
def test_names_of_some_runs_are_their_names_among_all(runs, data):
    df = pd.DataFrame({"id": [f"{i:06x}{0:026x}" for i in range(len(runs))],
                       "model": [m for m, _, _ in runs],
                       "params.depth": pd.array([d for _, d, _ in runs]),
                       "params.lr": pd.array([lr for _, _, lr in runs])})
    names, auto = default_names(df, plan_params(df))
    assert all(auto) and len(set(names)) == len(names)  # two runs never share a made-up name
    full = names_by_id(df)
    some = sorted(data.draw(st.sets(st.integers(0, len(runs) - 1), min_size=1)))
    part = df.iloc[some].reset_index(drop=True)
    shown, _ = default_names(part, plan_params(part), full)
    assert shown == [names[i] for i in some]


def test_a_redacted_parameter_names_no_run():
    """A credential bound in one run's lineage (`password = '...'`, stored redacted) was what
    told its name from the others': `RandomForest · max_depth=6 · password=<redacted>`."""
    df = pd.DataFrame({"id": [f"{i:032x}" for i in range(3)],
                       "model": ["RandomForestClassifier"] * 3,
                       "params.max_depth": pd.array([6, 6, 8]),
                       "params.password": pd.array([None, "<redacted>", None], dtype=object)})
    names, _ = default_names(df, plan_params(df))
    assert not any("password" in n for n in names), names
    assert names[2] == "RandomForest · max_depth=8"
