"""File > Rename: a real server, a real kernel, the session PATCHed as JupyterLab does it.

Runs in the server test process (`-p pytest_jupyter.jupyter_server`, scripts/test.sh).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("server_plugin")]


async def _execute(kc, code: str) -> None:
    reply = await kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", reply["content"]


async def _json(jp_fetch, *parts: str, method: str = "GET", body: dict | None = None, **params):
    resp = await jp_fetch(*parts, method=method, params=params or None,
                          body=None if body is None else json.dumps(body))
    return json.loads(resp.body)


async def test_runs_after_a_rename_carry_the_new_path_and_stay_in_the_experiment(
        jp_fetch, jp_serverapp, jp_root_dir: Path) -> None:
    nbformat.write(nbformat.v4.new_notebook(), jp_root_dir / "first.ipynb")
    session = await _json(jp_fetch, "api", "sessions", method="POST", body={
        "path": "first.ipynb", "name": "first.ipynb", "type": "notebook",
        "kernel": {"name": "python3"}})
    kernel = jp_serverapp.kernel_manager.get_kernel(session["kernel"]["id"])
    kc = kernel.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=120)
        await _execute(kc, "%load_ext mlops_nb\nimport mlops_nb as mnb")
        await _execute(kc, "%track on")
        await _execute(kc, "mnb.log_metric('m', 1.0)")
        # File > Rename: the contents PATCH, then the session PATCH JupyterLab sends after it.
        await _json(jp_fetch, "api", "contents", "first.ipynb", method="PATCH",
                    body={"path": "renamed.ipynb"})
        await _json(jp_fetch, "api", "sessions", session["id"], method="PATCH",
                    body={"path": "renamed.ipynb", "name": "renamed.ipynb"})
        await _execute(kc, "mnb.log_metric('m', 2.0)")
        await _execute(kc, "assert get_ipython()._mlops_nb_tracker.flush(30)")
    finally:
        kc.stop_channels()
        await jp_fetch("api", "sessions", session["id"], method="DELETE")

    import mlops_nb as mnb

    runs = mnb.runs(home=jp_root_dir / ".mlops_nb").sort_values("started_at")
    assert [Path(p).name for p in runs["notebook"]] == ["first.ipynb", "renamed.ipynb"]
    assert set(runs["experiment"]) == {"first"}  # one notebook, one experiment, across a rename
    # The panel, asked about the renamed notebook, shows that experiment with both runs.
    info = await _json(jp_fetch, "mlops-nb", "api", "experiments", path="renamed.ipynb")
    assert info["notebook_experiment"] == "first"
    (exp,) = info["experiments"]
    assert exp["runs"] == 2 and "renamed.ipynb" in exp["notebooks"]
    # Deleting the session removes the marker the rename left in the runtime folder.
    assert not list(Path(kernel.connection_file).parent.glob("*.mlops-nb-path"))


async def _execute_in_cell(kc, code: str, cell_id: str) -> None:
    """An execute request carrying the cell's id, as JupyterLab sends it."""
    msg = kc.session.msg("execute_request", {
        "code": code, "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True}, metadata={"cellId": cell_id})
    kc.shell_channel.send(msg)
    while True:
        reply = await kc.get_shell_msg(timeout=120)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            break
    assert reply["content"]["status"] == "ok", reply["content"]


class TestWithoutTheServerExtension:
    """The extension disabled: no marker is written; the kernel finds the renamed notebook by
    the id of the cell it runs (server/live_path.py)."""

    @pytest.fixture
    def jp_server_config(self) -> dict:
        return {"ServerApp": {"jpserver_extensions": {"mlops_nb.server": False}}}

    async def test_a_rename_is_found_by_the_running_cells_id(
            self, jp_fetch, jp_serverapp, jp_root_dir: Path) -> None:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in ("x = 1", "y = 2")]
        nb.cells[0]["id"], nb.cells[1]["id"] = "c-load", "c-metric"
        nbformat.write(nb, jp_root_dir / "first.ipynb")
        session = await _json(jp_fetch, "api", "sessions", method="POST", body={
            "path": "first.ipynb", "name": "first.ipynb", "type": "notebook",
            "kernel": {"name": "python3"}})
        kernel = jp_serverapp.kernel_manager.get_kernel(session["kernel"]["id"])
        kc = kernel.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=120)
            await _execute_in_cell(kc, "%load_ext mlops_nb\nimport mlops_nb as mnb\n%track on",
                                   "c-load")
            await _execute_in_cell(kc, "mnb.log_metric('m', 1.0)", "c-metric")
            await _json(jp_fetch, "api", "contents", "first.ipynb", method="PATCH",
                        body={"path": "renamed.ipynb"})
            await _json(jp_fetch, "api", "sessions", session["id"], method="PATCH",
                        body={"path": "renamed.ipynb", "name": "renamed.ipynb"})
            await _execute_in_cell(kc, "mnb.log_metric('m', 2.0)", "c-metric")
            await _execute_in_cell(kc, "assert get_ipython()._mlops_nb_tracker.flush(30)",
                                   "c-flush")
        finally:
            kc.stop_channels()
            await jp_fetch("api", "sessions", session["id"], method="DELETE")
        assert not list(Path(kernel.connection_file).parent.glob("*.mlops-nb-path"))

        import mlops_nb as mnb

        runs = mnb.runs(home=jp_root_dir / ".mlops_nb").sort_values("started_at")
        assert [Path(p).name for p in runs["notebook"]] == ["first.ipynb", "renamed.ipynb"]
        assert set(runs["experiment"]) == {"first"}
