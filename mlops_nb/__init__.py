"""mlops-nb: every notebook cell run tracked, compared, exported and verified.

`%load_ext mlops_nb`, then `%track on`. This module stays light (no pandas, matplotlib or
scikit-learn at import) so loading the extension is instant.
"""

from __future__ import annotations

from typing import Any

# compare: a light package, also callable as `mnb.compare(...)`; pandas,
# matplotlib and ipywidgets load on its first call, not here.
from . import compare
from .api import (
    NotInIPython,
    Tracking,
    flush,
    get_run,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    runs,
    set_experiment,
    set_run_name,
    set_tags,
    start,
    stop,
)
from .errors import MlopsNbError

__version__ = "0.1.0"

__all__ = [
    "MlopsNbError",
    "NotInIPython",
    "Tracking",
    "compare",
    "export",
    "flush",
    "get_run",
    "load_ipython_extension",
    "load_model",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "promote",
    "reproduce",
    "retrain",
    "runs",
    "set_experiment",
    "set_run_name",
    "set_tags",
    "start",
    "stop",
    "sync_mlflow",
    "unload_ipython_extension",
    "validate",
]

_TRACKER_ATTR = "_mlops_nb_tracker"


# Export and reproduce load lazily, so importing mlops_nb stays light. Importing the
# submodules rebinds these names to the modules, which are callable with the same signature.
def export(run_id: str, out_dir: Any, *, force: bool = False, home: Any = None) -> Any:
    """Write run `run_id` as a standalone train.py + requirements.txt + run.json; the folder."""
    from .export import export_run

    return export_run(run_id, out_dir, home=home, force=force)


def reproduce(target: Any, **options: Any) -> Any:
    """Run an export folder (or a run id) in a fresh process; the Verdict (`.ok`, `.level`)."""
    from .reproduce import reproduce as _reproduce

    return _reproduce(target, **options)


def log_model(model: Any, name: str) -> Any:
    """Save a fitted model as a version linked to the cell run now executing; returns it."""
    from .models import log_model as _log_model

    return _log_model(model, name)


def load_model(run_id: str, name: str | None = None, *, trusted: bool = False,
               home: Any = None) -> Any:
    """The model `name` saved with a run (id, prefix or "promoted"); see models.load_model."""
    from .models import load_model as _load_model

    return _load_model(run_id, name, trusted=trusted, home=home)


def promote(run_id: str, name: str | None = None, *, home: Any = None) -> Any:
    """Mark the model saved with a run as the promoted one (what "promoted" loads)."""
    from .models import promote_run

    return promote_run(run_id, name, home=home)


def retrain(target: str, data: Any, **options: Any) -> Any:
    """Retrain a run (or "promoted") on new data, gate, record, promote; see mlops_nb.retrain."""
    from .retrain import retrain as _retrain

    return _retrain(target, data, **options)


def validate(run_id: str, data: Any, **options: Any) -> Any:
    """Check new data against the profile of a run's data: schema and drift; the report."""
    from .validate import validate as _validate

    return _validate(run_id, data, **options)


def sync_mlflow(tracking_uri: str, experiment: str | None = None, dry_run: bool = False,
                **options: Any) -> Any:
    """Push the runs not there yet to an MLflow tracking server; the SyncSummary."""
    from .sync.mlflow import sync_mlflow as _sync

    return _sync(tracking_uri, experiment, dry_run, **options)


def load_ipython_extension(ip: Any) -> None:
    """Register `%track` and the recording hooks; idempotent across `%reload_ext`."""
    from .capture.recorder import Tracker
    from .magics import TrackMagics

    tracker = getattr(ip, _TRACKER_ATTR, None)
    if tracker is None:
        tracker = Tracker(ip)
        setattr(ip, _TRACKER_ATTR, tracker)
    tracker.register()
    ip.register_magics(TrackMagics(ip, tracker))


def unload_ipython_extension(ip: Any) -> None:
    """Remove the hooks and write what is pending; the session and its log live on."""
    tracker = getattr(ip, _TRACKER_ATTR, None)
    if tracker is not None:
        tracker.unregister()
        tracker.flush()


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where `jupyter labextension develop` finds the built JupyterLab extension."""
    return [{"src": "labextension", "dest": "@mlops-nb/labextension"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_nb.server"}]
