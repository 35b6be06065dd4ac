"""The data model: a cell run, a session's environment, and their JSON form.

Records are what the store keeps and what every reader (table, export, CLI, server) consumes, so
they carry a schema version and are read through `cell_run_from_dict`, which migrates older
versions instead of dropping them. Payloads that can be large (code, figures, RNG states) are
not here: the record holds their content hashes and the blob store holds the bytes.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import SchemaTooNew

SCHEMA_VERSION = 1

STATUS_OK = "ok"
STATUS_ERROR = "error"

MODE_AUTO = "auto"
MODE_EXPLICIT = "explicit"
MODE_BACKFILLED = "backfilled"


@dataclass
class CellRun:
    """One execution of one cell, as the recorder saw it.

    `params`, `data` and `metrics` are the cell's own. A cell run that produced metrics is a
    *run*; for runs the recorder also fills `lineage` (the earlier cell runs it depends on,
    transitively, in execution order) and the *effective* parameters and data of that lineage,
    as they were when the run happened: they cannot be recomputed later without replaying the log.
    """

    id: str
    session: str
    experiment: str
    seq: int
    started_at: float
    duration_s: float = 0.0
    status: str = STATUS_OK
    error: dict[str, str] | None = None
    mode: str = MODE_AUTO
    name: str | None = None
    notebook: str | None = None
    cell_id: str | None = None
    execution_count: int | None = None
    code: str | None = None  # blob hash of the raw cell text
    python: str | None = None  # blob hash of the Python IPython turned it into
    defs: list[str] = field(default_factory=list)
    uses: list[str] = field(default_factory=list)
    mutations: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    magics: list[str] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    metric_steps: dict[str, list[Any]] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    estimators: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    rng: dict[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)
    lineage: list[str] | None = None
    effective_params: dict[str, Any] | None = None
    effective_data: dict[str, dict[str, Any]] | None = None
    # One iteration of a loop that logged metrics per iteration: the loop's cell run is `parent`.
    parent: str | None = None
    iteration: int | None = None
    # Names the cell bound from a widget's `.value`: the value frozen at run time (export).
    widget_values: dict[str, Any] = field(default_factory=dict)
    # Metric name -> the namespace name of the fitted model that produced it (autolog), so
    # `train.py --save-model` saves the model behind the headline metric.
    metric_models: dict[str, str] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    @property
    def is_run(self) -> bool:
        return bool(self.metrics)

    @property
    def backfilled(self) -> bool:
        return self.mode == MODE_BACKFILLED

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _CELL_RUN_FIELDS}


_CELL_RUN_FIELDS = tuple(f.name for f in fields(CellRun))


def _migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored document up to SCHEMA_VERSION.

    Version 1 is the first; each later version adds one step here so an old store is read as
    it is, never rewritten or dropped.
    """
    version = doc.get("schema", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"record schema {version!r} is newer than this mlops-nb reads ({SCHEMA_VERSION}); "
            "upgrade mlops-nb to read it"
        )
    return doc


def cell_run_from_dict(doc: dict[str, Any]) -> CellRun:
    """A CellRun from its stored form; TypeError when the document is not shaped like one."""
    if not isinstance(doc, dict):
        raise TypeError(f"a cell run is a mapping, not {type(doc).__name__}")
    doc = _migrate(doc)
    known = {k: v for k, v in doc.items() if k in _CELL_RUN_FIELDS}
    for name, kinds in _CONTAINER_FIELDS.items():
        if name in known and not isinstance(known[name], kinds):
            raise TypeError(f"field {name!r} is a {type(known[name]).__name__}")
    if not isinstance(known.get("id"), str):
        raise TypeError("field 'id' is not a string")
    return CellRun(**known)


def _container_kinds(annotation: str) -> tuple[type, ...]:
    kind = dict if annotation.startswith("dict") else list
    return (kind, type(None)) if annotation.endswith("| None") else (kind,)


# Readers iterate these; a hand-edited or foreign document must fail here, not deep in a reader.
_CONTAINER_FIELDS = {
    f.name: _container_kinds(str(f.type))
    for f in fields(CellRun)
    if str(f.type).startswith(("dict", "list"))
}


def iso(ts: float | None) -> str | None:
    """Local-time ISO 8601 with offset: what a person reads in a table and a machine parses."""
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def run_view(cr: CellRun) -> dict[str, Any]:
    """The public JSON of a run (`mlops-nb show --format json`, `mnb.run(...)`).

    `params` and `data` are the effective ones; the cell's own are kept under `cell_*` so a
    reader can tell what this cell set from what it inherited.
    """
    return {
        "id": cr.id,
        "experiment": cr.experiment,
        "session": cr.session,
        "notebook": cr.notebook,
        "name": cr.name,
        "cell_id": cr.cell_id,
        "execution_count": cr.execution_count,
        "seq": cr.seq,
        "started_at": iso(cr.started_at),
        "duration_s": cr.duration_s,
        "status": cr.status,
        "error": cr.error,
        "mode": cr.mode,
        "params": cr.effective_params if cr.effective_params is not None else cr.params,
        "metrics": cr.metrics,
        "metric_steps": cr.metric_steps,
        "data": cr.effective_data if cr.effective_data is not None else cr.data,
        "estimators": cr.estimators,
        "lineage": cr.lineage if cr.lineage is not None else cr.deps,
        "cell_params": cr.params,
        "cell_data": cr.data,
        "defs": cr.defs,
        "uses": cr.uses,
        "mutations": cr.mutations,
        "imports": cr.imports,
        "magics": cr.magics,
        "files_read": cr.files_read,
        "files_written": cr.files_written,
        "figures": cr.figures,
        "rng": cr.rng,
        "code": cr.code,
        "python": cr.python,
        "warnings": cr.warnings,
        "parent": cr.parent,
        "iteration": cr.iteration,
        "widget_values": cr.widget_values,
        "metric_models": cr.metric_models,
        "schema": cr.schema,
    }
