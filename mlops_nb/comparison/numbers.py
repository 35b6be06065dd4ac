"""One number format per column, so a column's values read alike (`5.910e-4` next to
`4.317e-3`, never `5.91e-4` next to `0.00431678`).

Integers stay as they are. Otherwise every value of the column gets the same significant
digits (as many as its values need, at most 6): in scientific notation for the whole column when
a value is below 1e-3 or reaches 1e6, else with the same number of decimals. Twin of
`numberFormat` in `static/runs_view.js`; both are tested on `tests/data/number_formats.json`.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

MAX_DIGITS = 6
MAX_DECIMALS = 10
SAMPLE = 2000  # values read for the digits; the bounds that decide notation read every value
_EXPONENT = re.compile(r"e([+-])0*(\d)")


_FLOAT_MAX = int(sys.float_info.max)


def _is_number(v: Any) -> bool:
    """A number the column's format can show: an int past a float's range (a 400-digit
    seed) is shown as its text, as a non-number is."""
    if type(v) is float:
        return math.isfinite(v)
    return type(v) is int and -_FLOAT_MAX <= v <= _FLOAT_MAX


def coerce_numbers(series: Any) -> Any:
    """`pd.to_numeric(series, errors="coerce")`, with an int past a float's range read as
    +-inf (its place in any order) where pandas raises on it: one such value stored in a
    metric or parameter column failed the table, sort and filter of its whole experiment."""
    import pandas as pd

    try:
        return pd.to_numeric(series, errors="coerce")
    except OverflowError:
        return pd.to_numeric(series.map(_in_float_range), errors="coerce")


def _in_float_range(v: Any) -> Any:
    if type(v) is int and not -_FLOAT_MAX <= v <= _FLOAT_MAX:
        return math.inf if v > 0 else -math.inf
    return v


def _digits(v: float) -> int:
    """Significant digits of `v` at 6-digit precision (`0.0123` -> 3)."""
    mantissa = f"{abs(v):.{MAX_DIGITS - 1}e}".split("e")[0].replace(".", "")
    return len(mantissa.strip("0")) or 1


def _decimals(v: float) -> int:
    """Decimals `v` needs once rounded to 6 significant digits (`0.00431678` -> 8)."""
    r = float(f"{v:.{MAX_DIGITS}g}")
    if r == int(r):
        return 0
    text = repr(r)
    return 0 if "e" in text else len(text) - text.index(".") - 1


def number_format(values: Sequence[Any]) -> Callable[[float], str] | None:
    """The format of a column holding `values` (non-numbers are ignored), or None when its
    numbers are plain integers that need none."""
    lo, hi, integers = math.inf, 0.0, True
    sample: list[float] = []
    step = max(1, len(values) // SAMPLE)
    for i, v in enumerate(values):
        if not _is_number(v):
            continue
        a = abs(v)
        if a != 0 and a < lo:
            lo = a
        if a > hi:
            hi = a
        if v != int(v):
            integers = False
        if i % step == 0 or a in (lo, hi):
            sample.append(v)
    if not sample or (integers and hi < 1e15):
        return None
    digits = min(MAX_DIGITS, max(_digits(v) for v in sample))
    if lo < 1e-3 or hi >= 1e6:
        def scientific(v: float) -> str:
            if not math.isfinite(v):
                return str(v)
            return "0" if v == 0 else _EXPONENT.sub(r"e\1\2", f"{v:.{digits - 1}e}")
        return scientific
    decimals = min(MAX_DECIMALS, max(_decimals(v) for v in sample))

    def fixed(v: float) -> str:
        return f"{v:.{decimals}f}" if math.isfinite(v) else str(v)
    return fixed
