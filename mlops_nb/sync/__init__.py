"""Team scale: push runs to an MLflow tracking server and read the team's runs back.

Importing this package is light; the MLflow client loads on the first sync.
"""

from __future__ import annotations

from .mlflow import AuthRefused, MlflowMissing, SyncFailed, SyncSummary, sync_mlflow, watch_mlflow

__all__ = ["AuthRefused", "MlflowMissing", "SyncFailed", "SyncSummary", "sync_mlflow",
           "watch_mlflow"]
