"""One small JSON file per run in a folder of the store (verdicts, tags).

Session files have a single writer (their kernel), so what may be written from anywhere else
(a terminal, CI, another kernel) lives beside them, one file per run, each replaced atomically.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .storage import atomic_write_bytes

_RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")


class PerRunFiles:
    """The files of one folder under the store, `<folder>/<run id>.json`."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def path(self, home: str | os.PathLike[str], run_id: str) -> Path:
        """Where `run_id`'s file lives; a value that is not a run id never becomes a path."""
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        return Path(home) / self.folder / f"{run_id}.json"

    def save(self, home: str | os.PathLike[str], run_id: str, doc: dict[str, Any]) -> Path:
        path = self.path(home, run_id)
        atomic_write_bytes(path, json.dumps(doc, default=repr).encode("utf-8"))
        return path

    def load(self, home: str | os.PathLike[str], run_id: str) -> dict[str, Any]:
        """The run's document; {} when there is none or it cannot be read."""
        try:
            doc = json.loads(self.path(home, run_id).read_bytes())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def load_all(self, home: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
        """{run_id: document} for every run with a file; unreadable files are skipped."""
        folder = Path(home) / self.folder
        out: dict[str, dict[str, Any]] = {}
        if not folder.is_dir():
            return out
        for entry in os.scandir(folder):
            name = entry.name
            if not name.endswith(".json") or not _RUN_ID.match(name[:-5]):
                continue
            try:
                doc = json.loads(Path(entry.path).read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict):
                out[name[:-5]] = doc
        return out
