"""Comparing runs: the model (pure functions), the plots, the widget and the HTML report.

`mnb.compare(...)` is this package called as a function: `mlops_nb.compare` is at once the
package and the function, so `import mlops_nb.compare.model` and `mnb.compare(metric="f1")`
both work whichever was imported first. Importing it is light; pandas, matplotlib and
ipywidgets load on the first call.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .widget import CompareWidget


def compare(experiment: str | None = None, *, metric: str | None = None,
            goal: str | None = None, home: str | os.PathLike[str] | None = None,
            **options: Any) -> CompareWidget:
    """The comparison widget over the runs of `experiment` (default: all), best by `metric`.

    `goal` is 'min' or 'max' (default: 'min' for losses and errors, else 'max'). Display it by
    leaving it as a cell's last expression. Options: `page_size` (50), `export_dir`.
    """
    from .widget import CompareWidget

    return CompareWidget(experiment, metric=metric, goal=goal, home=home, **options)


def write_report(path: str | os.PathLike[str], experiment: str | None = None, *,
                 metric: str | None = None, goal: str | None = None,
                 home: str | os.PathLike[str] | None = None) -> Path:
    """Write the self-contained HTML report of the runs to `path`; returns the path."""
    from .report import write_report as _write

    return _write(path, experiment, metric=metric, goal=goal, home=home)


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> CompareWidget:
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["compare", "write_report"]
