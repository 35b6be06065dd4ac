"""Hostile objects, names and values in the user's cells: capture never breaks a cell and the
store stays writable and readable."""

from __future__ import annotations

import json
import math
import re

import pytest

import mlops_nb as mnb
from mlops_nb.lineage import resolve_value_refs
from mlops_nb.store.layout import SESSIONS_DIR
from mlops_nb.store.reader import StoreReader

from .harness import cli, last_cell_run, store_files

# -- capture never breaks the user's cell ------------------------------------------------------
HOSTILE_OBJECTS = """
import math
import numpy as np
import pandas as pd
import mlops_nb as mnb

class Unprintable:
    def __repr__(self): raise RuntimeError("no repr for you")
    __str__ = __repr__

class BrokenEstimator:
    def fit(self, X=None, y=None):
        self.coef_ = 1.0
        return self
    def get_params(self, deep=True): raise RuntimeError("get_params exploded")

class Unlistable(list):
    def __iter__(self): raise RuntimeError("cannot iterate")

class BombName(str):
    def __hash__(self): raise RuntimeError("hash bomb")
    def __eq__(self, other): raise RuntimeError("eq bomb")

class HostileFrame(pd.DataFrame):
    @property
    def _constructor(self): return HostileFrame
"""



@pytest.mark.parametrize(
    ("cell", "check", "warning"),
    [
        ("mnb.log_param('obj', Unprintable())\nok = 1", "ok == 1", "param obj"),
        ("est = BrokenEstimator().fit()\nok = 2", "ok == 2", "get_params exploded"),
        ("frame = pd.DataFrame({'a': [Unprintable(), 1]})\nok = 3", "ok == 3",
         "could not fingerprint frame"),
        ("hf = HostileFrame({'a': [Unprintable(), 2.0]})\nok = 4", "isinstance(hf, pd.DataFrame)",
         None),
        ("_ = mnb.log_metric('acc', 'high')\nok = 5", "ok == 5", "acc: metric value 'high'"),
        ("_ = mnb.log_metric('acc', float('nan'))\nok = 6", "ok == 6", "not finite"),
        ("_ = mnb.log_metric('loss', -math.inf)\nok = 7", "ok == 7", "not finite"),
        ("_ = mnb.log_metric('acc', 10**5000)\nok = 8", "ok == 8", "metrics.acc: not storable"),
        ("acc = np.float64('nan')\nok = 9", "ok == 9", "is not finite"),
        ("score = Unprintable()\nok = 10", "ok == 10", None),
        ("mnb.log_param('huge', 10**5000)\nok = 11", "ok == 11", None),
        ("_ = mnb.log_metric(Unprintable(), 1.0)\nok = 12", "ok == 12", "not a non-empty string"),
        ("_ = mnb.log_metric('acc', Unprintable())\nok = 13", "ok == 13",
         "Unprintable object> is not a number"),
        ("mnb.log_param('d', {Unprintable(): [Unprintable()]})\nok = 14", "ok == 14", None),
        ("mnb.log_param('l', Unlistable([1]))\nok = 15", "ok == 15", "log_param failed"),
        ("_ = mnb.log_metric('acc', Unlistable([1]))\nok = 16", "ok == 16",
         "log_metric failed"),
        ("_ = mnb.log_metric(BombName('acc'), 0.5)\nok = 17", "ok == 17", None),
    ],
    ids=["repr-raises", "get-params-raises", "hash-raises", "frame-subclass", "metric-str",
         "metric-nan", "metric-minus-inf", "metric-10**5000", "auto-metric-nan",
         "auto-metric-unprintable", "param-10**5000", "metric-name-unprintable",
         "metric-value-unprintable", "param-dict-unprintable", "param-iter-raises",
         "metric-iter-raises", "metric-name-str-subclass-hash-raises"],
)
def test_capture_never_breaks_the_users_cell(tracked, cell, check, warning):
    tracked.run(HOSTILE_OBJECTS)
    result = tracked.run(cell, check=False)
    assert result.success, result.error_in_exec
    cr = last_cell_run(tracked)
    assert tracked.run(check).result is True
    assert cr.status == "ok" and cr.error is None
    if warning is not None:
        assert any(warning in w for w in cr.warnings), cr.warnings
    # Whatever the cell held, the store stays writable and readable afterwards.
    tracked.run("after = 1\nf1 = 0.5")
    tracked.flush()
    assert tracked.tracker.writer.error is None
    df = mnb.runs(home=tracked.tracker.home)
    assert df.attrs["problems"] == []
    assert df["metrics.f1"].iloc[-1] == 0.5


def test_values_json_cannot_hold_are_kept_as_text_and_later_cells_still_written(tracked):
    # An int past 4300 digits has no JSON text; one such value must not block the session.
    tracked.run("import mlops_nb as mnb")
    big_literal = "0x" + "f" * 4000  # a literal param, 16,000 bits
    tracked.run(f"_ = mnb.log_metric('acc', 10**5000)\nbig = {big_literal}\n"
                "mnb.log_param('huge', -(10**5000))")
    cr = last_cell_run(tracked)
    assert cr.metrics["acc"].startswith("<int of 16610 bits")
    assert cr.params["big"].startswith("<int of 16000 bits")
    assert cr.params["huge"].startswith("<int of 16610 bits")
    assert any(w.startswith("metrics.acc: not storable") for w in cr.warnings), cr.warnings
    assert any(w.startswith("params.big: not storable") for w in cr.warnings), cr.warnings
    tracked.run("f1 = 0.5")
    tracked.flush()
    assert tracked.tracker.writer.error is None
    df = mnb.runs(home=tracked.tracker.home)
    assert df.attrs["problems"] == []
    assert list(df["metrics.f1"].dropna()) == [0.5]
    assert len(df) == 2


def test_a_hostile_metric_like_variable_does_not_cost_the_cells_logged_metrics(tracked):
    tracked.run(
        "import mlops_nb as mnb\n"
        "class Sneaky:\n"
        "    def __getattr__(self, name): raise RuntimeError(f'no {name} here')\n"
    )
    tracked.run("score = Sneaky()\nval_loss = Sneaky()\n_ = mnb.log_metric('f1', 0.9)\nok = 1")
    cr = last_cell_run(tracked)
    assert cr.metrics == {"f1": 0.9}
    assert cr.status == "ok"
    assert list(mnb.runs(home=tracked.tracker.home)["metrics.f1"]) == [0.9]


# -- hostile names and values ------------------------------------------------------------------
HOSTILE_NAMES = [
    "x; import os",
    "two\nlines",
    "quotes \" ' `",
    "nul\x00byte",
    "rtl\u202eevil",
    "{__import__('os').system('echo pwned')}",
    "n" * 3000,
    "tab\tand\rreturn\x1b[31mred",
]
HOSTILE_VALUES = [
    "x; import os",
    "a\nb",
    "\x00",
    "\u202e",
    "{__import__('os')}",
    "'; DROP TABLE runs; --",
    "v" * 10_000,
    "\udcff",  # what os.fsdecode makes of a non-UTF-8 byte in a path
]


def test_hostile_names_and_values_round_trip_and_print_escaped(tracked, capsys):
    ns = tracked.ns
    ns["HOSTILE_NAMES"], ns["HOSTILE_VALUES"] = HOSTILE_NAMES, HOSTILE_VALUES
    tracked.run(
        "import math, mlops_nb as mnb\n"
        "for i, name in enumerate(HOSTILE_NAMES):\n"
        "    mnb.log_param(name, HOSTILE_VALUES[i])\n"
        "    mnb.log_metric(name, 0.5 + i)\n"
        "mnb.log_param('nan', math.nan); mnb.log_param('inf', math.inf)\n"
        "mnb.log_param('ninf', -math.inf)\n"
        "mnb.log_param(42, 'int name'); mnb.log_param(None, 'none name')\n"
        "_ = mnb.log_metric(('t', 1), 2.0)\n"
    )
    cr = last_cell_run(tracked)
    # a large value is stored once as a blob and referred to (issue 8 item 3)
    params = resolve_value_refs(cr.params, StoreReader(tracked.tracker.home).blobs)
    for i, name in enumerate(HOSTILE_NAMES):
        assert params[name] == HOSTILE_VALUES[i]
        assert cr.metrics[name] == 0.5 + i
    assert math.isnan(cr.params["nan"]) and cr.params["inf"] == math.inf
    assert cr.params["ninf"] == -math.inf
    assert cr.params["42"] == "int name" and cr.params["None"] == "none name"
    assert cr.metrics["('t', 1)"] == 2.0
    assert sum("not a non-empty string" in w for w in cr.warnings) == 3

    home = str(tracked.tracker.home)
    code, out, err = cli(capsys, "--home", home, "runs")
    assert code == 0, err
    for raw in ("\x00", "\u202e", "\x1b", "\r", "\udcff"):
        assert raw not in out
    assert "\\x00" in out and "\\u202e" in out
    # the line of parameters shared by all runs, header, one row: no name broke a line
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("same for all runs: ")

    code, out, err = cli(capsys, "--home", home, "show", cr.id)
    assert code == 0, err
    for raw in ("\x00", "\u202e", "\x1b", "\r", "\udcff"):
        assert raw not in out
    assert "x; import os" in out and "\\u202e" in out and "two\\nlines" in out

    code, out, err = cli(capsys, "--home", home, "show", cr.id, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    for i, name in enumerate(HOSTILE_NAMES):
        assert doc["params"][name] == HOSTILE_VALUES[i]
        assert doc["metrics"][name] == 0.5 + i
    assert doc["params"]["nan"] is None and doc["params"]["inf"] is None  # JSON has no NaN

    code, out, err = cli(capsys, "--home", home, "runs", "--format", "json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["metrics." + HOSTILE_NAMES[3]] == 3.5
    assert row["params." + HOSTILE_NAMES[5]] == HOSTILE_VALUES[5]

    code, out, err = cli(capsys, "--home", home, "runs", "--format", "csv")
    assert code == 0, err
    assert "nul" in out


def test_hostile_experiment_name_is_stored_and_filtered(shell, capsys):
    name = "../../etc/passwd\x00\u202e; rm -rf /"
    shell.run("%load_ext mlops_nb")
    shell.run("%track on")
    shell.tracker.experiment = name  # no magic line can carry a NUL; the API can
    shell.run("acc = 0.75")
    shell.flush()
    home = shell.tracker.home
    [exp_dir] = (home / SESSIONS_DIR).iterdir()
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", exp_dir.name), exp_dir.name
    assert all(p.resolve().is_relative_to(home.resolve()) for p in store_files(home))
    assert sorted(p.name for p in home.parent.iterdir()) == [".mlops_nb"]
    df = mnb.runs(name, home=home)
    assert list(df["metrics.acc"]) == [0.75]
    code, out, _ = cli(capsys, "--home", str(home), "runs", "--experiment", name)
    assert code == 0 and "\x00" not in out and "\u202e" not in out
    assert out.splitlines()[-1].split()[0] == df["id"][0][:8] and " 0.75 " in out


# -- the user's own failures -------------------------------------------------------------------
def test_missing_data_file_is_recorded_as_an_error_and_the_store_is_fine(tracked):
    tracked.run("import pandas as pd")
    result = tracked.run("df = pd.read_csv('missing.csv')", check=False)
    assert isinstance(result.error_in_exec, FileNotFoundError)
    tracked.run("acc = 0.5")
    tracked.flush()
    reader = StoreReader(tracked.tracker.home)
    log = reader.session_log(tracked.tracker.session)
    [failed] = [cr for cr in log if cr.status == "error"]
    assert failed.error["type"] == "FileNotFoundError"
    assert "missing.csv" in failed.error["message"]
    assert failed.files_read == ["missing.csv"]
    assert "file:missing.csv" not in failed.data
    assert not any("not a file" in w for w in failed.warnings)
    assert [cr.status for cr in log].count("ok") == len(log) - 1
    assert reader.problems == []
    df = mnb.runs(home=tracked.tracker.home)
    assert list(df["metrics.acc"]) == [0.5] and df.attrs["problems"] == []


