"""The data model: a cell run, a session's environment, and their JSON form.

Records are what the store keeps and what every reader (table, export, CLI, server) consumes, so
they carry a schema version and are read through `cell_run_from_dict`, which migrates older
versions instead of dropping them. Payloads that can be large (code, figures, RNG states) are
not here: the record holds their content hashes and the blob store holds the bytes.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from .errors import MlopsNbError, SchemaTooNew

SCHEMA_VERSION = 1

STATUS_OK = "ok"
STATUS_ERROR = "error"

MODE_AUTO = "auto"
MODE_EXPLICIT = "explicit"
MODE_BACKFILLED = "backfilled"
MODE_CALLBACK = "callback"  # an `interact` widget's call after its cell ran


@dataclass
class CellRun:
    """One execution of one cell, as the recorder saw it.

    `params`, `data` and `metrics` are the cell's own. `deps` are the earlier cell runs it
    depends on directly; its lineage is their transitive closure, derived when read
    (`lineage.lineage_ids`), so a long session's store grows linearly. Records written before
    that carry the closure in `lineage`, which readers still honour. For runs (cell runs with
    metrics) the recorder fills the *effective* parameters and data of the lineage, as they
    were when the run happened: they cannot be recomputed later without replaying the log.
    A large parameter value is stored once as a blob: `{"$blob": hash, "size", "preview"}`.
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
    # What the cell really read and wrote while it ran ({given, path, rel, via, hash, size} /
    # absolute paths) and the project modules first seen after it (see capture/io_watch.py).
    reads: list[dict[str, Any]] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    # The working directory after the cell, when it is not the one tracking started in (an
    # `os.chdir`, `%cd`): what its relative paths were relative to.
    cwd: str | None = None
    modules: list[dict[str, Any]] = field(default_factory=list)
    # Metric name -> the namespace name of the fitted model that produced it (autolog), so
    # `train.py --save-model` saves the model behind the headline metric.
    metric_models: dict[str, str] = field(default_factory=dict)
    # The class of the model its metrics measured when an earlier cell of its lineage fitted
    # it (`r2 = r2_score(y, final.predict(X))`): filled with its lineage, read by the index.
    model: str | None = None
    schema: int = SCHEMA_VERSION

    @property
    def is_run(self) -> bool:
        return bool(self.metrics)

    @property
    def backfilled(self) -> bool:
        return self.mode == MODE_BACKFILLED

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _CELL_RUN_FIELDS}

    @classmethod
    def from_analysis(cls, analysis: Any, **fields: Any) -> CellRun:
        """A cell run holding what the static analysis of its code found (a
        `capture.analysis.CellAnalysis`); `fields` give the rest and win. The one place that
        maps analysis to record, for live and back-filled runs alike."""
        base: dict[str, Any] = {
            "defs": analysis.defs, "uses": analysis.uses, "imports": analysis.imports,
            "magics": analysis.magics, "files_read": analysis.files_read,
            "files_written": analysis.files_written, "params": dict(analysis.params),
        }
        base.update(fields)
        return cls(**base)


_CELL_RUN_FIELDS = tuple(f.name for f in fields(CellRun))


def fitted_models(run: Any) -> list[str]:
    """Names of the models a run fitted, in order; not one it only cross-validated, which
    autolog records beside them (`cross_validated`: its class and hyper-parameters)."""
    return [n for n, est in (run.estimators or {}).items()
            if not (isinstance(est, dict) and est.get("cross_validated"))]


def measured_model(run: Any) -> str | None:
    """The name of the model behind most of the run's metrics (ties: the first metric's)."""
    behind = [v for k, v in (run.metric_models or {}).items()
              if k in (run.metrics or {}) and isinstance(v, str)]
    return max(dict.fromkeys(behind), key=behind.count) if behind else None


def model_candidates(run: Any, lineage: Iterable[Any]) -> list[str]:
    """The models behind a run's metrics, for `--save-model` and the registry: those it
    fitted; else those the latest run of its `lineage` (newest first) fitted. A run that
    cross-validated a model is about that model only: fitted by the cell after its CV (the
    usual refit on all data) or earlier, under its name, or none (`cross_val_score(pipe,
    ...)` of a pipeline never fitted); never another model the cell happened to fit."""
    judged = {n for n, est in (run.estimators or {}).items()
              if isinstance(est, dict) and est.get("cross_validated")}
    names = [n for n in fitted_models(run) if not judged or n in judged]
    if names:
        return names
    for other in lineage:
        names = [n for n in fitted_models(other) if not judged or n in judged]
        if names:
            return names
    return []


def model_owner(cell_run: Any, lineage: Iterable[Any], names: set[str]) -> Any:
    """The run a model saved in `cell_run` (`mnb.log_model(rf, "rf")`) is a version of.

    The cell run itself when it is a run, or when it bound or changed the model's variables
    (`names`). Else, as when a notebook fits and scores in one cell and logs the model in the
    next, the newest run of its `lineage` (newest first) that bound or changed them: its
    metrics are the model's, and `validate`, `retrain` and `--no-worse-than` need them. Not
    when a later cell changed the model after that run (`rf.fit(X_all, y)` with no score):
    then no run measured it, and it stays the logging cell's."""
    def touches(cr: Any) -> bool:
        return not names.isdisjoint(
            (*(cr.defs or ()), *(cr.mutations or ()), *(cr.estimators or {})))

    if cell_run.is_run or not names or touches(cell_run):
        return cell_run
    for other in lineage:
        if touches(other):
            return other if other.is_run else cell_run
    return cell_run


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
    """A CellRun from its stored form, validated field by field against the schema.

    Raises RecordInvalid (naming the field) when the document is not shaped like a cell run, so
    a reader skips that one record and reports it instead of crashing later on a string where a
    time belongs. Fields this version does not know are ignored (a newer minor writer).
    """
    if not isinstance(doc, dict):
        raise RecordInvalid(f"a cell run is a mapping, not {type(doc).__name__}")
    doc = _migrate(doc)
    import msgspec

    try:
        checked = msgspec.convert(doc, _schema(), strict=True)
    except msgspec.ValidationError as exc:
        raise RecordInvalid(str(exc).replace("`$.", "`")) from None
    return cell_run_from_checked(checked)


def cell_run_from_checked(checked: Any) -> CellRun:
    """A CellRun from a validated schema struct (`cell_run_schema()`); its fields are the
    dataclass's, in order, so they are copied as they are (a reader builds thousands)."""
    import msgspec

    run = object.__new__(CellRun)
    names = checked.__struct_fields__
    if len(names) != len(_CELL_RUN_FIELDS):  # a light schema: what it leaves out is None
        run.__dict__.update(dict.fromkeys(LIGHT_OMITS))
    run.__dict__.update(zip(names, msgspec.structs.astuple(checked), strict=True))
    return run


# What a light read leaves out (None): the values in effect along a run's lineage, a third
# of a run's record, which only the run itself shows (an export replays the others' def-use
# facts only).
LIGHT_OMITS = ("effective_params", "effective_data")
_LIGHT_SCHEMA: Any = None


def cell_run_schema(*, light: bool = False) -> Any:
    """The msgspec Struct a stored cell run is validated against (decode straight into it);
    `light`: without LIGHT_OMITS, which the decoder then skips without building them."""
    global _LIGHT_SCHEMA
    if not light:
        return _schema()
    if _LIGHT_SCHEMA is None:
        import msgspec

        full = _schema()
        spec = []
        for name, kind, default in zip(full.__struct_fields__, _field_types(),
                                       _field_defaults(), strict=True):
            if name not in LIGHT_OMITS:
                spec.append((name, kind) if default is MISSING else (name, kind, default))
        _LIGHT_SCHEMA = msgspec.defstruct("CellRunLight", spec)
    return _LIGHT_SCHEMA


# What the lineage replay of an export never reads from the session's other cell runs (the
# values a run measured and found): a lineage read (`lineage_schema`) leaves them undecoded,
# as msgspec.Raw slices of the file, and `cell_run_from_lineage` decodes them for the few
# cell runs of the slice. A session of 20,000 re-runs of a scoring cell is mostly these.
DEFERRED = ("error", "params", "metrics", "metric_steps", "data", "estimators", "warnings",
            "metric_models")
_LINEAGE_SCHEMA: Any = None
_DEFERRED_TYPES: dict[str, Any] = {}
_DEFERRED_EMPTY: list[Any] = []  # the raw of each DEFERRED field when empty, in order
_DEFERRED_EMPTY_BYTES: list[bytes] = []


def lineage_schema() -> Any:
    """The msgspec Struct of a lineage read: the light schema with the DEFERRED fields kept
    raw. Its instances stand in for CellRuns in a session log (same attribute names); only
    the DEFERRED fields must not be read before `cell_run_from_lineage`."""
    global _LINEAGE_SCHEMA
    if _LINEAGE_SCHEMA is None:
        import msgspec

        full = _schema()
        spec: list[Any] = []
        for name, kind, default in zip(full.__struct_fields__, _field_types(),
                                       _field_defaults(), strict=True):
            if name in LIGHT_OMITS:
                continue
            if name in DEFERRED:
                _DEFERRED_TYPES[name] = kind
                made = getattr(default, "default_factory", None)
                empty = b"null" if default is None else b"[]" if made is list else b"{}"
                spec.append((name, msgspec.Raw, msgspec.Raw(empty)))
                _DEFERRED_EMPTY.append(msgspec.Raw(empty))
                _DEFERRED_EMPTY_BYTES.append(empty)
            else:
                spec.append((name, kind) if default is MISSING else (name, kind, default))
        _LINEAGE_SCHEMA = msgspec.defstruct("CellRunLineage", spec)
    return _LINEAGE_SCHEMA


def cell_run_from_lineage(rec: Any) -> CellRun:
    """The CellRun of a lineage-read record (`lineage_schema`), its DEFERRED fields decoded
    and validated now (LIGHT_OMITS stay None); a record already complete is returned as is.
    Raises RecordInvalid when a deferred field does not match the schema."""
    if isinstance(rec, CellRun):
        return rec
    import msgspec

    run = object.__new__(CellRun)
    values = run.__dict__
    values.update(dict.fromkeys(LIGHT_OMITS))
    values.update(zip(rec.__struct_fields__, msgspec.structs.astuple(rec), strict=True))
    if [values[name] for name in DEFERRED] == _DEFERRED_EMPTY:  # the common case, compared in C
        values.update({name: None if e == b"null" else [] if e == b"[]" else {}
                       for name, e in zip(DEFERRED, _DEFERRED_EMPTY_BYTES, strict=True)})
        return run
    for name in DEFERRED:
        raw = values[name]
        if len(raw) <= 4:  # most of them are empty: no need for the decoder
            short = bytes(raw)
            if short == b"{}":
                values[name] = {}
                continue
            if short == b"[]":
                values[name] = []
                continue
            if short == b"null" and name == "error":  # the one nullable deferred field
                values[name] = None
                continue
        try:
            values[name] = msgspec.json.decode(raw, type=_DEFERRED_TYPES[name])
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise RecordInvalid(f"cell run {rec.id[:12]}: {name}: {exc}") from None
    return run


def check_lineage(rec: Any) -> None:
    """Raise RecordInvalid when a DEFERRED field of a lineage-read record does not match the
    schema, as `cell_run_from_lineage` would, without building the CellRun: for a record
    whose measured values are never read (a re-run folded into a loop). Empty fields, the
    common case, are compared in C."""
    global _DEFERRED_CHECK
    if isinstance(rec, CellRun):
        return
    if _DEFERRED_CHECK is None:
        import operator

        lineage_schema()  # fills _DEFERRED_EMPTY
        _DEFERRED_CHECK = (operator.attrgetter(*DEFERRED), tuple(_DEFERRED_EMPTY))
    deferred, empty = _DEFERRED_CHECK
    if deferred(rec) != empty:
        cell_run_from_lineage(rec)


_DEFERRED_CHECK: Any = None


def _field_types() -> list[Any]:
    import typing

    hints, overrides = typing.get_type_hints(CellRun), _overrides()
    return [overrides.get(f.name, hints[f.name]) for f in fields(CellRun)]


def _field_defaults() -> list[Any]:
    import msgspec

    return [f.default if f.default is not MISSING else
            msgspec.field(default_factory=f.default_factory)
            if f.default_factory is not MISSING else MISSING for f in fields(CellRun)]


class RecordInvalid(MlopsNbError, TypeError):
    """A stored cell run that does not match the schema; readers skip it and report it."""


# Time stamps between 1970 and 2100: anything else is a damaged or hand-edited record, and would
# break every reader that turns it into a date.
_LAST_TIME = 4_102_444_800.0
_BLOB_REF = r"^[0-9a-f]{8,64}$"


def _overrides() -> dict[str, Any]:
    from typing import Annotated

    from msgspec import Meta

    blob = Annotated[str, Meta(pattern=_BLOB_REF)]
    return {
        "id": Annotated[str, Meta(min_length=1)],
        "seq": Annotated[int, Meta(ge=0)],
        "started_at": Annotated[float, Meta(ge=0.0, le=_LAST_TIME)],
        "duration_s": Annotated[float, Meta(ge=0.0)],
        "code": blob | None,
        "python": blob | None,
        "figures": list[blob],
        "rng": dict[str, blob] | None,
    }


_SCHEMA: Any = None


def _schema() -> Any:
    """A msgspec Struct mirroring CellRun (built from its fields, so a new field is validated
    without touching this), with the constraints a dataclass annotation cannot carry."""
    global _SCHEMA
    if _SCHEMA is None:
        import typing

        import msgspec

        hints = typing.get_type_hints(CellRun)
        overrides = _overrides()
        spec: list[Any] = []
        for f in fields(CellRun):
            kind = overrides.get(f.name, hints[f.name])
            if f.default is not MISSING:
                spec.append((f.name, kind, f.default))
            elif f.default_factory is not MISSING:
                spec.append((f.name, kind, msgspec.field(default_factory=f.default_factory)))
            else:
                spec.append((f.name, kind))
        _SCHEMA = msgspec.defstruct("CellRunSchema", spec)
    return _SCHEMA


BLOB_REF = "$blob"


def is_value_ref(value: Any) -> bool:
    """A parameter value stored once as a blob: `{"$blob": hash, "size": n, "preview": s}`."""
    return (isinstance(value, dict) and len(value) == 3 and isinstance(value.get(BLOB_REF), str)
            and "preview" in value)


def shown_value(value: Any, *, with_hash: bool = False) -> Any:
    """What a table shows for a parameter value: a large one's short preview (and the start
    of its hash, where two values with one preview must still differ)."""
    if not is_value_ref(value):
        return value
    return f"{value['preview']} [{value[BLOB_REF][:8]}]" if with_hash else value["preview"]


def iso(ts: float | None) -> str | None:
    """Local-time ISO 8601 with offset: what a person reads in a table and a machine parses."""
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def run_view(cr: CellRun, lineage: list[str] | None = None) -> dict[str, Any]:
    """The public JSON of a run (`mlops-nb show --format json`, `mnb.get_run(...)`).

    `params` and `data` are the effective ones; the cell's own are kept under `cell_*` so a
    reader can tell what this cell set from what it inherited. `lineage` is the derived
    closure (`lineage.lineage_ids`); without it, the stored list or the direct deps.
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
        "lineage": lineage if lineage is not None else (
            cr.lineage if cr.lineage is not None else cr.deps),
        "deps": cr.deps,
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
