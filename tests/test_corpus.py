"""The notebook corpus (tests/corpus, see SOURCES.md) run unchanged with `%track on`.

Each notebook is written as `# %%` cells, turned into an .ipynb, prefixed with
`%load_ext mlops_nb` + `%track on`, and executed in a real kernel. Its headline metric must be
recorded by autologging alone; the best run by that metric must export and reproduce exactly,
and `train.py --save-model` must write the model behind it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_nb.execute import execute_notebook, text_outputs
from mlops_nb.exporting import best_run_id, export_run
from mlops_nb.models import deserialize
from mlops_nb.reproduction import reproduce
from mlops_nb.store.reader import StoreReader

CORPUS = Path(__file__).parent / "corpus"

# notebook: (headline metric, class of the model behind it or None when no fitted model is)
HEADLINE = {
    "boosting_auc": ("roc_auc_score", "GradientBoostingClassifier"),
    "breast_cancer_pipeline": ("Pipeline_score", "Pipeline"),
    "classifier_comparison": ("score", "Pipeline"),
    "cross_validate_table": ("cv_accuracy_mean", None),
    "diabetes_ols": ("mean_squared_error", "LinearRegression"),
    "digits_grid_search": ("report_accuracy", "GridSearchCV"),
    "digits_svc_report": ("report_accuracy", "SVC"),
    "digits_validation_curve": ("vc_test_accuracy_best", None),
    "feature_percentile_sweep": ("cv_accuracy_mean", None),
    "forest_regression": ("r2_score", "RandomForestRegressor"),
    "iris_cross_val": ("cv_accuracy_mean", None),
    "knn_sweep": ("KNeighborsClassifier_score", "KNeighborsClassifier"),
    "randomized_search_forest": ("RandomizedSearchCV_score", "RandomizedSearchCV"),
    "ridge_alpha_logspace": ("r2", "Ridge"),
    "roc_auc_permutation": ("roc_auc", "Pipeline"),
    "tree_depth_curve": ("accuracy_score_X_test", "DecisionTreeClassifier"),
    "wine_scaling": ("accuracy_score_scaled_clf", "Pipeline"),
}


def to_notebook(script: Path, target: Path) -> Path:
    """`# %%` cells -> an .ipynb whose first cell turns tracking on."""
    import nbformat

    cells = [nbformat.v4.new_code_cell("%load_ext mlops_nb\n%track on")]
    chunks: list[tuple[str, list[str]]] = []
    for line in script.read_text().splitlines():
        if line.startswith("# %%"):
            chunks.append(("markdown" if "[markdown]" in line else "code", []))
        elif chunks:
            chunks[-1][1].append(line)
    for kind, lines in chunks:
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(
                "\n".join(ln.removeprefix("# ").removeprefix("#") for ln in lines).strip()))
        elif text:
            cells.append(nbformat.v4.new_code_cell(text))
    # The harness's own last cell: flush the store before nbclient stops the kernel.
    cells.append(nbformat.v4.new_code_cell("%track off"))
    nb = nbformat.v4.new_notebook(cells=cells)
    nbformat.write(nb, target)
    return target


# Run in CI (one kernel each, ~30-60 s under load): one notebook per capture path. The rest
# run with MLOPS_NB_FULL_CORPUS=1, and all of them in `python -m benchmarks.corpus tests/corpus`.
CI_SET = ("breast_cancer_pipeline", "digits_grid_search", "iris_cross_val", "tree_depth_curve")
# a sweep iteration's parameter -> the estimator parameter it sets
LOOP_PARAMS = {"k": "n_neighbors", "depth": "max_depth", "alpha": "alpha"}
LOOP_LABELS = {"name"}  # a loop over models: the model's label, not one of its parameters


def _selected() -> list[str]:
    if os.environ.get("MLOPS_NB_FULL_CORPUS") == "1":
        return sorted(HEADLINE)
    return sorted(CI_SET)


def test_corpus_is_complete():
    assert sorted(p.stem for p in CORPUS.glob("*.py")) == sorted(HEADLINE)
    sources = (CORPUS / "SOURCES.md").read_text()
    assert all(f"{name}.py" in sources for name in HEADLINE)
    assert set(CI_SET) <= set(HEADLINE)


@pytest.mark.slow
@pytest.mark.parametrize("name", _selected())
def test_corpus_notebook_runs_export_and_save_model(name, tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    metric, model_class = HEADLINE[name]
    nb = execute_notebook(to_notebook(CORPUS / f"{name}.py", tmp_path / f"{name}.ipynb"),
                          timeout=300)
    assert "Traceback" not in "\n".join(text_outputs(nb))
    store = tmp_path / ".mlops_nb"
    run_id = best_run_id(metric, experiment=name, home=store)
    run = StoreReader(store).resolve(run_id)
    out = export_run(run_id, tmp_path / "export", home=store)
    verdict = reproduce(out)
    assert verdict.ok, verdict.summary() + "\n" + verdict.stderr_tail
    assert metric in verdict.metrics
    saved = tmp_path / "model.pkl"
    done = subprocess.run([sys.executable, str(out / "train.py"), "--save-model", str(saved),
                           "--output-dir", str(tmp_path / "again")],
                          cwd=out, capture_output=True, text=True, timeout=300)
    if model_class is None:
        assert done.returncode == 4, done.stderr  # nothing fitted stands behind a CV score
        return
    assert done.returncode == 0, done.stderr
    meta = json.loads(Path(str(saved) + ".json").read_text())  # skops for scikit-learn
    model = deserialize(meta["format"], saved.read_bytes(), meta["sha256"], trusted=True)
    assert type(model).__name__ == model_class
    for key, value in run.params.items():  # a sweep's best iteration: ITS model, not the last
        if run.parent is not None and hasattr(model, "get_params") and key not in LOOP_LABELS:
            # `clf.svc__C`: a parameter of the loop's model variable (a loop over models)
            param = key.partition(".")[2] if "." in key else LOOP_PARAMS.get(key, key)
            assert model.get_params()[param] == value


def test_corpus_runner_reads_scripts_and_times_cells(tmp_path):
    """benchmarks/corpus.py (the held-out harness): cells, the tracking prefix, cell times."""
    from benchmarks.corpus import cell_seconds, load_cells, tracked_copy

    nb = load_cells(CORPUS / "knn_sweep.py")
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    tracked = tracked_copy(nb)
    assert tracked.cells[0].source == "%load_ext mlops_nb\n%track on"
    assert tracked.cells[-1].source == "%track off" and len(nb.cells) == 3
    for i, cell in enumerate(c for c in tracked.cells if c.cell_type == "code"):
        cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00.000Z",
                                      "shell.execute_reply": f"2026-01-01T00:00:0{i}.500Z"}
    assert cell_seconds(tracked, skip_first=1, skip_last=1) == pytest.approx(1.5 + 2.5)


def test_corpus_runner_times_kernel_cpu_around_the_notebooks_cells():
    """`--overhead`: the same timing cells bracket the notebook tracked and untracked."""
    import nbformat

    from benchmarks.corpus import CPU_END, CPU_START, cpu_seconds, timed_copy, tracked_copy

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    tracked = [c.source for c in tracked_copy(nb, timed=True).cells]
    assert tracked == ["%load_ext mlops_nb\n%track on", CPU_START, "x = 1", "%track off",
                       CPU_END]
    plain = timed_copy(nb)
    assert [c.source for c in plain.cells] == [CPU_START, "x = 1", CPU_END]
    assert cpu_seconds(plain) is None
    plain.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                      text="MNB_CPU 1.25\n")]
    assert cpu_seconds(plain) == 1.25
