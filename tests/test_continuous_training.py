"""notebooks/continuous_training.ipynb in a real Jupyter kernel: drift, retrain, promote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mlops_nb as mnb
from mlops_nb.execute import execute_notebook, text_outputs
from mlops_nb.models import promoted

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_continuous_training_notebook(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    nb_path = tmp_path / "continuous_training.ipynb"
    shutil.copy(ROOT / "notebooks" / "continuous_training.ipynb", nb_path)
    shutil.copytree(ROOT / "notebooks" / "data", tmp_path / "data")
    nb = execute_notebook(nb_path, timeout=900)
    text = "\n".join(text_outputs(nb))
    assert "Traceback" not in text
    store = tmp_path / ".mlops_nb"
    # drift found in the shifted columns and shown as a table with plots
    assert "drifted columns: ['tenure', 'charges', 'plan'" in text
    html = [o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", [])]
    assert any("<svg" in h and "drift" in h for h in html)
    # retrained, gated, promoted; the promoted mark points at the retrain's run
    assert "PROMOTED" in text and "exit code for cron/CI: 0" in text
    df = mnb.runs(experiment="continuous", home=store)
    retrained = df[df["params.retrained_from"].notna()]
    assert len(retrained) == 1
    assert promoted(store)["clf"]["run_id"] == retrained["id"].iloc[0]
    assert "predicted churn rate on new data" in text
