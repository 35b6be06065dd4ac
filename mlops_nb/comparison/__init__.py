"""Comparing runs: the model (pure functions), the plots, the widget and the HTML report.

`compare` here is `mnb.compare`. Importing this package is light; pandas, matplotlib and
ipywidgets load on the first call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .widget import CompareWidget


def compare(experiment: str | None = None, *, metric: str | None = None,
            goal: str | None = None, home: str | os.PathLike[str] | None = None,
            **options: Any) -> CompareWidget:
    """The comparison widget over the runs of `experiment`, best by `metric`.

    Display it by leaving it as a cell's last expression; it also renders as static HTML
    in a saved notebook.

    Args:
        experiment: only this experiment's runs (default: all).
        metric: the metric that ranks runs (default: the one last chosen, else the first).
        goal: 'min' or 'max' (default: 'min' for losses and errors, else 'max').
        home: the store folder (default: the notebook's store, else found like `.git`).
        **options: `page_size` (50), `export_dir`, `source="mlflow"` with `tracking_uri`.

    Returns:
        The `CompareWidget`.

    Raises:
        MlopsNbError: a bad goal or option; StoreNotFound when there is no store.

    Example:
        >>> mnb.compare("churn", metric="f1")                 # doctest: +SKIP
    """
    from .widget import CompareWidget

    return CompareWidget(experiment, metric=metric, goal=goal, home=home, **options)


def write_report(path: str | os.PathLike[str], experiment: str | None = None, *,
                 metric: str | None = None, goal: str | None = None,
                 home: str | os.PathLike[str] | None = None) -> Path:
    """Write the self-contained HTML report of the runs to `path` (see `compare`).

    Args:
        path: the HTML file to write.
        experiment: only this experiment's runs (default: all).
        metric: the metric that ranks runs.
        goal: 'min' or 'max'.
        home: the store folder.

    Returns:
        The path written.

    Raises:
        MlopsNbError: a bad goal; StoreNotFound when there is no store.
    """
    from .report import write_report as _write

    return _write(path, experiment, metric=metric, goal=goal, home=home)

__all__ = ["compare", "write_report"]
