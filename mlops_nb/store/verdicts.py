"""Reproduction verdicts, one small JSON file per run under `.mlops_nb/verdicts/`.

Session files have a single writer (their kernel), so verdicts never go into them: `reproduce`
may run from a terminal, CI or another kernel. Each file is replaced atomically; the last
verdict for a run wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .per_run import PerRunFiles

VERDICTS_DIR = "verdicts"
_FILES = PerRunFiles(VERDICTS_DIR)


def save_verdict(home: str | os.PathLike[str], run_id: str, verdict_dict: dict[str, Any]) -> Path:
    """Store `verdict_dict` as the verdict of `run_id`; returns the file written."""
    return _FILES.save(home, run_id, {**verdict_dict, "run_id": run_id})


def load_verdicts(home: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """{run_id: verdict} for every stored verdict; unreadable files are skipped."""
    return _FILES.load_all(home)
