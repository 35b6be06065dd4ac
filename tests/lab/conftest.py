"""Fixtures for the JupyterLab extension's tests: a project folder with recorded runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

HOSTILE = "<img src=x onerror=alert(1)>\u202e'; DROP"

CELLS = [
    ("c-imports", "import numpy as np\nfrom sklearn.linear_model import Ridge"),
    ("c-data", "rng = np.random.default_rng(0)\nX = rng.normal(size=(60, 3))\n"
               "y = X @ np.array([1.0, 2.0, -1.0]) + rng.normal(size=60) * 0.1"),
    ("c-alpha", "alpha = 0.5"),
    ("c-fit", "model = Ridge(alpha=alpha).fit(X, y)\nr2 = model.score(X, y)\n"
              "mnb.log_metric('r2', r2)"),
]


def record_project(root: Path, notebook: str = "nb.ipynb", alphas: tuple[float, ...] = (0.5, 2.0),
                   name: str | None = None) -> list[str]:
    """Run a small notebook's cells in a real IPython shell with %track on, as a kernel
    serving `root/notebook` would; returns the run ids."""
    # The project's own store: without it the kernel would take the nearest `.mlops_nb/`
    # above the temporary folder (one a stray run left in /tmp, say) as the project's.
    (root / ".mlops_nb").mkdir(exist_ok=True)
    old_cwd = Path.cwd()
    old_env = {k: os.environ.get(k) for k in ("JPY_SESSION_NAME", "MLOPS_NB_HOME")}
    os.chdir(root)
    os.environ["JPY_SESSION_NAME"] = str(root / notebook)
    os.environ.pop("MLOPS_NB_HOME", None)
    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance(config=cfg)
    try:
        def run(code: str, cell_id: str | None = None) -> None:
            res = ip.run_cell(code, store_history=True, cell_id=cell_id)
            assert res.success, res.error_in_exec or res.error_before_exec

        run("%load_ext mlops_nb")
        run("import mlops_nb as mnb")
        run("%track on")
        for cid, code in CELLS[:3]:
            run(code, cid)
        for a in alphas:
            run(f"alpha = {a}", "c-alpha")
            code = CELLS[3][1] if name is None else CELLS[3][1] + f"\nmnb.log_param('who', {name!r})"
            run(code, "c-fit")
        tracker = ip._mlops_nb_tracker  # type: ignore[attr-defined]
        assert tracker.flush(30)
        tracker.close()
    finally:
        InteractiveShell.clear_instance()
        os.chdir(old_cwd)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    import mlops_nb as mnb

    return list(mnb.runs(home=root / ".mlops_nb")["id"])


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "project"
    root.mkdir()
    record_project(root)
    yield root


@pytest.fixture
def server_plugin(request: pytest.FixtureRequest) -> None:
    """The Jupyter server tests' process: they need pytest-jupyter's fixtures, whose autouse
    event loop must not reach the browser tests (scripts/test.sh runs them apart)."""
    if not request.config.pluginmanager.has_plugin("pytest_jupyter.jupyter_server"):
        pytest.skip("server tests run with -p pytest_jupyter.jupyter_server (scripts/test.sh)")


@pytest.fixture
def jp_server_config() -> dict:
    """pytest-jupyter's server, with this package's server extension enabled."""
    return {"ServerApp": {"jpserver_extensions": {"mlops_nb.server": True}}}
