"""MLflow's validation limits, declared once: what a server accepts in one request.

A server refuses a whole `log_batch` when one key or value breaks its rules
(`mlflow/utils/validation.py`), so the payload is cut to fit these before it is sent. The
defaults below are the values of MLflow's own constants (a test checks they still match the
installed client); `mlflow_limits()` reads the installed client's constants and keeps, for
each, the stricter of the two, because an older server may be stricter than a newer client.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# our field -> the constant of `mlflow.utils.validation` it mirrors
MLFLOW_CONSTANTS = {
    "key_length": "MAX_ENTITY_KEY_LENGTH",
    "param_value_length": "MAX_PARAM_VAL_LENGTH",
    "tag_value_length": "MAX_TAG_VAL_LENGTH",
    "params_tags_per_batch": "MAX_PARAMS_TAGS_PER_BATCH",
    "metrics_per_batch": "MAX_METRICS_PER_BATCH",
    "entities_per_batch": "MAX_ENTITIES_PER_BATCH",
    "batch_bytes": "MAX_BATCH_LOG_REQUEST_SIZE",
    "experiment_name_length": "MAX_EXPERIMENT_NAME_LENGTH",
}


@dataclass(frozen=True)
class Limits:
    """Key length, value lengths and `log_batch` sizes an MLflow server accepts."""

    key_length: int = 250
    param_value_length: int = 6000
    tag_value_length: int = 8000
    params_tags_per_batch: int = 100
    metrics_per_batch: int = 1000
    entities_per_batch: int = 1000
    batch_bytes: int = 1_000_000
    experiment_name_length: int = 500


def client_constants() -> dict[str, int] | None:
    """{our field: the installed MLflow client's value}, or None without the client."""
    try:
        from mlflow.utils import validation
    except ImportError:
        return None
    out: dict[str, int] = {}
    for name, constant in MLFLOW_CONSTANTS.items():
        value = getattr(validation, constant, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            out[name] = int(value)
    return out


def mlflow_limits() -> Limits:
    """The limits to push with: the installed client's, never looser than the defaults."""
    base = Limits()
    found = client_constants()
    if not found:
        return base
    return Limits(**{f.name: min(found.get(f.name, getattr(base, f.name)),
                                 getattr(base, f.name)) for f in fields(Limits)})
