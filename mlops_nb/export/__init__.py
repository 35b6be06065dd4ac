"""Export a run as a minimal standalone script that `reproduce` can verify.

`export_run(run_id, out_dir)` writes `train.py` (the run's lineage slice as plain Python, with
a parameters block, data-file options, RNG restores and metrics output), `requirements.txt`
(the imported distributions, pinned to the session's versions), `run.json` (the record, the
slice and why each cell run is in it, the expected metrics) and `rng_states.json`.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

from ..errors import MlopsNbError

__all__ = ["best_run_id", "export_run", "write_export"]


def _reader(home: str | os.PathLike[str] | None) -> Any:
    from ..config import store_reader as api_reader

    return api_reader(home)


def write_export(export: Any, out: Path) -> Path:
    from .paths import install_files

    return install_files(out, export.files())


def export_run(run_id: str, out_dir: str | os.PathLike[str], *,
               home: str | os.PathLike[str] | None = None, force: bool = False) -> Path:
    """Write the export of run `run_id` (id or unique prefix) into `out_dir`; its path.

    Raises HiddenState / UntranslatableMagic (the run cannot be claimed reproducible),
    UnsafeExport / UnsafeOutputPath, ExportExists (a folder holding other files; an earlier
    export needs force=True). Nothing is written when it raises.
    """
    from .build import build_export
    from .paths import prepare_out_dir

    reader = _reader(home)
    run = reader.resolve(run_id)
    out = prepare_out_dir(out_dir, root=reader.home.parent, store=reader.home, force=force)
    export = build_export(reader, run, out)
    return write_export(export, out)


def best_run_id(metric: str, *, goal: str | None = None, experiment: str | None = None,
                home: str | os.PathLike[str] | None = None) -> str:
    """The id of the run with the best `metric` (max, or min for losses or goal='min')."""
    from ..metrics import best_positions, resolve_goal

    name = metric.removeprefix("metrics.")
    goal = resolve_goal(name, goal)
    cols = _reader(home).run_columns(experiment).cols
    values = cols.get(f"metrics.{name}")
    if not values:
        where = f" in experiment {experiment!r}" if experiment else ""
        raise MlopsNbError(f"no run has metric {name!r}{where}; `mlops-nb runs` lists them")
    tied = best_positions(values, goal)
    if not tied:
        raise MlopsNbError(f"no run has a numeric value for metric {name!r}")
    # of runs tied at the best value, the oldest: the one the comparison lists first
    first = min(tied, key=lambda i: (cols["started_at"][i] or 0, cols["seq"][i] or 0, i))
    return str(cols["id"][first])


class _CallableModule(types.ModuleType):
    """`mnb.export(run_id, out_dir)` keeps working once this package is imported."""

    def __call__(self, run_id: str, out_dir: str | os.PathLike[str], *,
                 force: bool = False, home: str | os.PathLike[str] | None = None) -> Path:
        return export_run(run_id, out_dir, home=home, force=force)


sys.modules[__name__].__class__ = _CallableModule
