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


def list_versions(home: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every saved version, oldest first; unreadable files are skipped."""
    folder = _root(Path(home)) / VERSIONS_DIR
    out: list[dict[str, Any]] = []
    if not folder.is_dir():
        return out
    for entry in os.scandir(folder):
        if not entry.name.endswith(".json") or not _VERSION.match(entry.name[:-5]):
            continue
        try:
            doc = json.loads(Path(entry.path).read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("name"), str):
            out.append(doc)
    out.sort(key=lambda d: (str(d.get("created_at")), str(d.get("version"))))
    return out


def promoted(home: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """{model name: promoted version record}."""
    folder = _root(Path(home)) / PROMOTED_DIR
    versions = {v["version"]: v for v in list_versions(home)}
    out: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return out
    for entry in os.scandir(folder):
        if not entry.name.endswith(".json"):
            continue
        try:
            mark = json.loads(Path(entry.path).read_bytes())
        except (OSError, ValueError):
            continue
        v = versions.get(mark.get("version")) if isinstance(mark, dict) else None
        if v is not None:
            out[v["name"]] = {**v, "promoted_at": mark.get("promoted_at")}
    return out


def promoted_version(home: str | os.PathLike[str], name: str | None = None
                     ) -> dict[str, Any] | None:
    marks = promoted(home)
    if name is not None:
        return marks.get(name)
    if len(marks) > 1:
        raise MlopsNbError(f"several models are promoted ({', '.join(sorted(marks))}); "
                           "name the one you mean")
    return next(iter(marks.values()), None)


def promote(home: str | os.PathLike[str], version: dict[str, Any]) -> Path:
    """Move the promoted mark of `version['name']` to this version (atomic)."""
    name = _check_name(version["name"])
    path = _root(Path(home)) / PROMOTED_DIR / f"{name}.json"
    mark = {"version": version["version"], "run_id": version["run_id"],
            "promoted_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    atomic_write_bytes(path, json.dumps(mark).encode("utf-8"))
    return path


def find_version(home: str | os.PathLike[str], run_id: str, name: str | None
                 ) -> dict[str, Any]:
    """The version of `name` saved with run `run_id` (or "promoted")."""
    home = Path(home)
    if run_id == "promoted":
        v = promoted_version(home, name)
        if v is None:
            raise ModelNotFound("no model is promoted" + (f" under {name!r}" if name else "")
                                + "; `mlops-nb models` lists the versions")
        return v
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


def promote_run(run_id: str, name: str | None = None, *,
                home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Mark the model `name` saved with run `run_id` as the promoted one.

    Args:
        run_id: a run id or unique prefix.
        name: which model of the run (default: its only one).
        home: the store folder.

    Returns:
        The promoted version's record (run id, name, version, format, sha256).

    Raises:
        ModelNotFound: no saved model matches.

    >>> mnb.promote("3fa9", "rf")   # doctest: +SKIP
    """
    from .config import store_reader as _reader

    reader = _reader(home)
    version = find_version(reader.home, run_id, name)
    promote(reader.home, version)
    return version
