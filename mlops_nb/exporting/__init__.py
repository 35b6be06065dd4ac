"""Export a run as a minimal standalone script that `reproduce` can verify.

`export_run(run_id, out_dir)` writes `train.py` (the run's lineage slice as plain Python, with
a parameters block, data-file options, RNG restores and metrics output), `requirements.txt`
(the imported distributions, pinned to the session's versions), `run.json` (the record, the
slice and why each cell run is in it, the expected metrics) and `rng_states.json`.
"""

from __future__ import annotations

import os
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
    """Write run `run_id` as a standalone `train.py` + requirements + `run.json` folder.

    Args:
        run_id: the run's id or a unique prefix of it.
        out_dir: the folder to write (created; inside the project).
        home: the store folder (default: the notebook's store, else found like `.git`).
        force: replace an earlier export in `out_dir`.

    Returns:
        The export folder's path.

    Raises:
        HiddenState, UntranslatableMagic: the run cannot be claimed reproducible.
        UnsafeExport, UnsafeOutputPath: a name, value or path cannot be written safely.
        ExportExists: the folder holds other files, or an earlier export (force=True).
        RunNotFound, AmbiguousRunId, StoreNotFound: no such run or store.
        Nothing is written when it raises.

    Example:
        >>> mnb.export("3fa9", "exports/rf")                  # doctest: +SKIP
    """
    from .build import build_export
    from .paths import prepare_out_dir

    reader = _reader(home)
    run = reader.resolve(run_id)
    out = prepare_out_dir(out_dir, root=reader.home.parent, store=reader.home, force=force)
    export = build_export(reader, run, out)
    return write_export(export, out)


def _known_metrics(cols: dict[str, Any]) -> list[str]:
    """The metrics some run of these columns has a value for."""
    return [c.removeprefix("metrics.") for c, v in cols.items()
            if c.startswith("metrics.") and any(x is not None for x in v)]


def sole_metric(experiment: str | None = None,
                home: str | os.PathLike[str] | None = None) -> str:
    """The metric `--best` goes by when none is given: the one metric the runs have. With
    several, which is best is the user's call: the error lists them."""
    known = _known_metrics(_reader(home).run_columns(experiment).cols)
    if len(known) == 1:
        return known[0]
    if not known:
        where = f" in experiment {experiment!r}" if experiment else ""
        raise MlopsNbError(f"no run{where} has a metric to choose the best run by")
    shown = ", ".join(repr(k) for k in known[:12]) + (", ..." if len(known) > 12 else "")
    raise MlopsNbError(f"--best needs --metric M: the runs have {len(known)} metrics "
                       f"({shown})")


def best_run_id(metric: str, *, goal: str | None = None, experiment: str | None = None,
                home: str | os.PathLike[str] | None = None) -> str:
    """The id of the run with the best `metric` (max, or min for losses or goal='min')."""
    from ..metrics import best_positions, resolve_goal, unknown_metric

    name = metric.removeprefix("metrics.")
    goal = resolve_goal(name, goal)
    cols = _reader(home).run_columns(experiment).cols
    values = cols.get(f"metrics.{name}")
    if not values:
        known = _known_metrics(cols)
        where = f" in experiment {experiment!r}" if experiment else ""
        raise MlopsNbError(unknown_metric(name, known, where))
    tied = best_positions(values, goal)
    if not tied:
        raise MlopsNbError(f"no run has a numeric value for metric {name!r}")
    # of runs tied at the best value, the oldest: the one the comparison lists first
    first = min(tied, key=lambda i: (cols["started_at"][i] or 0, cols["seq"][i] or 0, i))
    return str(cols["id"][first])
