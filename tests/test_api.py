"""The Python API in a real InteractiveShell: start/stop, experiment, run name, tags, steps,
the typed `Run`, MLflow's column names, and clear errors outside IPython."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import typing

import pandas as pd
import pytest

import mlops_nb as mnb
from mlops_nb.errors import MlopsNbError


def _col(df, column):
    return [None if pd.isna(v) else v for v in df[column]]


def _runs(shell):
    shell.flush()
    return mnb.runs(home=shell.tracker.home)


def test_start_in_a_cell_records_that_cell_and_later_ones(shell):
    shell.run("import numpy as np\nimport mlops_nb as mnb\n"
              "t = mnb.start(experiment='churn', metrics=['lift'])\n"
              "max_depth = 3\nf1 = 0.5 + max_depth / 100\nlift = 2.0")
    assert shell.ns["t"].experiment == "churn" and shell.ns["t"].home.is_dir()
    shell.run("acc = float(np.float64(0.75))")
    df = _runs(shell)
    assert list(df["experiment"]) == ["churn", "churn"]
    first = mnb.get_run(df["id"][0], home=shell.tracker.home)
    assert first.metrics == {"f1": 0.53, "lift": 2.0} and first.params["max_depth"] == 3
    second = mnb.get_run(df["id"][1], home=shell.tracker.home)
    assert first.id in second.lineage  # the start cell's `import numpy` is in the lineage


def test_stop_ends_tracking_after_the_current_cell(shell):
    shell.run("import mlops_nb as mnb\nmnb.start(experiment='e')")
    shell.run("f1 = 0.9\nstopped = mnb.stop()")
    assert shell.ns["stopped"] is True
    shell.run("f1 = 0.1")
    shell.run("again = mnb.stop()")
    assert shell.ns["again"] is False
    assert list(_runs(shell)["metrics.f1"]) == [0.9]


def test_stop_then_start_in_one_cell_keeps_tracking(shell):
    shell.run("import mlops_nb as mnb\nmnb.start(experiment='e')")
    shell.run("mnb.stop()\nmnb.start()\nf1 = 0.3")
    shell.run("f1 = 0.4")
    assert list(_runs(shell)["metrics.f1"]) == [0.3, 0.4]


def test_start_as_a_context_manager(shell):
    shell.run("import mlops_nb as mnb\nwith mnb.start(experiment='ctx'):\n    f1 = 0.7")
    shell.run("f1 = 0.2")
    assert list(_runs(shell)["metrics.f1"]) == [0.7]


def test_set_experiment_then_start(shell):
    shell.run("import mlops_nb as mnb\nname = mnb.set_experiment('  churn v2 ')")
    assert shell.ns["name"] == "churn v2"
    assert not shell.tracker.auto  # like mlflow.set_experiment: does not start tracking
    shell.run("mnb.start()")
    shell.run("f1 = 0.5")
    shell.run("mnb.set_experiment('other')\nf1 = 0.6")
    df = _runs(shell)
    assert list(zip(df["experiment"], df["metrics.f1"], strict=True)) == [
        ("churn v2", 0.5), ("other", 0.6)]


def test_run_name_and_tags(shell):
    shell.run("import mlops_nb as mnb\nmnb.start(experiment='t')")
    shell.run("mnb.set_run_name('rf deep')\nmnb.set_tags({'team': 'churn', 'v': 3})\n"
              "mnb.set_tags({'v': [1, 2]})\nf1 = 0.8")
    shell.run("f1 = 0.4")
    df = _runs(shell)
    assert _col(df, "name") == ["rf deep", None]
    assert _col(df, "tags.mlflow.runName") == ["rf deep", None]
    assert _col(df, "tags.team") == ["churn", None]
    assert _col(df, "tags.v") == ["[1, 2]", None]  # set twice: merged, later wins
    run = mnb.get_run(df["id"][0], home=shell.tracker.home)
    assert run.tags == {"team": "churn", "v": "[1, 2]"} and run.name == "rf deep"


def test_tagging_needs_a_tracked_cell_and_text_names(shell):
    shell.run("import mlops_nb as mnb")
    for call in ("mnb.set_tags({'a': 1})", "mnb.set_run_name('x')"):
        result = shell.run(call, check=False)
        assert isinstance(result.error_in_exec, MlopsNbError)
        assert "mnb.start()" in str(result.error_in_exec)
    shell.run("mnb.start()")
    for call in ("mnb.set_tags(['a'])", "mnb.set_tags({'': 1})", "mnb.set_tags({1: 1})",
                 "mnb.set_run_name('')", "mnb.set_experiment(None)",
                 "mnb.set_tags({'k': 'x' * 9000})"):
        result = shell.run(call, check=False)
        assert isinstance(result.error_in_exec, MlopsNbError), call


def test_log_metric_steps(shell):
    shell.run("import mlops_nb as mnb\nmnb.start(experiment='s')")
    shell.run("mnb.log_metric('loss', 1.0, step=0)\nmnb.log_metric('loss', 1 / 11, step=10)\n"
              "mnb.log_metric('loss', 1 / 21, step=20)\n"
              "mnb.log_metrics({'acc': 0.5}, step=7)\nmnb.log_metric('f1', 0.3)\n"
              "mnb.log_metric('f1', 0.4)")
    df = _runs(shell)
    run = mnb.get_run(df["id"][0], home=shell.tracker.home)
    assert run.metrics["loss"] == pytest.approx(1 / 21)
    assert run.metric_history["loss"] == [(0, 1.0), (10, 1 / 11), (20, 1 / 21)]
    assert run.metric_history["acc"] == [(7, 0.5)]
    assert run.metric_history["f1"] == [(0, 0.3), (1, 0.4)]  # no step given: 0, 1, ...
    result = shell.run("mnb.log_metric('x', 1.0, step=1.5)", check=False)
    assert isinstance(result.error_in_exec, MlopsNbError)


def test_get_run_is_typed_and_still_dict_like(tracked):
    tracked.run("f1 = 0.91")
    run_id = _runs(tracked)["id"][0]
    run = mnb.get_run(run_id[:8], home=tracked.tracker.home)
    from mlops_nb.run import Run

    assert isinstance(run, Run) and run.run_id == run.id == run_id
    assert run["metrics"] == run.metrics == {"f1": 0.91}
    assert "lineage" in run and run.get("nope", 5) == 5 and dict(run)["id"] == run_id
    assert json.loads(json.dumps(run))["metrics"] == {"f1": 0.91}  # still the plain dict
    assert "metric_history" in dir(run) and run.experiment == "test"
    with pytest.raises(KeyError):
        run["nope"]
    with pytest.raises(AttributeError, match="no field"):
        _ = run.nope
    with pytest.raises(AttributeError, match="read-only"):
        run.id = "x"
    hints = typing.get_type_hints(Run)
    assert hints["metrics"] == dict[str, typing.Any] and "metric_history" in hints


def test_runs_has_mlflow_column_names(tracked):
    tracked.run("f1 = 0.5")
    df = _runs(tracked)
    assert (df["run_id"] == df["id"]).all() and (df["start_time"] == df["started_at"]).all()
    assert str(df["start_time"].dtype) == "datetime64[ns, UTC]"
    assert (df["end_time"] >= df["start_time"]).all()
    # code written for mlflow.search_runs frames
    best = df.sort_values("metrics.f1", ascending=False).iloc[0]
    assert best["run_id"] == df["id"][0]


def test_runs_on_an_empty_store_keeps_the_columns(tracked):
    tracked.run("x = 1")  # a cell run, not a run: no metrics
    df = _runs(tracked)
    assert len(df) == 0 and {"run_id", "start_time"} <= set(df.columns)


def test_control_outside_ipython_is_a_clear_error(tmp_path):
    code = textwrap.dedent("""
        import mlops_nb as mnb
        for fn, args in ((mnb.start, ()), (mnb.stop, ()), (mnb.set_experiment, ("e",)),
                         (mnb.set_run_name, ("n",)), (mnb.set_tags, ({"a": "b"},))):
            try:
                fn(*args)
            except mnb.NotInIPython as exc:
                assert "IPython" in str(exc) and "script" in str(exc), exc
            else:
                raise SystemExit(f"{fn.__name__} did not refuse")
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_tags_and_steps_go_to_mlflow_as_tags_and_steps():
    from mlops_nb.records import CellRun
    from mlops_nb.sync.payload import RunContext, build_payload

    run = CellRun(id="a" * 32, session="s", experiment="e", seq=0, started_at=1.0,
                  metrics={"loss": 0.1, "acc": 0.9},
                  metric_steps={"loss": [0.5, 0.2, 0.1], "acc": [0.8, 0.9]})
    ann = {"tags": {"team": "churn", "odd name!": "x"}, "steps": {"loss": [0, 10, 20]}}
    p = build_payload(run, RunContext(annotation=ann))
    assert [(k, v, s) for k, v, _, s in p.metrics] == [
        ("loss", 0.5, 0), ("loss", 0.2, 10), ("loss", 0.1, 20), ("acc", 0.8, 0), ("acc", 0.9, 1)]
    assert p.tags["team"] == "churn" and p.tags["odd name_"] == "x"


@pytest.mark.slow
def test_api_notebook_in_a_real_kernel(tmp_path, monkeypatch):
    """notebooks/python_api.ipynb, the README's API tour, runs as written in a real kernel."""
    import shutil
    from pathlib import Path

    from mlops_nb.execute import execute_notebook, text_outputs

    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    nb_path = tmp_path / "python_api.ipynb"
    shutil.copy(Path(__file__).resolve().parent.parent / "notebooks" / "python_api.ipynb",
                nb_path)
    text = "\n".join(text_outputs(execute_notebook(nb_path, timeout=600)))
    assert "Traceback" not in text and "Error" not in text, text
    df = mnb.runs(experiment="api-tour", home=tmp_path / ".mlops_nb")
    assert _col(df, "tags.mlflow.runName") == ["rf depth 3", "rf depth 8", "sgd"]
    assert _col(df, "tags.family") == ["forest", "forest", "linear"]
    sgd = mnb.get_run(df["run_id"][2], home=tmp_path / ".mlops_nb")
    assert [s for s, _ in sgd.metric_history["val_accuracy"]] == [0, 1, 2, 3, 4]
    assert "Run sgd {'family': 'linear'}" in text and "step 4: val_accuracy" in text
    assert "reproduced: level L2" in text
