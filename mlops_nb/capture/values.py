"""How the values a cell leaves become metrics and JSON: numbers kept exact, bad values kept
with a warning, user objects never trusted to behave (their `__repr__` may hang).

Which names are metrics and which way is better lives in `mlops_nb.metrics`.
"""

from __future__ import annotations

import math
import numbers
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any

# What most names a cell touches hold, and what no capture step looks into: numbers, text,
# containers, functions, modules. Exact types: a subclass is the user's and is looked at.
PLAIN_TYPES = frozenset({int, float, complex, str, bool, type(None), bytes, list, dict, tuple,
                         set, frozenset, range, types.FunctionType, types.BuiltinFunctionType,
                         types.ModuleType})


def not_plain(ns: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """The names among `names` (in order) whose value is not of a plain type: the only ones
    that can be data, a model or a generator. A name the namespace lacks is left out.

    One comprehension for the capture steps that each looked at every name a cell bound or
    read (fifty in a long cell) through a call per name. (A chain of `map`s in C is slower
    than this comprehension on CPython 3.11.)"""
    get, plain = ns.get, PLAIN_TYPES
    return [name for name in names if type(get(name)) not in plain]


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def numeric_scalar(value: Any) -> Any:
    """A plain Python number for ints, floats and numpy scalars; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value
    # Anything else is the user's object: its attributes may raise anything, and that must
    # cost at most this one value, never the cell's other metrics.
    # Capabilities are looked up on the type, never the instance: an object whose
    # `__getattr__` claims every attribute (or hangs) must not pass for a number.
    cls = type(value)
    if isinstance(value, numbers.Real):
        try:
            return value.item() if hasattr(cls, "item") else float(value)
        except Exception:
            return None
    if not (hasattr(cls, "item") and hasattr(cls, "shape")):
        return None
    try:  # 0-d numpy arrays and similar
        if value.shape == ():
            item = value.item()
            return item if is_number(item) else None
    except Exception:
        return None
    return None


def metric_value(value: Any) -> tuple[Any, str | None]:
    """The value to store for a metric, and a warning when it is not a finite number.

    A bad value is kept (as given, or its repr) so nothing is silently lost, and never raises:
    logging must not break the user's cell.
    """
    num = numeric_scalar(value)
    if num is None:
        if not _trusted_type(value):  # its __repr__ is the user's: may hang, may lie
            text = f"<{type(value).__module__}.{type(value).__qualname__} object>"
            return text, f"metric value {text} is not a number"
        return jsonable(value), f"metric value {safe_repr(value, 80)} is not a number"
    if isinstance(num, float) and not math.isfinite(num):
        return num, f"metric value {num!r} is not finite"
    return num, None


# Libraries whose reprs we call on a metric that is not a number; anything else is shown by
# its type name only (capture runs after the cell, where a hanging __repr__ hangs the kernel).
_TRUSTED_MODULES = frozenset({"builtins", "numpy", "pandas", "decimal", "fractions",
                              "datetime", "torch", "jax", "jaxlib", "tensorflow"})


def _trusted_type(value: Any) -> bool:
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return all(_trusted_type(v) for v in (value.values() if isinstance(value, dict)
                                               else value)) if len(value) < 100 else False
    return type(value).__module__.split(".")[0] in _TRUSTED_MODULES


_FLOAT_MAX = sys.float_info.max


def too_big_for_float(value: int) -> bool:
    return abs(value) > _FLOAT_MAX


def safe_repr(value: Any, limit: int = 200) -> str:
    """repr that never raises: a hostile `__repr__` must not break the user's cell."""
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    return text[:limit]


# The exact types most parameters and metrics have: told apart in one set lookup, with no
# call per value (`jsonable` returns them as they are, but an int too big for a float).
SCALAR_TYPES = frozenset({int, float, str, bool, type(None)})
# What `jsonable` returns as it is, whatever the value (an int may be too large for a float)
JSON_AS_IS = SCALAR_TYPES - {int}


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-compatible copy of `value`; unknown objects become their repr, truncated."""
    cls = type(value)
    # `too_big_for_float`'s bound written inline: most parameters are ints
    if cls in SCALAR_TYPES and (cls is not int or -_FLOAT_MAX <= value <= _FLOAT_MAX):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and too_big_for_float(value):
        return f"<int of {value.bit_length()} bits, too large to store>"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if _depth > 20:
        return safe_repr(value)
    num = numeric_scalar(value)
    if num is not None:
        return num
    if isinstance(value, (list, tuple)):
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {_key_text(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        items = [jsonable(v, _depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    return safe_repr(value)


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    try:
        return str(key)
    except Exception:
        return safe_repr(key)
