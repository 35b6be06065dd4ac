"""Tags and explicit metric steps of runs, one small JSON file per run under `.mlops_nb/tags/`.

MLflow users tag a run while it runs and step their metrics (`log_metric(..., step=epoch)`).
Like verdicts, these live beside the session files, never in them: a session file has a single
writer (its kernel), while tags may be set from anywhere. Each file is replaced atomically;
tags set twice merge, the later value winning, as `mlflow.set_tags` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import MlopsNbError
from .per_run import PerRunFiles

TAGS_DIR = "tags"
_FILES = PerRunFiles(TAGS_DIR)
MAX_TAG_KEY = 250  # MLflow's limits, so a tag set here is one MLflow accepts on sync
MAX_TAG_VALUE = 8000


def check_tags(tags: Any) -> dict[str, str]:
    """Tags as MLflow keeps them: text keys and text values; the reason when they are not.

    Raises:
        MlopsNbError: not a mapping, a key that is not non-empty text, or a key or value past
            MLflow's length limits.
    """
    if not hasattr(tags, "items"):
        raise MlopsNbError(f"tags must be a dict of names to values, not {type(tags).__name__}")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key.strip():
            raise MlopsNbError(f"a tag name must be non-empty text, not {key!r}")
        text = value if isinstance(value, str) else json.dumps(value, default=str) \
            if isinstance(value, (dict, list)) else str(value)
        if len(key) > MAX_TAG_KEY or len(text) > MAX_TAG_VALUE:
            raise MlopsNbError(f"tag {key[:40]!r} is too long (names up to {MAX_TAG_KEY}, "
                               f"values up to {MAX_TAG_VALUE} characters, as MLflow allows)")
        out[key] = text
    return out


def load_annotation(home: str | os.PathLike[str], run_id: str) -> dict[str, Any]:
    """{"tags": {...}, "steps": {metric: [step, ...]}} of one run; {} when none or unreadable."""
    return _FILES.load(home, run_id)


def annotate(home: str | os.PathLike[str], run_id: str, *, tags: dict[str, str] | None = None,
             steps: dict[str, list[int]] | None = None, known: Iterable[str] = ()) -> Path:
    """Merge `tags` into the run's tags and set the step numbers of its metrics; the file.
    Tags are judged like parameters (a credential's name or shape, and the `known` secret
    values of the session): they are stored, listed and synced to MLflow as they are."""
    from ..redact import redact_params

    tags = redact_params(tags or {}, known=known)
    doc = load_annotation(home, run_id)
    merged_tags = {**(doc.get("tags") or {}), **(tags or {})}
    merged_steps = {**(doc.get("steps") or {}), **(steps or {})}
    return _FILES.save(home, run_id, {"run_id": run_id, "tags": merged_tags,
                                      "steps": merged_steps})


def load_annotations(home: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """{run_id: annotation} for every annotated run; unreadable files are skipped."""
    return _FILES.load_all(home)
