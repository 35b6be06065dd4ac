"""File > Rename: a real server, a real kernel, the session PATCHed as JupyterLab does it.

Runs in the server test process (`-p pytest_jupyter.jupyter_server`, scripts/test.sh).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("server_plugin")]


async def _execute(kc, code: str, cell_id: str | None = None) -> None:
    """An execute request, with the cell's id in its metadata as JupyterLab sends it."""
    msg = kc.session.msg("execute_request", {
        "code": code, "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True},
        metadata={"cellId": cell_id} if cell_id else {})
    kc.shell_channel.send(msg)
    while True:
        reply = await kc.get_shell_msg(timeout=120)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            break
    assert reply["content"]["status"] == "ok", reply["content"]


async def _json(jp_fetch, *parts: str, method: str = "GET", body: dict | None = None, **params):
    resp = await jp_fetch(*parts, method=method, params=params or None,
                          body=None if body is None else json.dumps(body))
    return json.loads(resp.body)


async def _track_rename_track(jp_fetch, jp_serverapp, root: Path, *, cell_ids: bool) -> Path:
    """first.ipynb's kernel records a run, File > Rename makes it renamed.ipynb (the contents
    PATCH, then the session PATCH JupyterLab sends after it), the kernel records another, with
    or without the cells' ids in the requests. Returns the kernel's runtime folder."""
    cells = CELLS
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells.values()]
    for cell, cid in zip(nb.cells, cells, strict=True):
        cell["id"] = cid
    nbformat.write(nb, root / "first.ipynb")
    (root / ".mlops_nb").mkdir()  # the project's store, not one above the temporary folder
    session = await _json(jp_fetch, "api", "sessions", method="POST", body={
        "path": "first.ipynb", "name": "first.ipynb", "type": "notebook",
        "kernel": {"name": "python3"}})
    kernel = jp_serverapp.kernel_manager.get_kernel(session["kernel"]["id"])
    kc = kernel.client()
    kc.start_channels()
    *setup, (metric_id, metric_code) = cells.items()
    try:
        await kc.wait_for_ready(timeout=120)
        for cid, code in setup:
            await _execute(kc, code, cid if cell_ids else None)
        await _execute(kc, metric_code.replace("VALUE", "1.0"), metric_id if cell_ids else None)
        await _json(jp_fetch, "api", "contents", "first.ipynb", method="PATCH",
                    body={"path": "renamed.ipynb"})
        await _json(jp_fetch, "api", "sessions", session["id"], method="PATCH",
                    body={"path": "renamed.ipynb", "name": "renamed.ipynb"})
        await _execute(kc, metric_code.replace("VALUE", "2.0"), metric_id if cell_ids else None)
        await _execute(kc, "assert get_ipython()._mlops_nb_tracker.flush(30)")
    finally:
        kc.stop_channels()
        await jp_fetch("api", "sessions", session["id"], method="DELETE")

    import mlops_nb as mnb

    runs = mnb.runs(home=root / ".mlops_nb").sort_values("started_at")
    assert [Path(p).name for p in runs["notebook"]] == ["first.ipynb", "renamed.ipynb"]
    assert set(runs["experiment"]) == {"first"}  # one notebook, one experiment, across a rename
    return Path(kernel.connection_file).parent


CELLS = {"c-load": "%load_ext mlops_nb\nimport mlops_nb as mnb", "c-track": "%track on",
         "c-metric": "mnb.log_metric('m', VALUE)"}


async def test_runs_after_a_rename_carry_the_new_path_and_stay_in_the_experiment(
        jp_fetch, jp_serverapp, jp_root_dir: Path) -> None:
    # no cell ids: the path can only come from the server extension's marker
    runtime = await _track_rename_track(jp_fetch, jp_serverapp, jp_root_dir, cell_ids=False)
    # The panel, asked about the renamed notebook, shows that experiment with both runs.
    info = await _json(jp_fetch, "mlops-nb", "api", "experiments", path="renamed.ipynb")
    assert info["notebook_experiment"] == "first"
    (exp,) = info["experiments"]
    assert exp["runs"] == 2 and "renamed.ipynb" in exp["notebooks"]
    # Deleting the session removes the marker the rename left in the runtime folder.
    assert not list(runtime.glob("*.mlops-nb-path"))


class TestWithoutTheServerExtension:
    """The extension disabled: no marker is written; the kernel finds the renamed notebook by
    the id of the cell it runs (server/live_path.py)."""

    @pytest.fixture
    def jp_server_config(self) -> dict:
        return {"ServerApp": {"jpserver_extensions": {"mlops_nb.server": False}}}

    async def test_a_rename_is_found_by_the_running_cells_id(
            self, jp_fetch, jp_serverapp, jp_root_dir: Path) -> None:
        runtime = await _track_rename_track(jp_fetch, jp_serverapp, jp_root_dir, cell_ids=True)
        assert not list(runtime.glob("*.mlops-nb-path"))  # the extension wrote nothing
