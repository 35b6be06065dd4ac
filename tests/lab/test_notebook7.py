"""The same extension in Notebook 7 (its own app shell, not JupyterLab's), in a real browser:
on a notebook page the Experiments panel opens in Notebook's left side area and lists the
notebook's runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from . import browser
from .conftest import record_project

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(600)]
ROW = "#mlops-nb-experiments .mnb-view .mnb-grid tbody tr[data-id]"


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    browser.need_chromium()
    root = tmp_path_factory.mktemp("nb7root")
    nbformat.write(nbformat.v4.new_notebook(), root / "nb.ipynb")
    record_project(root)  # two runs recorded by a real shell serving root/nb.ipynb
    with browser.jupyter_server(root, tmp_path_factory.mktemp("nb7state"), app="notebook") as url:
        yield url, root


def test_the_panel_opens_in_notebook7_and_lists_the_runs(notebook7):
    url, _root = notebook7
    browser.ARTIFACTS.mkdir(exist_ok=True)
    with browser.new_page() as page:
        page.goto(f"{url}/notebooks/nb.ipynb?token={browser.TOKEN}")
        browser.open_panel(page)
        assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
        page.locator("#mlops-nb-experiments").wait_for(state="visible")
        page.locator(ROW).nth(1).wait_for(timeout=60_000)
        assert page.locator(ROW).count() == 2
        assert page.locator(ROW + ".mnb-best").count() == 1
        # it sits in Notebook's left side area, beside the notebook
        side = page.evaluate(
            "() => !!document.querySelector('#mlops-nb-experiments')"
            ".closest('#jp-left-stack, .jp-SidePanel, #left-stack, .lm-StackedPanel')")
        assert side
        page.screenshot(path=str(browser.ARTIFACTS / "ui-notebook7.png"))
    assert not browser.mlops_errors(page), page.errors
