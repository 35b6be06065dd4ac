"""A saved model version as an MLflow Model in the scikit-learn flavour (`MLmodel` + files).

A team loads a synced model the way it loads any MLflow model
(`mlflow.sklearn.load_model("runs:/<id>/models/<name>")`, or `mlflow.pyfunc`), so the folder is
written by MLflow's own `mlflow.sklearn.save_model`, in skops' format where the client knows
it. Only versions stored with skops are converted: they load here without running code
(foreign types are refused as `load_model` refuses them), whereas a pickled version would
have to be unpickled first; those are named in the run's `mlops_nb.skipped` tag instead.
Requirements are pinned from the installed versions, never inferred (MLflow's inference
loads the model in a subprocess: seconds per run).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

MODELS_DIR = "models"  # artifact folder: models/<name>/MLmodel


def versions_by_run(home: str | os.PathLike[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """{run id: {model name: its newest version record}} over the whole store."""
    from ..models import list_versions

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for v in list_versions(home):  # oldest first: the newest of a name wins
        rid = v.get("run_id")
        if isinstance(rid, str):
            out.setdefault(rid, {})[v["name"]] = v
    return out


def flavour_files(home: str | os.PathLike[str], version: dict[str, Any]
                  ) -> tuple[dict[str, bytes], str | None]:
    """(the MLflow Model's files by relative path, None), or ({}, why it was not made)."""
    fmt = version.get("format")
    if fmt != "skops":
        return {}, (f"model {version.get('name')!r} is stored with {fmt}, not skops: not "
                    "converted to the MLflow sklearn flavour (unpickling it could run code)")
    from ..models import ModelNotFound, UntrustedModel, load_version
    from ..store.blobs import BlobStore
    from ..store.layout import BLOBS_DIR

    try:
        model = load_version(home, version)
        payload = BlobStore(Path(home) / BLOBS_DIR).get(version["blob"])
    except (ModelNotFound, UntrustedModel) as exc:
        return {}, f"model {version.get('name')!r}: {exc}"
    try:
        return _save(model, payload, version), None
    except Exception as exc:  # an estimator MLflow cannot save: the run still goes up
        return {}, (f"model {version.get('name')!r}: MLflow could not save it: "
                    f"{type(exc).__name__}: {str(exc)[:200]}")


def _save(model: Any, payload: bytes, version: dict[str, Any]) -> dict[str, bytes]:
    import mlflow.sklearn as flavour
    import skops.io as sio

    options: dict[str, Any] = {}
    if "skops" in getattr(flavour, "SUPPORTED_SERIALIZATION_FORMATS", ()):
        # the types skops lists for scikit-learn's own models (a tree's Cython Tree), which
        # load_version has already vetted: without them MLflow could not load the model back
        options = {"serialization_format": "skops",
                   "skops_trusted_types": sio.get_untrusted_types(data=payload) or None}
        requirements = _requirements(flavour, include_skops=True)
    else:  # an MLflow client from before skops support: its default format
        requirements = _requirements(flavour, include_cloudpickle=True)
    metadata = {"mlops_nb.version": version.get("version"),
                "mlops_nb.run_id": version.get("run_id"),
                "mlops_nb.sha256": version.get("sha256")}
    with tempfile.TemporaryDirectory(prefix="mlops-nb-flavour-") as tmp:
        folder = Path(tmp) / "model"
        with _quiet():
            flavour.save_model(model, str(folder), pip_requirements=requirements,
                               metadata=metadata, **options)
        return {p.relative_to(folder).as_posix(): p.read_bytes()
                for p in sorted(folder.rglob("*")) if p.is_file()}


def _requirements(flavour: Any, **which: bool) -> list[str]:
    try:
        return list(flavour.get_default_pip_requirements(**which))
    except TypeError:  # an older client without that keyword
        return list(flavour.get_default_pip_requirements())


@contextlib.contextmanager
def _quiet() -> Any:
    """MLflow warns about pickle formats and logs per save: not the sync's business."""
    import logging
    import warnings

    logger = logging.getLogger("mlflow")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(before)
