"""The notebook path a kernel serves, kept current across File > Rename.

Jupyter tells a kernel its notebook once, at start (`JPY_SESSION_NAME`); a rename only PATCHes
the server's session, and the kernel never hears of it. The server extension therefore writes
the session's new path into a small file beside the kernel's connection file (both live in the
server's runtime directory, which the kernel knows from its own connection file), and the
tracker reads that file back when it records a run. A file, not a message: it needs no comm,
no server URL or token in the kernel, and costs the kernel one `stat` per recorded run.

Without the server extension (disabled, or a server that is not Jupyter's) no marker is ever
written. Then, when the path the kernel knows no longer exists, the kernel looks for the
notebook in the same folder by the id of the cell it is running (JupyterLab and Notebook 7 send
it with each execution, and a renamed file keeps its cells' ids): the notebook holding that id,
the most recently saved if several do. A cell never saved yet is not found; the next run tries
again once the folder changed (a save). Runs keep their experiment either way.

Imported by the kernel: stdlib only, nothing from Jupyter at import time.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

SUFFIX = ".mlops-nb-path"


def marker_for(connection_file: str | os.PathLike[str]) -> Path:
    """`kernel-<id>.json` -> `kernel-<id>.mlops-nb-path` in the same runtime folder."""
    conn = Path(connection_file)
    return conn.with_name(conn.stem + SUFFIX)


def write_marker(connection_file: str | os.PathLike[str], notebook: str) -> Path:
    """Record `notebook` (the kernel's `JPY_SESSION_NAME` form) atomically for the kernel."""
    target = marker_for(connection_file)
    fd, tmp = tempfile.mkstemp(prefix=".mnb-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"notebook": notebook}, fh)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def remove_marker(connection_file: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):
        marker_for(connection_file).unlink()


def read_marker(marker: Path) -> str | None:
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    path = data.get("notebook") if isinstance(data, dict) else None
    return path if isinstance(path, str) and path else None


def kernel_connection_file() -> str | None:
    """This process's kernel connection file, when it is an initialised ipykernel."""
    if "ipykernel.kernelapp" not in sys.modules:  # plain IPython: no kernel, no server
        return None
    try:
        from ipykernel.kernelapp import IPKernelApp

        if not IPKernelApp.initialized():
            return None
        conn = IPKernelApp.instance().connection_file
    except Exception:
        return None
    return os.path.abspath(conn) if conn else None


class LivePath:
    """The kernel's notebook path: the rename marker when the server wrote one, else the
    path the kernel was started with, or, when that file is gone, the notebook beside it
    that holds the running cell. Re-reads the marker only when its mtime changed."""

    def __init__(self, initial: str | None, connection_file: str | None = None) -> None:
        self.initial = initial
        self.marker = marker_for(connection_file) if connection_file else None
        self._stamp: int | None = None
        self._value: str | None = None
        self._searched: tuple[str, int] | None = None  # (cell id, folder mtime) found nothing

    def get(self, cell_id: str | None = None) -> str | None:
        """The current path; `cell_id` (the running cell's) lets a rename be found without
        the server extension."""
        if self.marker is not None:
            try:
                stamp = self.marker.stat().st_mtime_ns
            except OSError:
                stamp = None
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                self._value = read_marker(self.marker) or self._value
        path = self._value or self.initial
        if path and cell_id and not os.path.exists(path):
            found = self._find_renamed(path, cell_id)
            if found is not None:
                self._value = path = found
        return path

    def _find_renamed(self, gone: str, cell_id: str) -> str | None:
        folder = os.path.dirname(gone) or "."
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            return None
        if self._searched == (cell_id, mtime):
            return None  # nothing saved in the folder since the last search
        found = find_notebook_with_cell(folder, cell_id)
        self._searched = None if found else (cell_id, mtime)
        return found


def find_notebook_with_cell(folder: str, cell_id: str) -> str | None:
    """The `.ipynb` in `folder` whose cells include `cell_id` (the newest such file), or None.

    A cheap text search first (the id as a JSON string), then the parsed cells confirm it, so
    an id that only appears in some output is not taken for the cell's."""
    needle = json.dumps(cell_id)
    hits: list[tuple[int, str]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    for e in entries:
        if not e.name.endswith(".ipynb") or not e.is_file():
            continue
        try:
            text = Path(e.path).read_text(encoding="utf-8")
            if needle not in text:
                continue
            cells = json.loads(text).get("cells") or []
            if any(isinstance(c, dict) and c.get("id") == cell_id for c in cells):
                hits.append((e.stat().st_mtime_ns, os.path.abspath(e.path)))
        except (OSError, ValueError, AttributeError):
            continue
    return max(hits)[1] if hits else None
