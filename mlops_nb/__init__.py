"""mlops-nb: every notebook cell run tracked, compared, exported and verified.

`%load_ext mlops_nb`, then `%track on` (or `mnb.start()`). This module stays light (no pandas,
matplotlib or scikit-learn at import) so loading the extension is instant: the functions that
need heavy modules are re-exported lazily, on first use, from the modules that hold them
(`mnb.export` is `mlops_nb.exporting.export_run`, `mnb.compare` is
`mlops_nb.comparison.compare`). They are the real functions, so `help()` and
`inspect.signature` show their real arguments.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .api import (
    _TRACKER_ATTR,
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
from .errors import MlopsNbError, NotInIPython

if TYPE_CHECKING:  # what the lazy names are, for IDEs and type checkers
    from .comparison import compare
    from .exporting import export_run as export
    from .models import demote_run as demote
    from .models import load_model, log_model
    from .models import promote_run as promote
    from .reproduction import reproduce
    from .retraining import retrain
    from .run import Run
    from .sync.mlflow import sync_mlflow
    from .validation import validate

__version__ = "0.1.0"

# public name -> (module, attribute): imported on first use, then kept in this namespace
_LAZY = {
    "Run": ("mlops_nb.run", "Run"),
    "compare": ("mlops_nb.comparison", "compare"),
    "demote": ("mlops_nb.models", "demote_run"),
    "export": ("mlops_nb.exporting", "export_run"),
    "load_model": ("mlops_nb.models", "load_model"),
    "log_model": ("mlops_nb.models", "log_model"),
    "promote": ("mlops_nb.models", "promote_run"),
    "reproduce": ("mlops_nb.reproduction", "reproduce"),
    "retrain": ("mlops_nb.retraining", "retrain"),
    "sync_mlflow": ("mlops_nb.sync.mlflow", "sync_mlflow"),
    "validate": ("mlops_nb.validation", "validate"),
}

__all__ = [
    "MlopsNbError",
    "NotInIPython",
    "Run",
    "Tracking",
    "compare",
    "demote",
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




def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'mlops_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def load_ipython_extension(ip: Any) -> None:
    """Register `%track` and the recording hooks; idempotent across `%reload_ext`.

    IPython calls this for `%load_ext mlops_nb`; `mnb.start()` calls it when needed.

    Args:
        ip: the IPython shell.

    Returns:
        None.

    Raises:
        Nothing: loading twice (`%reload_ext`) re-registers once.
    """
    from .capture.recorder import Tracker
    from .magics import TrackMagics

    tracker = getattr(ip, _TRACKER_ATTR, None)
    if tracker is None:
        tracker = Tracker(ip)
        setattr(ip, _TRACKER_ATTR, tracker)
    tracker.register()
    ip.register_magics(TrackMagics(ip, tracker))


def unload_ipython_extension(ip: Any) -> None:
    """Remove the hooks and write what is pending; the session and its log live on.

    Args:
        ip: the IPython shell.

    Returns:
        None.

    Raises:
        Nothing: unloading a shell that never loaded it does nothing.
    """
    tracker = getattr(ip, _TRACKER_ATTR, None)
    if tracker is not None:
        tracker.unregister()
        tracker.flush()


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where `jupyter labextension develop` finds the built JupyterLab extension."""
    return [{"src": "labextension", "dest": "@mlops-nb/labextension"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_nb.server"}]
