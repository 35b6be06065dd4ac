"""pandas' `DataFrame.to_string(index=False, max_colwidth=40)` for columns of plain values,
without pandas.

`mlops-nb runs` prints its first screen from here: importing pandas alone costs a terminal
command more CPU than reading the newest runs of a 100,000-run store. The text must be the one
pandas prints for the same frame (tests/test_first_screen.py compares them), so this follows
pandas' formatters step by step (`pandas/io/formats/format.py`, default display options):

- a float column: every value with 6 decimals, then the trailing zeros all values share
  trimmed; scientific notation when a value is nonzero below 1e-6, or one is above 1e6 and the
  widest is over 12 characters; missing values `NaN`;
- an int or bool column: `str` of each value;
- a text column: the text, missing values `NaN`;
- an object column (mixed values): floats as `' 0.5'` (a sign's space, 6 decimals, trailing
  zeros trimmed), None as `None`, NaN as `NaN`, anything else `str`;
- cells longer than 40 characters cut to 37 and `...`; every cell right-aligned to its
  column's width; the header of a number or bool column one space wider; columns joined by
  one space.

Only the value types above are handled; a caller holding anything else uses pandas.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FLOAT, INT, BOOL, TEXT, OBJECT = "float", "int", "bool", "text", "object"
MAX_COLWIDTH = 40
_DIGITS = 6  # display.precision
_NUMBER_WITH_DECIMAL = re.compile(r"^\s*[+-]?[0-9]+\.[0-9]*$")
_INT64 = (-(1 << 63), (1 << 63) - 1)


class NotPlain(Exception):
    """A column pandas would type or print in a way this module does not follow."""


@dataclass
class TextColumn:
    """One column: its header, its values, and its dtype as pandas would hold it."""

    label: str
    values: Sequence[Any]
    kind: str


def kind_of_list(values: Sequence[Any]) -> str:
    """The dtype pandas infers when a column is assigned this list (`df[c] = [...]`): all
    bools -> bool, all ints -> int64, ints and floats -> float64, all text -> text, any other
    mix of these -> object. NotPlain for other values and ints beyond int64."""
    types = {type(v) for v in values}
    if not types <= {bool, int, float, str}:
        raise NotPlain(f"values of type {sorted(t.__name__ for t in types)}")
    if int in types:
        lo, hi = _INT64
        if any(not lo <= v <= hi for v in values if type(v) is int):
            raise NotPlain("an int beyond int64")
    if types == {bool}:
        return BOOL
    if types == {int}:
        return INT
    if types and types <= {int, float}:
        return FLOAT
    if types == {str}:
        return TEXT
    return OBJECT


def to_string(columns: Sequence[TextColumn], max_colwidth: int | None = MAX_COLWIDTH) -> str:
    """The frame's text, as `DataFrame.to_string(index=False, max_colwidth=...)` prints it."""
    strcols = []
    for col in columns:
        header = (" " + col.label) if col.kind in (FLOAT, INT, BOOL) else col.label
        cells = _fixed_width(_format(col), 0, max_colwidth)
        cells = _fixed_width(cells, len(header), max_colwidth)
        width = max([len(header), *map(len, cells)])
        strcols.append([header.rjust(width), *cells])
    return _adjoin(strcols)


def _format(col: TextColumn) -> list[str]:
    if col.kind == FLOAT:
        return _float_column([float(v) for v in col.values])
    if col.kind in (INT, BOOL):
        return [str(v) for v in col.values]
    if col.kind == TEXT:
        return ["NaN" if _is_nan(v) or v is None else str(v) for v in col.values]
    return [_object_cell(v) for v in col.values]


def _is_nan(v: Any) -> bool:
    return type(v) is float and v != v


def _object_cell(v: Any) -> str:
    if v is None:
        return "None"
    if type(v) is float:
        if v != v:
            return "NaN"
        return _trim_zeros_single(f"{v: .{_DIGITS}f}")
    return str(v)


def _trim_zeros_single(text: str) -> str:
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def _float_column(values: list[float]) -> list[str]:
    cells = _float_cells(values, "f")
    too_long = max(map(len, cells), default=0) > _DIGITS + 6
    finite = [abs(v) for v in values if v == v]
    large = any(a > 1e6 for a in finite)
    small = any(0 < a < 10 ** (-_DIGITS) for a in finite)
    if small or (too_long and large):
        cells = _float_cells(values, "e")
    return cells


def _float_cells(values: list[float], style: str) -> list[str]:
    cells = ["NaN" if v != v else format(v, f".{_DIGITS}{style}") for v in values]
    return _trim_zeros(cells)


def _trim_zeros(cells: list[str]) -> list[str]:
    """Trailing zeros trimmed equally from every decimal number, one kept after the point."""
    numbers = [_NUMBER_WITH_DECIMAL.match(c) is not None for c in cells]
    if not any(numbers):
        return cells
    while all(c.endswith("0") for c, is_number in zip(cells, numbers, strict=True)
              if is_number):
        cells = [c[:-1] if is_number else c for c, is_number in zip(cells, numbers, strict=True)]
    return [c + "0" if is_number and c.endswith(".") else c
            for c, is_number in zip(cells, numbers, strict=True)]


def _fixed_width(cells: list[str], minimum: int, max_colwidth: int | None) -> list[str]:
    if not cells:
        return cells
    width = max(max(map(len, cells)), minimum)
    if max_colwidth is not None:
        width = min(width, max_colwidth)
    keep = max(width - 3, 0)
    dots = "..."[:width - keep]
    return [(c[:keep] + dots if len(c) > width else c).rjust(width) for c in cells]


def _adjoin(strcols: list[list[str]]) -> str:
    widths = [max(map(len, col)) + 1 for col in strcols[:-1]]
    widths.append(max(map(len, strcols[-1])))
    rows = max(map(len, strcols))
    padded = [[" " * w] * (rows - len(col)) + [c.ljust(w) for c in col]
              for col, w in zip(strcols, widths, strict=True)]
    return "\n".join("".join(parts) for parts in zip(*padded, strict=True))
