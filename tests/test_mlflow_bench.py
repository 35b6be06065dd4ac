"""benchmarks/mlflow_bench.py's fit part: MLflow's sklearn autolog against `%track on`.

The arithmetic (added cost over the untracked cells, ratios) on fixed figures, the options, and
one real run of the four ways with one timed cell each (slow: each way is a fresh process).
No timing is asserted: only that each way did what it claims (one MLflow run per cell, cells
recorded by mlops-nb) and that the table renders.
"""

from __future__ import annotations

import pytest

from benchmarks import mlflow_bench as mb


def _proc(wall: list[float], cpu: list[float], **extra):
    return {"wall_s": wall, "cpu_s": cpu, "child_cpu_s": [0.0] * len(wall),
            "cpu_per_cell_all_s": sum(cpu) / len(cpu), "process_s": 1.0, **extra}


def _raw(mnb_wall: float) -> dict:
    mlflow = {"mlflow_runs": 3, "metric_columns": ["metrics.training_score"],
              "autolog_kwargs": {}}
    return {
        "pure": [_proc([0.010, 0.010, 0.010], [0.008, 0.008, 0.008])],
        "mnb": [_proc([mnb_wall] * 3, [0.010] * 3, durable_wall_s=[0.020] * 3,
                      durable_cpu_s=[0.012] * 3, writer_error=None)],
        "mlflow": [_proc([3.010] * 3, [2.008] * 3, **mlflow)],
        "mlflow_lean": [_proc([0.510] * 3, [0.408] * 3, **mlflow)],
    }


def test_summary_gives_added_cost_over_untracked_and_ratio_to_track_on():
    fit = mb.summarize_fit(_raw(0.012), mb.fit_order(palindrome=False))
    ways = fit["ways"]
    assert ways["mnb"]["wall_median_added_s"] == pytest.approx(0.002)
    assert ways["mnb_durable"]["wall_median_added_s"] == pytest.approx(0.010)
    assert ways["mlflow"]["cpu_median_added_s"] == pytest.approx(2.0)
    assert fit["ratios"]["mlflow/mnb.wall_median"] == pytest.approx(1500)
    assert fit["ratios"]["mlflow_lean/mnb.cpu_median"] == pytest.approx(200)
    assert fit["ratios"]["mlflow/mnb_durable.wall_median"] == pytest.approx(300)
    # all the CPU of the timed loop, per cell: 2.008 - 0.008 against 0.010 - 0.008
    assert fit["ratios"]["mlflow/mnb.cpu_per_cell_all"] == pytest.approx(1000)
    text = mb.table(mb.fit_rows(fit), ["a", "b", "c", "d", "e", "f"])
    assert "x1,500" in text and "+3.00 s" in text and "+2.0 ms" in text


def test_no_ratio_when_track_on_adds_nothing_measurable():
    fit = mb.summarize_fit(_raw(0.009), mb.fit_order(palindrome=False))
    assert fit["ratios"]["mlflow/mnb.wall_median"] is None
    assert "MLflow / %track on: -, cpu" in mb.table(mb.fit_rows(fit), list("abcdef"))


def test_processes_run_in_a_palindrome_unless_quick():
    assert mb.fit_order(palindrome=True) == ["pure", "mnb", "mlflow", "mlflow_lean",
                                             "mlflow_lean", "mlflow", "mnb", "pure"]
    assert mb.fit_order(palindrome=False) == list(mb.FIT_MODES)
    assert mb.blas_env(1)["OPENBLAS_NUM_THREADS"] == "1" and mb.blas_env(0) == {}


def test_unknown_part_is_refused():
    with pytest.raises(SystemExit):
        mb.main(["--parts", "fit,nope"])


def test_the_lean_way_turns_off_what_the_installed_autolog_accepts():
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    import inspect

    params = inspect.signature(mlflow_sklearn.autolog).parameters
    assert set(mb.LEAN) <= set(params)
    assert all(params[k].default is True for k in mb.LEAN)  # on by default, off in the lean way
    assert params["log_input_examples"].default is False  # already off


@pytest.mark.slow
def test_fit_part_runs_the_four_ways_for_real(tmp_path):
    pytest.importorskip("mlflow")
    fit = mb.measure_fit(1, tmp_path / "fit", palindrome=False)
    ways = fit["ways"]
    assert set(ways) == {"pure", "mnb", "mnb_durable", "mlflow", "mlflow_lean"}
    for mode in ("mlflow", "mlflow_lean"):
        # autolog made one run per cell run, warm-up included, and logged the test score
        assert ways[mode]["mlflow_runs"] == [mb.WARMUP[mode] + 1]
        assert "metrics.LogisticRegression_score_X_test" in ways[mode]["metric_columns"]
    assert ways["mlflow_lean"]["autolog_kwargs"] == mb.LEAN
    assert ways["mnb"]["writer_errors"] == [None]
    assert ways["pure"]["n"] == mb.CHEAP_FACTOR and ways["mlflow"]["n"] == 1
    assert all(ways[m]["wall_median_s"] > 0 for m in ways)
    assert "mlflow.sklearn.autolog() (defaults)" in mb.table(mb.fit_rows(fit), list("abcdef"))
