"""The same extension in Notebook 7 (its own app shell, not JupyterLab's), in a real browser:
on a notebook page the Experiments panel opens in Notebook's left side area and lists the
notebook's runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from .conftest import record_project
from .test_ui import ARTIFACTS, CHROMIUM, TOKEN, _free_port, _wait_http, run_command
from .test_ui_scale import disable_news

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(600)]
ROW = "#mlops-nb-experiments .mnb-view .mnb-grid tbody tr[data-id]"


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    pytest.importorskip("playwright")
    pytest.importorskip("notebook")  # in the test extra
    root = tmp_path_factory.mktemp("nb7root")
    nbformat.write(nbformat.v4.new_notebook(), root / "nb.ipynb")
    record_project(root)  # two runs recorded by a real shell serving root/nb.ipynb
    state = tmp_path_factory.mktemp("nb7state")
    disable_news(state / "config")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(state / "config"),
           "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces")}
    env.pop("MLOPS_NB_HOME", None)
    port = _free_port()
    log = open(state / "notebook.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "notebook", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--JupyterNotebookApp.expose_app_in_browser=True", "--allow-root"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/api/status?token={TOKEN}", 90)
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_the_panel_opens_in_notebook7_and_lists_the_runs(notebook7):
    from playwright.sync_api import sync_playwright

    url, _root = notebook7
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(90_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"{url}/notebooks/nb.ipynb?token={TOKEN}")
            page.wait_for_function("() => window.jupyterapp?.commands"
                                   ".hasCommand('mlops-nb:open-panel')", timeout=120_000)
            assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
            run_command(page, "mlops-nb:open-panel")
            page.locator("#mlops-nb-experiments").wait_for(state="visible")
            page.locator(ROW).nth(1).wait_for(timeout=60_000)
            assert page.locator(ROW).count() == 2
            assert page.locator(ROW + ".mnb-best").count() == 1
            # it sits in Notebook's left side area, beside the notebook
            side = page.evaluate(
                "() => !!document.querySelector('#mlops-nb-experiments')"
                ".closest('#jp-left-stack, .jp-SidePanel, #left-stack, .lm-StackedPanel')")
            assert side
            page.screenshot(path=str(ARTIFACTS / "ui-notebook7.png"))
        finally:
            browser.close()
    assert not [e for e in errors if "mlops" in e.lower()], errors
