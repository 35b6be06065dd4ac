"""`mlops-nb runs`' first screen without pandas prints what the pandas path prints."""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_nb import cli
from mlops_nb.api import with_tags
from mlops_nb.first_screen import compact_text
from mlops_nb.records import CellRun
from mlops_nb.store.reader import StoreReader
from mlops_nb.store.writer import SessionWriter
from mlops_nb.table import runs_frame
from mlops_nb.textframe import BOOL, FLOAT, INT, OBJECT, TEXT, NotPlain, TextColumn, to_string


def pandas_text(home: Path, limit: int, experiment: str | None = None) -> str:
    """The table as the pandas path prints it (cli.cmd_runs without the first screen)."""
    reader = StoreReader(home)
    cols = reader.run_columns(experiment, newest=limit)
    df = with_tags(runs_frame(cols), home).tail(limit)
    names = cli._experiment_names(reader, experiment, [str(i) for i in df["id"]]) \
        if cols.total > len(df) else None
    return cli._table_text(df, some=cols.total > len(df), names=names)


def fast_text(home: Path, limit: int, experiment: str | None = None) -> str:
    reader = StoreReader(home)
    cols = reader.run_columns(experiment, newest=limit)
    text, _ = compact_text(cols, limit, printable=cli._printable, short_value=cli._short_value,
                           unique_prefixes=cli._unique_prefixes, column_cells=cli._column_cells,
                           whole=reader.run_columns(experiment))
    return text


def write_runs(home: Path, runs: list[dict[str, Any]], *, segment_size: int = 7) -> None:
    w = SessionWriter(home, "s", segment_size=segment_size)
    for i, fields in enumerate(runs):
        model = fields.pop("model", None)
        if model is not None:
            fields["estimators"] = {"clf": {"class": f"sklearn.linear_model.{model}"}}
        w.append(CellRun(id=f"{i:04d}" + "ab" * 14, session="s", seq=i,
                         started_at=1_700_000_000 + 37.5 * i, **fields))
    w.close()


# A store with what the table must print exactly: parameters of every type that vary, are
# constant, are missing in some runs or set to None; an estimator's echo of a notebook
# parameter; int, float, NaN, tiny and huge metrics; names long and explicit; two models.
def _varied(i: int) -> dict[str, Any]:
    params: dict[str, Any] = {"seed": 0, "dataset": "churn.csv", "lr": [0.1, 0.01, 1e-5][i % 3],
                              "depth": i % 4, "clf.max_depth": i % 4, "crit": ["gini", None][i % 2],
                              "mixed": [1, 0.5, "auto", True, None][i % 5],
                              "flag": bool(i % 2)}
    if i % 3:
        params["alpha"] = i * 1.5
    metrics: dict[str, Any] = {"f1": i / 7, "count": i * 1000}
    if i % 4 == 0:
        metrics["tiny"] = 1e-9 * (i + 1)
    if i % 6 == 1:
        metrics["huge"] = 1e7 * (i + 1) + 0.25
    return {"experiment": "e" if i % 5 else "other", "params": params, "metrics": metrics,
            "model": ["RandomForestClassifier", "LogisticRegression", None][i % 3],
            "name": "a very long explicit name for this run, longer than forty" if i == 7
            else None}


@pytest.fixture(scope="module")
def varied_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("varied") / ".mlops_nb"
    write_runs(home, [_varied(i) for i in range(30)])
    return home


@pytest.mark.parametrize("limit", [1, 2, 5, 20, 30, 40])
def test_first_screen_equals_the_pandas_table(varied_home, limit):
    assert fast_text(varied_home, limit) == pandas_text(varied_home, limit)


@pytest.mark.parametrize("experiment", ["e", "other"])
def test_first_screen_of_one_experiment(varied_home, experiment):
    assert fast_text(varied_home, 20, experiment) == pandas_text(varied_home, 20, experiment)


def test_runs_command_prints_the_pandas_text_without_importing_pandas(varied_home):
    code = ("import sys\nfrom mlops_nb.cli import main\n"
            f"rc = main(['--home', {str(varied_home)!r}, 'runs'])\n"
            "print('pandas' in sys.modules, file=sys.stderr)\nsys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stderr.strip() == "False"
    lines = proc.stdout.splitlines()
    assert "\n".join(lines[:-1]) == pandas_text(varied_home, cli.PAGE)
    assert lines[-1].startswith("... and 10 older runs not shown (20 of 30;")


@pytest.mark.parametrize("params", [
    {"features": ["age", "plan"]},  # a list varying between runs: pandas formats it
    {"id": "x"},  # plain, but under another run's column name
])
def test_what_only_pandas_prints_exactly_goes_the_pandas_way(tmp_path, capsys, params):
    home = tmp_path / ".mlops_nb"
    runs = [{"experiment": "e", "params": {k: (v if i % 2 else [v]) if k == "features" else v
                                           for k, v in params.items()},
             "metrics": {"f1": i / 3}} for i in range(4)]
    write_runs(home, runs)
    assert cli.main(["--home", str(home), "runs"]) == 0
    out = capsys.readouterr().out
    assert out == pandas_text(home, cli.PAGE) + "\n"
    if "features" in params:
        with pytest.raises(NotPlain):
            fast_text(home, cli.PAGE)


# -- the formatter, against pandas' to_string on random frames -----------------------------------
_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(min_value=-1e-5, max_value=1e-5),
                    st.floats(min_value=-1e8, max_value=1e8), st.sampled_from([0.0, -0.0, 0.5]))
_texts = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=50)
_ints = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


def _column(kind: str, n: int) -> st.SearchStrategy[list[Any]]:
    if kind == FLOAT:
        return st.lists(_floats, min_size=n, max_size=n)
    if kind == INT:
        return st.lists(_ints, min_size=n, max_size=n)
    if kind == BOOL:
        return st.lists(st.booleans(), min_size=n, max_size=n)
    if kind == TEXT:
        return st.lists(st.one_of(_texts, st.none()), min_size=n, max_size=n)
    return st.lists(st.one_of(_texts, _floats, st.integers(-10**6, 10**6), st.booleans(),
                              st.none()), min_size=n, max_size=n)


@st.composite
def _frames(draw: Any) -> list[TextColumn]:
    n = draw(st.integers(1, 6))
    kinds = draw(st.lists(st.sampled_from([FLOAT, INT, BOOL, TEXT, OBJECT]), min_size=1,
                          max_size=5))
    labels = draw(st.lists(st.text(st.characters(min_codepoint=97, max_codepoint=122),
                                   min_size=1, max_size=45), min_size=len(kinds),
                           max_size=len(kinds), unique=True))
    return [TextColumn(label, draw(_column(kind, n)), kind)
            for label, kind in zip(labels, kinds, strict=True)]


def _pandas_frame(columns: list[TextColumn]) -> Any:
    import pandas as pd

    data = {}
    for c in columns:
        if c.kind == TEXT:  # Arrow strings, missing values NA: the frame's base text columns
            data[c.label] = pd.array([v for v in c.values], dtype=pd.Series(["a"]).dtype)
        elif c.kind == OBJECT:
            data[c.label] = pd.Series(list(c.values), dtype=object)
        else:
            data[c.label] = pd.Series(list(c.values),
                                      dtype={FLOAT: "float64", INT: "int64", BOOL: "bool"}[c.kind])
    return pd.DataFrame(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_frames())
def test_to_string_is_pandas_to_string(columns):
    expected = _pandas_frame(columns).to_string(index=False, max_colwidth=40)
    assert to_string(columns) == expected


@pytest.mark.parametrize("values", [
    [1234567.1234], [1234567.12345], [12345678.0, 1.5], [1e-7, 1.0], [0.0], [-0.0, 1.0],
    [math.inf, 1.0], [-math.inf, 1234567.1234], [math.nan], [1e6, 0.1], [1000000.5, 2.0],
    [123456789012.0], [1e-6, 2.0], [9.9999999e-7], [0.1 + 0.2, 3.0],
])
def test_float_columns_at_the_notation_thresholds(values):
    for kind in (FLOAT, OBJECT):
        columns = [TextColumn("m", values, kind)]
        assert to_string(columns) == _pandas_frame(columns).to_string(index=False,
                                                                      max_colwidth=40)


def test_to_string_known_cases():
    cols = [TextColumn("acc", [0.5, 0.25, math.nan], FLOAT),
            TextColumn("depth", [3, 12, 7], INT),
            TextColumn("p", [1, 0.5, "auto"], OBJECT),
            TextColumn("name", ["x" * 45, "short", "y"], OBJECT)]
    assert to_string(cols) == (
        " acc  depth    p                                     name\n"
        "0.50      3    1 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\n"
        "0.25     12  0.5                                    short\n"
        " NaN      7 auto                                        y")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({
    "p": st.one_of(st.integers(-5, 5), st.floats(-1e3, 1e3), st.sampled_from(["a", "b"]),
                   st.booleans(), st.none()),
    "q": st.sampled_from([1, 2, 2.5, None]),
    "m": st.one_of(st.floats(-1, 1), st.integers(0, 3)),
    "model": st.sampled_from(["Ridge", "Lasso", None]),
}), min_size=1, max_size=12))
def test_first_screen_equals_pandas_on_random_runs(rows):
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / ".mlops_nb"
        write_runs(home, [{"experiment": "e", "model": r["model"],
                           "params": {k: r[k] for k in ("p", "q")},
                           "metrics": {"m": r["m"]}} for r in rows], segment_size=5)
        try:
            fast = fast_text(home, 8)
        except NotPlain:
            return  # the CLI takes the pandas path
        assert fast == pandas_text(home, 8)
