"""Run a notebook headlessly in a real Jupyter kernel of *this* Python environment.

A kernelspec named `python3` elsewhere on the machine (a user's or the system's) may point at
another Python without mlops-nb installed; we put a spec for `sys.executable` first on
JUPYTER_PATH so the kernel always runs where this package is.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

KERNEL_NAME = "python3"


def _kernelspec_dir() -> str:
    root = Path(tempfile.mkdtemp(prefix="mlops-nb-kernels-"))
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (mlops-nb)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return str(root)


def execute_notebook(
    path: str | os.PathLike[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    timeout: int = 600,
    env: dict[str, str] | None = None,
    allow_errors: bool = False,
) -> Any:
    """Execute every cell in order and return the executed `nbformat` notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(os.fspath(path), as_version=4)
    workdir = os.fspath(cwd or Path(path).resolve().parent)
    # Jupyter server tells kernels their notebook this way; so do we, so runs name it.
    env = {"JPY_SESSION_NAME": str(Path(path).resolve()), **(env or {})}
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", *env)}
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (_kernelspec_dir(), saved["JUPYTER_PATH"]) if p
    )
    os.environ.update(env)
    try:
        client = NotebookClient(
            nb,
            kernel_name=KERNEL_NAME,
            timeout=timeout,
            allow_errors=allow_errors,
            resources={"metadata": {"path": workdir}},
        )
        _send_cell_ids(client)
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def _send_cell_ids(client: Any) -> None:
    """Send each cell's id with its execute request, as JupyterLab does (`metadata.cellId`).

    nbclient does not, so without this a headless run's cell runs would have no cell id and
    could not be matched to the notebook's cells.
    """
    current: dict[str, str | None] = {"id": None}

    def on_cell_execute(cell: Any, cell_index: int) -> None:
        current["id"] = cell.get("id")

    def on_notebook_start(notebook: Any) -> None:
        session = client.kc.session
        make = session.msg

        def msg(msg_type: str, content: Any = None, *args: Any, **kwargs: Any) -> Any:
            if msg_type == "execute_request" and current["id"] and not args:
                kwargs["metadata"] = {"cellId": current["id"], **(kwargs.get("metadata") or {})}
            return make(msg_type, content, *args, **kwargs)

        session.msg = msg

    client.on_cell_execute = on_cell_execute
    client.on_notebook_start = on_notebook_start


def text_outputs(nb: Any) -> list[str]:
    """Every cell's printed and displayed text, in order: what a headless run shows."""
    out: list[str] = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o.get("text", ""))
            elif o.get("output_type") in ("execute_result", "display_data"):
                out.append(o.get("data", {}).get("text/plain", ""))
            elif o.get("output_type") == "error":
                out.append("\n".join(o.get("traceback", [])))
    return out
