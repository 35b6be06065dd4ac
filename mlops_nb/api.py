"""The Python API a notebook or script calls: control tracking, log values, read runs back.

Shaped after MLflow's fluent API and dvclive, so their users find what they expect:
`start`/`stop` are `%track on`/`%track off`, `set_experiment`, `set_run_name` and `set_tags`
act on the current run, `log_metric(..., step=)` records a curve, `runs()` has MLflow's
`run_id` and `start_time` columns and `get_run` returns a typed `Run`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import store_reader
from .errors import MlopsNbError, NotInIPython
from .records import run_view

if TYPE_CHECKING:
    import pandas as pd

    from .capture.recorder import Tracker
    from .run import Run

_TRACKER_ATTR = "_mlops_nb_tracker"
_PENDING_ATTR = "_mlops_nb_pending"  # tags/steps of the cell now running, written at its end
_STOPPING_ATTR = "_mlops_nb_stopping"  # stop() was called in the cell now running


def active_tracker() -> Tracker | None:
    """This kernel's tracker, if the extension made one. No tracker exists before the recorder
    is imported, so `import mlops_nb` (the CLI, a script reading runs) never imports it."""
    recorder = sys.modules.get("mlops_nb.capture.recorder")
    return None if recorder is None else recorder.active_tracker()


# -- controlling tracking -------------------------------------------------------------------------
@dataclass(frozen=True)
class Tracking:
    """What `start` turned on; use it as a context manager to stop at the end of a block."""

    experiment: str
    session: str
    home: Path

    def __enter__(self) -> Tracking:
        return self

    def __exit__(self, *exc: object) -> None:
        stop()


def start(experiment: str | None = None, metrics: list[str] | None = None, *,
          allow_params: list[str] | None = None, save_models: bool = False) -> Tracking:
    """Record every cell run from now on, as `%track on` does; loads the extension if needed.

    Called in a cell, that cell is recorded too (code before the call included), so
    `mnb.start(); model.fit(...); f1 = ...` in one cell gives a run, as `mlflow.start_run()`
    does. Calling it again changes the experiment or adds metric names.

    Args:
        experiment: the experiment the runs go to (default: the notebook's file name, or the
            one `set_experiment` chose).
        metrics: names of variables to record as metrics besides the usual ones
            (`--metric`); e.g. `["lift"]`.
        allow_params: parameter names to record as they are even though their name or value
            looks like a credential (`--allow-param`).
        save_models: save the fitted estimators of every run as model versions (skops).

    Returns:
        A `Tracking` (experiment, session, store folder); `with mnb.start(...):` stops
        tracking when the block ends.

    Raises:
        NotInIPython: no IPython shell is running (a plain Python script): there are no
            cells to record; run the code in Jupyter or IPython.
        MlopsNbError: `experiment` or `metrics` are not text.

    Example:
        >>> import mlops_nb as mnb                                  # doctest: +SKIP
        >>> mnb.start(experiment="churn", metrics=["lift"])         # doctest: +SKIP
    """
    if experiment is not None:
        experiment = _check_name(experiment, "experiment")
    for name in metrics or ():
        _check_name(name, "metric name")
    ip = _shell("start")
    tracker = _loaded_tracker(ip)
    pending_stop = getattr(ip, _STOPPING_ATTR, None)
    if pending_stop is not None:  # stop() then start() in one cell: tracking stays on
        ip.events.unregister("post_run_cell", pending_stop)
        setattr(ip, _STOPPING_ATTR, None)
    was_on = tracker.auto
    tracker.start(experiment=experiment, metrics=list(metrics or ()),
                  allow_params=list(allow_params or ()))
    from .models import save_models_after_runs

    save_models_after_runs(tracker, save_models)
    if not was_on:
        _record_current_cell(ip, tracker)
    assert tracker.home is not None and tracker.experiment is not None
    return Tracking(tracker.experiment, tracker.session, Path(tracker.home))


def stop() -> bool:
    """Stop recording cell runs, as `%track off` does, once the cell calling it ends: that
    cell is still recorded whole.

    Returns:
        True if tracking was on, False if it was already off (stopping twice is harmless,
        like `mlflow.end_run()` without a run).

    Raises:
        NotInIPython: no IPython shell is running.
    """
    ip = _shell("stop")
    tracker = getattr(ip, _TRACKER_ATTR, None)
    if tracker is None or not tracker.auto or getattr(ip, _STOPPING_ATTR, None) is not None:
        return False
    if _current_info(ip) is None:
        tracker.stop()
        return True

    def stop_after_cell(result: Any) -> None:
        # after the tracker's own post_run_cell (registered earlier), so this cell is
        # recorded as a tracked cell, metrics found by name included
        ip.events.unregister("post_run_cell", stop_after_cell)
        setattr(ip, _STOPPING_ATTR, None)
        tracker.stop()

    setattr(ip, _STOPPING_ATTR, stop_after_cell)
    ip.events.register("post_run_cell", stop_after_cell)
    return True


def set_experiment(name: str) -> str:
    """Make `name` the experiment of the current cell run and of every later one.

    Like `mlflow.set_experiment`, it does not start tracking by itself: call `start()` (or
    `%track on`) too.

    Args:
        name: the experiment's name (non-empty text).

    Returns:
        The name, stripped of surrounding blanks.

    Raises:
        NotInIPython: no IPython shell is running.
        MlopsNbError: `name` is empty or not text.
    """
    name = _check_name(name, "experiment")
    tracker = _loaded_tracker(_shell("set_experiment"))
    tracker.experiment = name
    return name


def set_run_name(name: str) -> str:
    """Name the run the current cell makes (what `%%track --name` does), shown in tables.

    Args:
        name: the run's name (non-empty text).

    Returns:
        The name, stripped of surrounding blanks.

    Raises:
        NotInIPython: no IPython shell is running.
        MlopsNbError: `name` is not text, or no tracked cell is running (call `start()` or
            `%track on` first).
    """
    name = _check_name(name, "run name")
    _current_cell(_shell("set_run_name"), "set_run_name").name = name
    return name


def set_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """Tag the run(s) the current cell makes, as `mlflow.set_tags` does; tags set twice merge.

    Tags are text: other values are stored as their text (lists and dicts as JSON). They
    show as `tags.<name>` columns in `runs()`, in `get_run(...).tags`, and go to MLflow with
    `sync_mlflow`.

    Args:
        tags: tag names to values, e.g. `{"team": "churn", "dataset": "v3"}`.

    Returns:
        The tags as stored (values as text).

    Raises:
        NotInIPython: no IPython shell is running.
        MlopsNbError: not a mapping of non-empty text names, a name or value past MLflow's
            limits, or no tracked cell is running.
    """
    from .store.annotations import check_tags

    checked = check_tags(tags)
    ip = _shell("set_tags")
    _current_cell(ip, "set_tags")
    _pending(ip)["tags"].update(checked)
    return checked


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise MlopsNbError(f"the {what} must be non-empty text, not {name!r}")
    return name.strip()


def _shell(fn: str) -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # IPython is a dependency; a broken install still gets the message
        get_ipython = None
    ip = get_ipython() if get_ipython is not None else None
    if ip is None:
        raise NotInIPython(
            f"mlops_nb.{fn}() records notebook cells, so it needs a running IPython shell "
            "(a Jupyter or VS Code notebook, or `ipython`); in a plain Python script there "
            "are no cells to record. Run the code in a notebook, or read stored runs with "
            "mnb.runs() / mnb.get_run()")
    return ip


def _loaded_tracker(ip: Any) -> Tracker:
    """The shell's tracker, loading the extension (magics and hooks) the first time."""
    tracker = getattr(ip, _TRACKER_ATTR, None)
    if tracker is None:
        ip.extension_manager.load_extension("mlops_nb")
        tracker = getattr(ip, _TRACKER_ATTR)
    return tracker


def _current_info(ip: Any) -> Any:
    """IPython's ExecutionInfo of the cell now running (None outside a cell)."""
    result = getattr(getattr(ip, "displayhook", None), "exec_result", None)
    return getattr(result, "info", None)


def _record_current_cell(ip: Any, tracker: Tracker) -> None:
    """Tracking went on in the middle of a cell: begin recording it now, as if it had been on
    when the cell started (its pre_run_cell event already passed with tracking off)."""
    info = _current_info(ip)
    if info is None or (info.raw_cell or "").lstrip().startswith("%%track"):
        return
    tracker.pre_run_cell(info)


def _current_cell(ip: Any, fn: str) -> Any:
    tracker = getattr(ip, _TRACKER_ATTR, None)
    ctx = tracker.current_cell if tracker is not None else None
    if ctx is None:
        raise MlopsNbError(f"mlops_nb.{fn}() acts on the run the current cell makes, and no "
                           "tracked cell is running: call mnb.start() (or `%track on`) first")
    return ctx


def _pending(ip: Any) -> dict[str, Any]:
    """Tags and steps of the cell now running. The cell's runs get their ids only when it
    ends, so they are written by a post_run_cell callback that runs after the tracker's."""
    pending = getattr(ip, _PENDING_ATTR, None)
    if pending is None:
        tracker = getattr(ip, _TRACKER_ATTR)
        pending = {"tags": {}, "steps": {}, "before": tracker.next_seq}
        setattr(ip, _PENDING_ATTR, pending)

        def write(result: Any) -> None:
            ip.events.unregister("post_run_cell", write)
            setattr(ip, _PENDING_ATTR, None)
            _write_pending(tracker, pending)

        ip.events.register("post_run_cell", write)
    return pending


def _write_pending(tracker: Tracker, pending: dict[str, Any]) -> None:
    import logging

    from .capture.redaction import session_secrets
    from .store.annotations import annotate

    ids = [e.id for e in tracker.log.entries[pending["before"]:]]  # settles the redaction
    if not ids or tracker.home is None:
        return
    known = session_secrets(tracker.session)  # of the cells up to this one
    try:
        for run_id in ids:
            annotate(tracker.home, run_id, tags=pending["tags"], steps=pending["steps"],
                     known=known)
    except OSError as exc:  # never break the user's next cell over a tag
        logging.getLogger("mlops_nb").warning("mlops-nb could not store tags: %r", exc)


# -- logging values -------------------------------------------------------------------------------
def log_metric(name: str, value: Any, step: int | None = None) -> Any:
    """Record a metric on the cell now running.

    Logging one name again in a cell keeps every value (a training curve) and the last as
    the metric. A value that is not a finite number is kept with a warning on the run,
    never an error in the cell.

    Args:
        name: the metric's name.
        value: its value (a number; numpy and torch scalars are fine).
        step: the step this value belongs to (an epoch, an iteration), as in MLflow; without
            it, values are numbered 0, 1, 2... in the order logged.

    Returns:
        `value`, unchanged, so the call can wrap an expression:
        `f1 = mnb.log_metric("f1", f1_score(y, pred))`.

    Raises:
        MlopsNbError: `step` is not a whole number (checked before anything is recorded).
    """
    if step is not None and (isinstance(step, bool) or not hasattr(step, "__index__")):
        raise MlopsNbError(f"step must be a whole number, not {step!r}")
    tracker = active_tracker()
    if tracker is None:
        _not_loaded("log_metric")
        return value
    out = tracker.log_metric(name, value)
    if step is not None and tracker.in_cell:
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None and getattr(ip, _TRACKER_ATTR, None) is tracker:
            _pending(ip)["steps"].setdefault(str(name), []).append(int(step.__index__()))
    return out


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> Mapping[str, Any]:
    """Record several metrics on the cell now running (see `log_metric`).

    Args:
        metrics: metric names to values.
        step: the step all these values belong to.

    Returns:
        `metrics`, unchanged.

    Raises:
        MlopsNbError: `step` is not a whole number.
    """
    for name, value in metrics.items():
        log_metric(name, value, step)
    return metrics


def log_param(name: str, value: Any) -> Any:
    """Record a parameter on the cell now running.

    Literal assignments (`max_depth = 8`) are parameters already; this is for values built
    at run time. A value that is not a plain literal is kept as text, with a warning.

    Args:
        name: the parameter's name.
        value: its value.

    Returns:
        `value`, unchanged.

    Raises:
        Nothing: a bad name or value is kept with a warning on the run, never an error in
        the cell; outside a tracked cell it warns that nothing was recorded.
    """
    tracker = active_tracker()
    if tracker is None:
        _not_loaded("log_param")
        return value
    return tracker.log_param(name, value)


def log_params(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Record several parameters on the cell now running (see `log_param`).

    Args:
        params: parameter names to values.

    Returns:
        `params`, unchanged.

    Raises:
        Nothing (see `log_param`).
    """
    for name, value in params.items():
        log_param(name, value)
    return params


def _not_loaded(fn: str) -> None:
    import warnings

    warnings.warn(
        f"mlops_nb.{fn} was not recorded: start tracking first (`mnb.start()` or "
        "`%load_ext mlops_nb` + `%track on`)",
        stacklevel=3,
    )


# -- reading runs back ----------------------------------------------------------------------------
def runs(experiment: str | None = None, *, home: str | os.PathLike[str] | None = None
         ) -> pd.DataFrame:
    """Every run (cell run with metrics) as a DataFrame, one row per run, oldest first.

    Columns: id, experiment, name, session, notebook, cell_id, execution_count, seq,
    started_at, duration_s, status, data, `params.<name>`, `metrics.<name>` and
    `tags.<name>`; plus MLflow's `run_id`, `start_time`, `end_time` and
    `tags.mlflow.runName`, so code written for `mlflow.search_runs` frames runs unchanged.
    Files that could not be read are listed in `df.attrs["problems"]`.

    Args:
        experiment: only this experiment's runs (default: all).
        home: the store folder (default: the notebook's store, else found like `.git`).

    Returns:
        A pandas DataFrame (empty, with the columns, when there are no runs).

    Raises:
        StoreNotFound: no store was found (nothing was tracked here yet).
    """
    return with_mlflow_names(runs_with_tags(experiment, home=home))


def runs_with_tags(experiment: str | None = None, *,
                   home: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """`runs()` without MLflow's duplicate column names: what the CLI prints."""
    from .table import runs_frame

    reader = store_reader(home)
    return with_tags(runs_frame(reader.run_columns(experiment)), reader.home)


def with_tags(df: pd.DataFrame, home: os.PathLike[str] | str) -> pd.DataFrame:
    """`df` with a `tags.<name>` column per tag set on any of its runs (`mnb.set_tags`)."""
    from .store.annotations import load_annotations

    ann = load_annotations(home) if len(df) else {}
    tag_names = sorted({k for doc in ann.values() for k in (doc.get("tags") or {})})
    if not tag_names:
        return df
    ids = df["id"].tolist()
    tags = {f"tags.{t}": [(ann.get(i, {}).get("tags") or {}).get(t) for i in ids]
            for t in tag_names}
    return _with_columns(df, tags)


def with_mlflow_names(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with MLflow's column names beside ours, holding the same values."""
    import pandas as pd

    extra: dict[str, Any] = {
        "run_id": df["id"] if "id" in df.columns else pd.Series([], dtype=object),
        "start_time": df["started_at"],
        "end_time": df["started_at"] + pd.to_timedelta(
            pd.to_numeric(df.get("duration_s", 0), errors="coerce").fillna(0), unit="s"),
        "tags.mlflow.runName": df["name"] if "name" in df.columns else None,
    }
    return _with_columns(df, {k: v for k, v in extra.items() if v is not None})


def _with_columns(df: pd.DataFrame, columns: dict[str, Any]) -> pd.DataFrame:
    """`df` and the new `columns` (never replacing one it has), its attrs kept."""
    import pandas as pd

    new = pd.DataFrame({k: v for k, v in columns.items() if k not in df.columns},
                       index=df.index)
    out = pd.concat([df, new], axis=1)
    out.attrs.update(df.attrs)
    return out


def get_run(run_id: str, *, home: str | os.PathLike[str] | None = None) -> Run:
    """One run's full record by id or unique prefix, as `mlops-nb show` prints it.

    Args:
        run_id: the run's id, or a unique prefix of it (like git).
        home: the store folder (default: the notebook's store, else found like `.git`).

    Returns:
        A `Run`: attributes such as `.metrics`, `.params`, `.tags`, `.metric_history`,
        `.lineage`; `run["metrics"]` works too.

    Raises:
        RunNotFound: no run has that id or prefix.
        AmbiguousRunId: the prefix matches several runs.
        StoreNotFound: no store was found.
    """
    from .lineage import resolve_value_refs
    from .run import Run
    from .store.annotations import load_annotation

    reader = store_reader(home)
    cr = reader.resolve(run_id)
    view = run_view(cr, reader.lineage(cr)[0])
    for key in ("params", "cell_params"):
        view[key] = resolve_value_refs(view[key], reader.blobs)
    ann = load_annotation(reader.home, cr.id)
    return Run.from_view(view, tags=ann.get("tags"), steps=ann.get("steps"))


def flush(timeout: float | None = 30.0) -> bool:
    """Write every recorded cell run now.

    Args:
        timeout: seconds to wait at most (None: as long as it takes).

    Returns:
        True only if all of them are on disk. False if the store cannot be written (disk
        full, read-only: `%track status` says why; the runs wait in memory and are written
        once it can be) or `timeout` ran out. True when nothing is tracked.

    Raises:
        Nothing: a store that cannot be written is reported by the return value.
    """
    tracker = active_tracker()
    return True if tracker is None else tracker.flush(timeout)
