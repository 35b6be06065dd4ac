"""The one NaN-in-JSON policy: what a non-finite float becomes when mlops-nb writes JSON.

JSON has no NaN or Infinity, and strict readers (jq, JavaScript's `JSON.parse`, msgspec) reject
Python's `NaN` tokens. So nothing mlops-nb writes holds them:

- output for people and tools (`--format json`, verdicts, reports, the lab panel) writes a
  non-finite float as `null`, as pandas' `to_json` does; the run's warnings say why it was
  not finite;
- files mlops-nb reads back (an export's `run.json`, whose expected metrics `reproduce`
  compares) tag it as `{"float": "nan"}`, so NaN comes back as NaN, not as a missing value.
"""

from __future__ import annotations

import math
from typing import Any


def json_ready(value: Any) -> Any:
    """`value` with non-finite floats as None, tuples as lists and keys as text: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def to_tagged(value: Any) -> Any:
    """`value` with non-finite floats as `{"float": "nan"}`: strict JSON that `from_tagged`
    turns back into the same floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, dict):
        return {str(k): to_tagged(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_tagged(v) for v in value]
    return value


def from_tagged(value: Any) -> Any:
    """The inverse of `to_tagged` on parsed JSON."""
    if isinstance(value, dict):
        if set(value) == {"float"} and isinstance(value["float"], str):
            return float(value["float"])
        return {k: from_tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_tagged(v) for v in value]
    return value


def read_metrics_file(path: Any) -> Any:
    """An export's `metrics.json` as its script wrote it, non-finite values as floats again
    (an older script wrote NaN tokens, which this reads too). Raises OSError or ValueError."""
    import json
    from pathlib import Path

    return from_tagged(json.loads(Path(path).read_text(encoding="utf-8")))
