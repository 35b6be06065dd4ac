"""The README's main job: the quickstart notebook in a real Jupyter kernel."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import mlops_nb as mnb
from mlops_nb.execute import execute_notebook, text_outputs

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quickstart_notebook_tracks_runs_in_a_real_kernel(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    nb_path = tmp_path / "quickstart.ipynb"
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", nb_path)
    nb = execute_notebook(nb_path, timeout=600)
    text = "\n".join(text_outputs(nb))
    assert "Traceback" not in text
    store = tmp_path / ".mlops_nb"
    assert f"store: {store}" in text
    df = mnb.runs(experiment="quickstart", home=store)
    assert len(df) == 4
    assert df["notebook"].unique().tolist() == [str(nb_path)]
    # each run names the notebook cell it came from, as under JupyterLab
    import nbformat

    cell_ids = {c["id"] for c in nbformat.read(nb_path, as_version=4).cells}
    assert set(df["cell_id"]) <= cell_ids and df["cell_id"].notna().all()
    # three settings of the same training cell, each with its own effective parameters
    rf = df[df["params.n_estimators"].notna()]
    assert sorted(rf["params.n_estimators"].tolist()) == [5, 50, 200]
    assert sorted(rf["params.model.max_depth"].tolist()) == [2, 4, 8]
    assert (df["metrics.f1"] > 0.8).all()
    assert df.loc[df["name"] == "logreg", "params.C"].tolist() == [0.5]
    # the notebook printed the table of runs, best f1 first
    for run_id in df["id"]:
        assert run_id[:8] in text  # the compact table's short ids
    # compared, exported the best run, and verified the export reproduces its metrics
    best = df.sort_values("metrics.f1", ascending=False, kind="stable").iloc[0]
    assert "best by f1: " in text and f"[{best['id'][:8]}] (" in text
    export = tmp_path / "exports" / "best"
    assert (export / "train.py").is_file() and (export / "requirements.txt").is_file()
    assert "reproduced: level L2" in text


@pytest.mark.slow
def test_kernel_runs_this_environment(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    path = tmp_path / "which.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("import sys; print(sys.executable)")]), path)
    out = text_outputs(execute_notebook(path, timeout=120))
    assert out[0].strip() == sys.executable
