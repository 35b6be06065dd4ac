"""Reproduction verdicts, one small JSON file per run under `.mlops_nb/verdicts/`.

Session files have a single writer (their kernel), so verdicts never go into them: `reproduce`
may run from a terminal, CI or another kernel. Each file is replaced atomically; the last
verdict for a run wins.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .storage import atomic_write_bytes

VERDICTS_DIR = "verdicts"
_RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")


def _path(home: Path, run_id: str) -> Path:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ValueError(f"not a run id: {run_id!r}")
    return Path(home) / VERDICTS_DIR / f"{run_id}.json"


def save_verdict(home: str | os.PathLike[str], run_id: str, verdict_dict: dict[str, Any]) -> Path:
    """Store `verdict_dict` as the verdict of `run_id`; returns the file written."""
    path = _path(Path(home), run_id)
    payload = json.dumps({**verdict_dict, "run_id": run_id}, default=repr).encode("utf-8")
    atomic_write_bytes(path, payload)
    return path


def load_verdicts(home: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """{run_id: verdict} for every stored verdict; unreadable files are skipped."""
    folder = Path(home) / VERDICTS_DIR
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
