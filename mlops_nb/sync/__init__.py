"""Team scale: push runs to an MLflow tracking server and read the team's runs back.

Importing this package is light; the MLflow client loads on the first sync. The names below
come from `sync/mlflow.py` on first use, so `mlops-nb` building its argument parser (which
imports `sync.command`) does not import the sync machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .mlflow import (
        AuthRefused,
        MlflowMissing,
        SyncFailed,
        SyncSummary,
        sync_mlflow,
        watch_mlflow,
    )

__all__ = ["AuthRefused", "MlflowMissing", "SyncFailed", "SyncSummary", "sync_mlflow",
           "watch_mlflow"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'mlops_nb.sync' has no attribute {name!r}")
    value = getattr(importlib.import_module(".mlflow", __name__), name)
    globals()[name] = value
    return value
