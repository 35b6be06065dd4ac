"""reproduce(): levels, tolerance, timeouts, and scripts that need neither IPython nor mlops_nb."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_nb.errors import MlopsNbError
from mlops_nb.exporting import export_run
from mlops_nb.reproduction import compare_metric, reproduce
from mlops_nb.store.reader import StoreReader


def _only_run(sh):
    sh.flush()
    reader = StoreReader(sh.tracker.home)
    (run,) = [cr for cr in reader.session_log(sh.tracker.session) if cr.is_run]
    return run


def test_compare_metric_is_exact_by_default_and_states_tolerance():
    assert compare_metric(0.1 + 0.2, 0.3, 0.0, 0.0) == (False, 0.3 - (0.1 + 0.2))
    assert compare_metric(0.1 + 0.2, 0.3, 1e-9, 0.0)[0]
    assert compare_metric(math.nan, math.nan, 0.0, 0.0)[0]
    assert not compare_metric(math.nan, 1.0, 0.0, 0.0)[0]
    assert compare_metric(math.inf, math.inf, 0.0, 0.0)[0]
    assert compare_metric(3, 3.0, 0.0, 0.0) == (True, 0.0)
    assert compare_metric("a", "a", 0.0, 0.0) == (True, None)


def test_a_script_that_times_out_stops_at_l0(tracked, monkeypatch):
    tracked.run("import os, time\nif os.environ.get('MNB_SLOW_TEST'):\n    time.sleep(60)\n"
                "score = 1.0")
    run = _only_run(tracked)
    out = export_run(run.id, Path.cwd() / "exp")
    monkeypatch.setenv("MNB_SLOW_TEST", "1")
    verdict = reproduce(out, timeout=1)
    assert verdict.level == "L0" and not verdict.ok
    assert "timed out" in " ".join(verdict.problems)
    assert verdict.to_dict()["returncode"] is None


def test_a_failing_script_reports_its_stderr_tail(tracked, monkeypatch):
    tracked.run("import os\nscore = 1.0 / (1 - int(os.environ.get('MNB_FAIL_TEST', '0')))")
    out = export_run(_only_run(tracked).id, Path.cwd() / "exp")
    monkeypatch.setenv("MNB_FAIL_TEST", "1")
    verdict = reproduce(out)
    assert verdict.level == "L0" and verdict.returncode == 1
    assert "ZeroDivisionError" in verdict.stderr_tail


def test_bad_options_are_bad_input(tracked):
    tracked.run("score = 1.0")
    out = export_run(_only_run(tracked).id, Path.cwd() / "exp")
    with pytest.raises(MlopsNbError):
        reproduce(out, rtol=-1)
    with pytest.raises(MlopsNbError):
        reproduce(out, timeout=0)
    with pytest.raises(MlopsNbError, match="not an export folder"):
        reproduce(Path.cwd())


def test_the_script_needs_neither_ipython_nor_mlops_nb(tracked):
    tracked.run("import mlops_nb as mnb\nfrom mlops_nb import log_metric")
    tracked.run("%time x = 2\nlog_metric('f1', mnb.log_metric('acc', x / 4) * 2)")
    out = export_run(_only_run(tracked).id, Path.cwd() / "exp")
    blocker = ("import sys, runpy\n"
               "for name in ('mlops_nb', 'IPython', 'ipykernel'):\n"
               "    sys.modules[name] = None\n"
               f"sys.argv = [{str(out / 'train.py')!r}, '--output-dir', 'o']\n"
               f"runpy.run_path({str(out / 'train.py')!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(Path("o/metrics.json").read_text()) == {"acc": 0.5, "f1": 1.0}


def test_a_non_finite_metric_is_strict_json_in_metrics_json_and_reproduces(tracked):
    """The script's metrics.json is read by jq in CI: a NaN token there broke the README's
    "no NaN or Infinity tokens" (and jq). Tagged, it reads back as NaN, and reproduces."""
    tracked.run("rmse = float('nan')\nloss = float('-inf')\naccuracy = 0.5")
    out = export_run(_only_run(tracked).id, Path.cwd() / "exp")
    verdict = reproduce(out)
    assert verdict.ok and verdict.level == "L2", verdict.problems
    proc = subprocess.run([sys.executable, str(out / "train.py"), "--output-dir", "o"],
                          capture_output=True, text=True, check=True, cwd=Path.cwd())

    def refuse(token: str) -> None:
        raise ValueError(f"non-strict JSON token {token}")

    written = json.loads(Path("o/metrics.json").read_text(), parse_constant=refuse)
    assert written == {"rmse": {"float": "nan"}, "loss": {"float": "-inf"}, "accuracy": 0.5}
    assert json.loads(proc.stdout.strip().splitlines()[-1], parse_constant=refuse) == written
