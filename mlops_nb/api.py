"""The Python API a notebook or script calls: explicit logging and reading runs back."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .capture.recorder import active_tracker
from .config import store_reader
from .records import run_view

if TYPE_CHECKING:
    import pandas as pd


def log_metric(name: str, value: Any) -> Any:
    """Record a metric on the cell now running; returns `value` so it can wrap an expression.

    Logging the same name again in one cell keeps every value in `metric_steps` and the last
    as the metric, like a training curve.
    """
    tracker = active_tracker()
    if tracker is None:
        _not_loaded("log_metric")
        return value
    return tracker.log_metric(name, value)


def log_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    for name, value in metrics.items():
        log_metric(name, value)
    return metrics


def log_param(name: str, value: Any) -> Any:
    """Record a parameter on the cell now running; returns `value`."""
    tracker = active_tracker()
    if tracker is None:
        _not_loaded("log_param")
        return value
    return tracker.log_param(name, value)


def log_params(params: dict[str, Any]) -> dict[str, Any]:
    for name, value in params.items():
        log_param(name, value)
    return params


def _not_loaded(fn: str) -> None:
    import warnings

    warnings.warn(
        f"mlops_nb.{fn} was not recorded: load the extension first (`%load_ext mlops_nb`)",
        stacklevel=3,
    )


def runs(experiment: str | None = None, *, home: str | os.PathLike[str] | None = None
         ) -> pd.DataFrame:
    """Every run (cell run with metrics) as a DataFrame, one row per run, oldest first.

    Columns: id, experiment, name, session, notebook, cell_id, execution_count, seq,
    started_at, duration_s, status, data, then `params.<name>` and `metrics.<name>`.
    Files that could not be read are listed in `df.attrs["problems"]`.
    """
    from .table import runs_frame

    return runs_frame(store_reader(home).run_columns(experiment))


def get_run(run_id: str, *, home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The full record of one run by id or unique prefix, as `mlops-nb show` prints it."""
    from .lineage import lineage_ids, resolve_value_refs

    reader = store_reader(home)
    run = reader.resolve(run_id)
    view = run_view(run, lineage_ids(reader.session_log(run.session), run))
    for key in ("params", "cell_params"):
        view[key] = resolve_value_refs(view[key], reader.blobs)
    return view


def flush(timeout: float | None = 30.0) -> bool:
    """Write every recorded cell run now; True only if all of them are on disk.

    False if the store cannot be written (disk full, read-only: `%track status` says why; the
    runs wait in memory and are written once it can be) or `timeout` ran out.
    """
    tracker = active_tracker()
    return True if tracker is None else tracker.flush(timeout)
