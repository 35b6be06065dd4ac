"""An `interact` slider moved in a real kernel, the way a frontend moves it: a comm message
the kernel handles outside any cell (no pre/post_run_cell), recorded as its own run, then
exported and reproduced in a fresh process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_nb.exporting import export_run
from mlops_nb.records import MODE_CALLBACK
from mlops_nb.reproduction import reproduce
from mlops_nb.store.reader import StoreReader

CELLS = [
    "%load_ext mlops_nb",
    "%track on --experiment widgets",
    "from ipywidgets import interact\n"
    "from sklearn.datasets import make_classification\n"
    "from sklearn.tree import DecisionTreeClassifier\n"
    "X, y = make_classification(n_samples=200, random_state=0)",
    "# train once per slider position\n"
    "@interact(max_depth=(1, 8))\n"
    "def train(max_depth=2):\n"
    "    acc = DecisionTreeClassifier(max_depth=max_depth, random_state=0).fit(X, y).score(X, y)\n"
    "    print(acc)",
    "from ipywidgets.widgets.interaction import interactive\n"
    "from ipywidgets.widgets.widget import _instances\n"
    "panel = [w for w in _instances.values() if isinstance(w, interactive)][-1]\n"
    "print(panel.children[0].model_id)",
]


def _run(kc, code: str) -> str:
    out: list[str] = []

    def keep(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, output_hook=keep, timeout=120)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def _move_slider(kc, model_id: str, value: int) -> None:
    """What JupyterLab sends when the user drags the slider: a comm message, not a cell."""
    msg = kc.session.msg("comm_msg", {"comm_id": model_id, "data": {
        "method": "update", "state": {"value": value}, "buffer_paths": []}})
    kc.shell_channel.send(msg)
    while True:  # the kernel is idle again once it handled the message
        m = kc.get_iopub_msg(timeout=120)
        if (m["parent_header"].get("msg_id") == msg["header"]["msg_id"]
                and m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"):
            return


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_slider_moved_through_the_comm_is_a_run_that_reproduces(tmp_path, monkeypatch):
    from jupyter_client import KernelManager

    from mlops_nb.execute import _kernelspec_dir

    monkeypatch.setenv("JUPYTER_PATH", _kernelspec_dir())
    home = tmp_path / ".mlops_nb"
    monkeypatch.setenv("MLOPS_NB_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("JPY_SESSION_NAME", None)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path), env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        model_id = ""
        for code in CELLS:
            model_id = _run(kc, code).strip()
        _move_slider(kc, model_id, 6)
        _run(kc, "import mlops_nb as mnb\nmnb.flush()")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    runs = [cr for cr in StoreReader(home).iter_cell_runs() if cr.is_run]
    moved = [cr for cr in runs if cr.mode == MODE_CALLBACK]
    assert len(moved) == 1 and moved[0].params == {"max_depth": 6}, runs
    out = export_run(moved[0].id, Path(tmp_path) / "export")
    verdict = reproduce(out)
    assert verdict.ok, verdict.summary() + verdict.stderr_tail
    src = (out / "train.py").read_text()
    assert "max_depth = 6" in src and "@interact" not in src
    assert "# train once per slider position" in src  # the notebook's own comment survives
