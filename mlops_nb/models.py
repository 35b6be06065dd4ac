"""Model versions: fitted models stored as blobs, linked to their run, and the promoted mark.

Versions live under `.mlops_nb/models/` (never in session files, which have one writer each):
`versions/<version>.json` describes one saved model (name, run, format, blob, sha256, class)
and `promoted/<name>.json` says which version of a model name is promoted. Every file is
replaced atomically, so a killed process leaves the previous mark.

Formats: scikit-learn estimators are stored in skops' secure format (loading it never runs
arbitrary code; types from outside scikit-learn, numpy and scipy — a user's own class, a
third-party estimator — are refused unless the caller passes `trusted=True`).
Anything else is pickled (joblib when installed) with its sha256 recorded, and is loaded only
when the caller passes `trusted=True` and the bytes still match that hash.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MlopsNbError, StoreCorrupt
from .records import model_candidates, model_owner
from .store.blobs import BlobStore
from .store.layout import BLOBS_DIR
from .store.storage import atomic_write_bytes

MODELS_DIR = "models"
VERSIONS_DIR = "versions"
PROMOTED_DIR = "promoted"
VERSION_SCHEMA = 1  # of the version records; a newer one is still listed, never dropped
SKOPS_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_VERSION = re.compile(r"^[0-9a-f]{16,64}$")


class ModelNotFound(MlopsNbError):
    """No saved model matches the run and name given."""


class UntrustedModel(MlopsNbError):
    """Loading the model could run arbitrary code; pass trusted=True if you trust its source."""


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise MlopsNbError(f"a model name is letters, digits, '_', '.', '-' (up to 100), "
                           f"not {name!r}")
    return name


def is_sklearn(model: Any) -> bool:
    mod = type(model).__module__
    return mod.split(".")[0] == "sklearn" or (
        hasattr(model, "get_params") and hasattr(model, "fit")
        and mod.split(".")[0] in ("sklearn", "imblearn", "lightgbm", "xgboost"))


def serialize(model: Any) -> tuple[str, bytes]:
    """(format, bytes): skops for scikit-learn models, else joblib/pickle."""
    if is_sklearn(model):
        import skops.io as sio

        try:
            return "skops", sio.dumps(model)
        except Exception:  # an estimator skops cannot represent: fall back, hash-checked
            pass
    try:
        import joblib

        buf = io.BytesIO()
        joblib.dump(model, buf)
        return "joblib", buf.getvalue()
    except ImportError:
        import pickle

        return "pickle", pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def deserialize(fmt: str, payload: bytes, sha256: str | None, *, trusted: bool) -> Any:
    if fmt == "skops":
        import skops.io as sio

        listed = sio.get_untrusted_types(data=payload)
        # skops lists even scikit-learn's own Cython types (a tree's Tree), which it rebuilds
        # itself without pickle; we trust those libraries' types, and nothing else unasked
        foreign = [t for t in listed if not t.startswith(SKOPS_TRUSTED_PREFIXES)]
        if foreign and not trusted:
            raise UntrustedModel(
                "the model uses types outside scikit-learn, numpy and scipy: "
                + ", ".join(foreign[:10]) + "; pass trusted=True if you trust its source")
        return sio.loads(payload, trusted=listed)
    if fmt in ("joblib", "pickle"):
        if not trusted:
            raise UntrustedModel(
                f"this model is stored with {fmt}, and loading it can run arbitrary code; "
                "pass trusted=True if you trust the store it came from")
        if sha256 is None or hashlib.sha256(payload).hexdigest() != sha256:
            raise UntrustedModel("the stored model's bytes do not match their recorded sha256; "
                                 "refusing to load them")
        if fmt == "joblib":
            import joblib

            return joblib.load(io.BytesIO(payload))
        import pickle

        return pickle.loads(payload)
    raise MlopsNbError(f"unknown model format {fmt!r}")


def _root(home: Path) -> Path:
    return Path(home) / MODELS_DIR


def save_version(home: str | os.PathLike[str], run_id: str, name: str, model: Any, *,
                 experiment: str | None = None, extra: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Store `model` as a version of `name` linked to `run_id`; returns the version record."""
    _check_name(name)
    fmt, payload = serialize(model)
    return save_payload(home, run_id, name, fmt, payload, cls=_class_name(model),
                        experiment=experiment, extra=extra)


def _class_name(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def save_payload(home: str | os.PathLike[str], run_id: str, name: str, fmt: str,
                 payload: bytes, *, cls: str | None, experiment: str | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    _check_name(name)
    home = Path(home)
    sha = hashlib.sha256(payload).hexdigest()
    digest = BlobStore(home / BLOBS_DIR).put(payload)
    version_id = hashlib.sha256(f"{run_id}\0{name}\0{sha}".encode()).hexdigest()[:24]
    record = {
        "schema": VERSION_SCHEMA,
        "version": version_id, "name": name, "run_id": run_id, "experiment": experiment,
        "format": fmt, "blob": digest, "sha256": sha, "size": len(payload), "class": cls,
        "created_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        **(extra or {}),
    }
    path = _root(home) / VERSIONS_DIR / f"{version_id}.json"
    atomic_write_bytes(path, json.dumps(record, indent=1).encode("utf-8"))
    return record


@dataclass
class Registry:
    """What `.mlops_nb/models/` holds, read once: the versions, the promoted marks, and every
    file that could not be used, each named (a damaged file is never silently dropped)."""

    versions: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    marks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> promoted version
    damaged_marks: dict[str, str] = field(default_factory=dict)  # name -> what is wrong
    problems: list[str] = field(default_factory=list)  # every damaged file, named

    def promoted_version(self, name: str | None = None) -> dict[str, Any] | None:
        """The promoted version of `name` (of the only promoted model when None)."""
        if name is not None:
            if name in self.damaged_marks:
                raise StoreCorrupt(self.damaged_marks[name])
            return self.marks.get(name)
        if self.damaged_marks:
            raise StoreCorrupt("; ".join(self.damaged_marks.values()))
        if len(self.marks) > 1:
            names = sorted(self.marks)
            raise MlopsNbError(
                f"several models are promoted ({', '.join(names)}); name the one you mean: "
                f"`promoted:{names[0]}` as the run (or `--model {names[0]}`), "
                f"`load_model('promoted', {names[0]!r})`")
        return next(iter(self.marks.values()), None)


def _rel(home: Path, path: Path) -> str:
    try:
        return str(path.relative_to(home))
    except ValueError:
        return str(path)


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(the document, None), or (None, why it cannot be used)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    if not data.strip():
        return None, "empty"
    try:
        return json.loads(data), None
    except ValueError:
        return None, "not valid JSON (half-written?)"


def read_registry(home: str | os.PathLike[str]) -> Registry:
    """Every version record and promoted mark under `home/models/`, damaged ones named."""
    home = Path(home)
    reg = Registry()
    folder = _root(home) / VERSIONS_DIR
    damaged_versions: dict[str, str] = {}
    if folder.is_dir():
        for entry in os.scandir(folder):
            stem = entry.name[:-5]
            if not entry.name.endswith(".json") or not _VERSION.match(stem):
                continue
            path = Path(entry.path)
            doc, why = _read_json(path)
            if why is None and not (isinstance(doc, dict) and isinstance(doc.get("name"), str)):
                why = "not a model version record (no model name)"
            if why is not None:
                damaged_versions[stem] = f"model version {_rel(home, path)} is damaged: {why}"
                continue
            # a record of a newer schema, or missing fields, is still listed, never dropped
            doc.setdefault("version", stem)
            reg.versions.append(doc)
    reg.versions.sort(key=lambda d: (str(d.get("created_at")), str(d.get("version"))))
    reg.problems.extend(damaged_versions.values())
    by_id = {str(v.get("version")): v for v in reg.versions}
    folder = _root(home) / PROMOTED_DIR
    if not folder.is_dir():
        return reg
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        name, path = entry.name[:-5], Path(entry.path)
        mark, why = _read_json(path)
        fix = (f"; `mlops-nb models promote RUN {name}` marks a version again, "
               f"`mlops-nb models demote {name}` removes the mark")
        if why is None and not (isinstance(mark, dict) and isinstance(mark.get("version"), str)):
            why = "not a promoted mark (no version)"
        if why is not None:
            reg.damaged_marks[name] = f"the promoted mark {_rel(home, path)} is damaged: {why}{fix}"
        else:
            version = by_id.get(mark["version"])
            if version is not None:
                reg.marks[str(version["name"])] = {**version,
                                                   "promoted_at": mark.get("promoted_at")}
                continue
            vpath = _rel(home, _root(home) / VERSIONS_DIR / f"{mark['version']}.json")
            detail = (damaged_versions.get(mark["version"]) if mark["version"] in
                      damaged_versions else f"{vpath} does not exist")
            reg.damaged_marks[name] = (f"the promoted mark {_rel(home, path)} points at version "
                                       f"{mark['version'][:12]}, which cannot be read: "
                                       f"{detail}{fix}")
        reg.problems.append(reg.damaged_marks[name])
    return reg


def list_versions(home: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every readable saved version, oldest first (`read_registry` names damaged files)."""
    return read_registry(home).versions


def promoted(home: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """{model name: promoted version record}; damaged marks are in `read_registry`."""
    return read_registry(home).marks


def promoted_version(home: str | os.PathLike[str], name: str | None = None
                     ) -> dict[str, Any] | None:
    """The promoted version of model `name` (or of the only promoted model).

    Raises:
        StoreCorrupt: that mark (or, with no name, any mark) is damaged; the file is named.
        MlopsNbError: no name given and several models are promoted.
    """
    return read_registry(home).promoted_version(name)


PROMOTED = "promoted"


def promoted_ref(ref: Any) -> tuple[bool, str | None]:
    """("promoted", None) for `promoted`, (True, "lr") for `promoted:lr`, (False, None) for
    a run id: the run reference every command takes for the promoted model."""
    if not isinstance(ref, str):
        return False, None
    if ref == PROMOTED:
        return True, None
    head, sep, name = ref.partition(":")
    if head == PROMOTED and sep:
        return True, _check_name(name)
    return False, None


def promoted_run_version(home: str | os.PathLike[str], ref: str, name: str | None = None
                         ) -> dict[str, Any]:
    """The version a `promoted` / `promoted:NAME` reference means (`name` from --model);
    raises when none, or when the reference and `name` disagree."""
    _, in_ref = promoted_ref(ref)
    if in_ref is not None and name is not None and in_ref != name:
        raise MlopsNbError(f"{ref!r} and --model {name!r} name different models; give one")
    name = in_ref or name
    reg = read_registry(home)
    version = reg.promoted_version(name)
    if version is None:
        if name is not None and reg.marks:
            raise ModelNotFound(f"no model named {name!r} is promoted (promoted: "
                                f"{', '.join(sorted(reg.marks))}); `mlops-nb models` lists "
                                "the versions")
        raise ModelNotFound("no model is promoted" + (f" under {name!r}" if name else " yet")
                            + ": `mlops-nb models promote RUN NAME`, `mnb.promote(run_id, "
                            "name)` or `mlops-nb retrain ... --promote` promotes one")
    return version


def promote(home: str | os.PathLike[str], version: dict[str, Any]) -> Path:
    """Move the promoted mark of `version['name']` to this version (atomic). Names are one
    registry per store, as MLflow's registered models are: when the mark was held by a run of
    another experiment, a warning says which (`models` shows each version's experiment)."""
    import warnings

    name = _check_name(version["name"])
    path = _root(Path(home)) / PROMOTED_DIR / f"{name}.json"
    before = replaced_mark(home, version)
    mark = {"version": version["version"], "run_id": version["run_id"],
            "experiment": version.get("experiment"),
            "promoted_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    atomic_write_bytes(path, json.dumps(mark).encode("utf-8"))
    if before is not None:
        warnings.warn(before, PromotionReplaced, stacklevel=2)
    return path


class PromotionReplaced(UserWarning):
    """A promotion moved a model name's mark away from a run of another experiment."""


def replaced_mark(home: str | os.PathLike[str], version: dict[str, Any]) -> str | None:
    """What promoting `version` takes away from another experiment, in words; else None."""
    try:
        old = read_registry(home).promoted_version(version["name"])
    except MlopsNbError:
        return None  # a damaged mark is replaced, which is its fix
    if old is None or old.get("version") == version.get("version"):
        return None
    if None in (old.get("experiment"), version.get("experiment")) or \
            old.get("experiment") == version.get("experiment"):
        return None  # the same experiment, or a version saved without one: nothing to say
    return (f"model {version['name']!r} was promoted in experiment {old.get('experiment')!r} "
            f"(run {str(old.get('run_id'))[:12]}); it is now run "
            f"{str(version.get('run_id'))[:12]} of experiment {version.get('experiment')!r}, "
            f"and {old.get('experiment')!r} has no promoted {version['name']!r} any more")


def demote(home: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """Remove the promoted mark of model `name` (a damaged mark too); returns the version
    that was promoted (None for a damaged mark). Raises ModelNotFound when none is."""
    _check_name(name)
    path = _root(Path(home)) / PROMOTED_DIR / f"{name}.json"
    reg = read_registry(home)
    if name not in reg.marks and name not in reg.damaged_marks:
        listed = ", ".join(sorted({*reg.marks, *reg.damaged_marks})) or "none"
        raise ModelNotFound(f"no model named {name!r} is promoted (promoted: {listed})")
    old = reg.marks.get(name)
    with contextlib.suppress(FileNotFoundError):  # removed meanwhile: the outcome asked for
        path.unlink()
    with contextlib.suppress(OSError):  # the removal itself survives a crash
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return old


def find_version(home: str | os.PathLike[str], run_id: str, name: str | None
                 ) -> dict[str, Any]:
    """The version of `name` saved with run `run_id` (or `promoted`, `promoted:NAME`)."""
    home = Path(home)
    if promoted_ref(run_id)[0]:
        return promoted_run_version(home, run_id, name)
    from .store.reader import StoreReader

    full = StoreReader(home).resolve(run_id).id
    found = [v for v in list_versions(home) if v.get("run_id") == full
             and (name is None or v["name"] == name)]
    if not found:
        raise ModelNotFound(f"run {full[:12]} has no saved model"
                            + (f" named {name!r}" if name else "")
                            + ": `mnb.log_model(model, name)` in the run's cell or "
                              "`%track on --save-models` saves one")
    names = {v["name"] for v in found}
    if len(names) > 1:
        raise ModelNotFound(f"run {full[:12]} saved several models ({', '.join(sorted(names))})"
                            "; name the one you mean")
    return found[-1]


def load_version(home: str | os.PathLike[str], version: dict[str, Any], *,
                 trusted: bool = False) -> Any:
    try:
        payload = BlobStore(Path(home) / BLOBS_DIR).get(version["blob"])
    except StoreCorrupt as exc:  # the store checks content hashes before we see the bytes
        raise UntrustedModel("the stored model's bytes do not match their recorded sha256 "
                             f"({exc})") from exc
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"the model blob of version {version.get('version')} is missing: "
                            f"{exc}") from exc
    if hashlib.sha256(payload).hexdigest() != version.get("sha256"):
        raise UntrustedModel("the stored model's bytes do not match their recorded sha256")
    return deserialize(version["format"], payload, version.get("sha256"), trusted=trusted)


# -- the notebook face -------------------------------------------------------------------------
def log_model(model: Any, name: str) -> Any:
    """Save `model` as a version of `name`, linked to the cell run now executing.

    The version is written once the cell's run is recorded (its id exists only then), in
    skops' secure format for scikit-learn models.

    Args:
        model: the fitted model.
        name: the model's name (letters, digits, `-`, `_`, `.`).

    Returns:
        `model`, so it can wrap an expression:
        `clf = mnb.log_model(RandomForestClassifier().fit(X, y), "rf")`.

    Raises:
        MlopsNbError: a bad name. Outside a tracked cell it warns instead.

    >>> mnb.log_model(clf, "rf")   # doctest: +SKIP
    """
    import warnings

    from .capture.recorder import active_tracker

    _check_name(name)
    tracker = active_tracker()
    if tracker is None or not tracker.in_cell:
        warnings.warn(f"mlops_nb.log_model({name!r}) was not saved: call it in a tracked cell "
                      "(`%track on`, or `%%track`)", stacklevel=2)
        return model
    fmt, payload = serialize(model)  # now: the object may change after the cell
    # the variables holding it now, to find the run that fitted it (`model_owner`)
    names = {n for n, v in list(tracker.shell.user_ns.items())
             if v is model and not n.startswith("_")}

    def save(cr: Any) -> None:
        owner = _owner(tracker, cr.id, names) or cr
        save_payload(tracker.home, owner.id, name, fmt, payload, cls=_class_name(model),
                     experiment=owner.experiment)

    _after_record(tracker, save)
    return model


def _owner(tracker: Any, cell_run_id: str, names: set[str]) -> Any:
    """The run a model logged in cell run `cell_run_id` belongs to (`model_owner`); None
    when the record cannot be read back."""
    if not names:
        return None
    cr, lineage = _with_lineage(tracker, cell_run_id)
    return None if cr is None else model_owner(cr, reversed(lineage), names)


def _after_record(tracker: Any, action: Any) -> None:
    """Run `action(cell_run)` once, after the recorder has recorded the current cell."""
    shell = tracker.shell

    def callback(result: Any) -> None:
        with contextlib.suppress(ValueError):  # already gone
            shell.events.unregister("post_run_cell", callback)
        last = tracker.last_id
        if last is None:
            return
        cr = _last_record(tracker, last)
        if cr is not None:
            try:
                action(cr)
            except Exception as exc:  # never break the user's cell
                import warnings

                warnings.warn(f"mlops-nb could not save the model: {exc!r}", stacklevel=1)

    shell.events.register("post_run_cell", callback)


def _last_record(tracker: Any, cell_run_id: str) -> Any:
    """The CellRun the writer was handed (experiment and id are all we need)."""
    from types import SimpleNamespace

    return SimpleNamespace(id=cell_run_id, experiment=tracker.last_experiment)


def save_models_after_runs(tracker: Any, enabled: bool) -> None:
    """`%track on --save-models`: after every run, save the fitted estimators it used."""
    shell = tracker.shell
    existing = getattr(tracker, "_mnb_save_models_cb", None)
    if existing is not None:
        with contextlib.suppress(ValueError):
            shell.events.unregister("post_run_cell", existing)
        tracker._mnb_save_models_cb = None
    if not enabled:
        return

    def callback(result: Any) -> None:
        try:
            _save_run_estimators(tracker)
        except Exception as exc:  # never break the user's cell
            import warnings

            warnings.warn(f"mlops-nb could not save the models: {exc!r}", stacklevel=1)

    tracker._mnb_save_models_cb = callback
    shell.events.register("post_run_cell", callback)


def _save_run_estimators(tracker: Any) -> None:
    from .capture.namespace import is_fitted_estimator

    last_id = tracker.last_id
    if tracker.writer is None or last_id is None:
        return
    if last_id == getattr(tracker, "_mnb_saved_for", None):
        return
    tracker._mnb_saved_for = last_id
    cr, lineage = _with_lineage(tracker, last_id)
    if cr is None or not cr.metrics:
        return
    names = model_candidates(cr, reversed(lineage))
    ns = tracker.shell.user_ns
    for name in names:
        obj = ns.get(name)
        if is_fitted_estimator(obj) and _NAME.match(name):
            save_version(tracker.home, cr.id, name, obj, experiment=cr.experiment)


def _with_lineage(tracker: Any, cell_run_id: str) -> tuple[Any, list[Any]]:
    """The cell run as recorded (None if it is not), and the cell runs of its lineage in
    execution order: one read of the session, once the writer has written it."""
    tracker.flush()
    from .store.reader import StoreReader

    log = StoreReader(tracker.home).session_log(tracker.session)
    cr = next((c for c in log if c.id == cell_run_id), None)
    if cr is None:
        return None, []
    wanted = set(tracker.log.lineage(cr.seq))  # records keep their direct deps only
    return cr, [c for c in log if c.id in wanted]


def load_model(run_id: str, name: str | None = None, *, trusted: bool = False,
               home: str | os.PathLike[str] | None = None) -> Any:
    """The model `name` saved with run `run_id`.

    Args:
        run_id: a run id, unique prefix, or "promoted".
        name: which model of the run (default: its only one).
        trusted: allow formats whose loading can run code (pickle/joblib, or skops types
            outside its trusted set); the sha256 recorded at save time is checked either way.
        home: the store folder.

    Returns:
        The model object.

    Raises:
        ModelNotFound: no saved model matches.
        UntrustedModel: loading could run code and `trusted` is False.

    >>> model = mnb.load_model("promoted", "rf")   # doctest: +SKIP
    """
    from .config import store_reader as _reader

    reader = _reader(home)
    return load_version(reader.home, find_version(reader.home, run_id, name), trusted=trusted)


def promote_run(run_id: str, name: str | None = None, *, force: bool = False,
                home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Mark the model `name` saved with run `run_id` as the promoted one.

    A model name is promoted once per store (one registry, as in MLflow): promoting `rf`
    moves the mark away from any other run's `rf`, and warns (`PromotionReplaced`) when that
    run was in another experiment.

    Args:
        run_id: a run id or unique prefix.
        name: which model of the run (default: its only one).
        force: promote even though the run's cell raised an error (refused otherwise).
        home: the store folder.

    Returns:
        The promoted version's record (run id, name, version, format, sha256).

    Raises:
        ModelNotFound: no saved model matches.
        MlopsNbError: the run's cell raised and `force` is False.

    >>> mnb.promote("3fa9", "rf")   # doctest: +SKIP
    """
    from .config import store_reader as _reader

    reader = _reader(home)
    if promoted_ref(run_id)[0]:
        raise MlopsNbError(f"promote takes a run id, not {run_id!r}")
    version = find_version(reader.home, run_id, name)
    run = reader.resolve(version["run_id"])
    if run.error and not force:
        raise MlopsNbError(
            f"run {run.id[:12]} raised {run.error.get('type')}: "
            f"{str(run.error.get('message'))[:200]}; its model {version['name']!r} is not "
            "promoted unless you pass force=True (`mlops-nb models promote ... --force`)")
    promote(reader.home, version)
    return version


def demote_run(name: str, *, home: str | os.PathLike[str] | None = None
               ) -> dict[str, Any] | None:
    """Take the promoted mark off model `name`: `promoted:NAME` then means nothing.

    Args:
        name: the model name (`mlops-nb models` lists the promoted ones with `*`).
        home: the store folder.

    Returns:
        The version that was promoted (None when its mark was damaged and is now removed).

    Raises:
        ModelNotFound: no model of that name is promoted.

    >>> mnb.demote("rf")   # doctest: +SKIP
    """
    from .config import store_reader as _reader

    return demote(_reader(home).home, name)
