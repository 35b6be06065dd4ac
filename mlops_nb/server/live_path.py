"""The notebook path a kernel serves, kept current across File > Rename.

Jupyter tells a kernel its notebook once, at start (`JPY_SESSION_NAME`); a rename only PATCHes
the server's session, and the kernel never hears of it. The server extension therefore writes
the session's new path into a small file beside the kernel's connection file (both live in the
server's runtime directory, which the kernel knows from its own connection file), and the
tracker reads that file back when it records a run. A file, not a message: it needs no comm,
no server URL or token in the kernel, and costs the kernel one `stat` per recorded run.

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
    path the kernel was started with. Re-reads the marker only when its mtime changed."""

    def __init__(self, initial: str | None, connection_file: str | None = None) -> None:
        self.initial = initial
        self.marker = marker_for(connection_file) if connection_file else None
        self._stamp: int | None = None
        self._value: str | None = None

    def get(self) -> str | None:
        if self.marker is None:
            return self.initial
        try:
            stamp = self.marker.stat().st_mtime_ns
        except OSError:
            return self._value or self.initial
        if stamp != self._stamp:
            self._stamp = stamp
            self._value = read_marker(self.marker) or self._value
        return self._value or self.initial
