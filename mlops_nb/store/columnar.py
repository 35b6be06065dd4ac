"""Runs as typed columns: what the run index stores and what listing decodes without a Python
object per number.

A column is encoded once, when its segment is summarised, as one of:

- `i8` / `f8` / `b1`: a buffer of int64 / float64 / bool values and a mask of which rows are
  set, decoded with `numpy.frombuffer` (no object per value);
- `str`: dictionary encoded (the distinct strings joined by NUL, and int32 codes), so a column
  of 100,000 session or model names decodes to a few strings and an index into them;
- `obj`: anything else (lists, dicts, mixed types, ints beyond int64, text holding NUL) as
  JSON text, decoded to the very values the segment holds.

Pure: bytes in, arrays out. Encoding uses only the standard library (`array`), so the
kernel's writer thread does not need numpy to keep the index current; decoding uses numpy,
which listing needs anyway for pandas.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

I8, F8, B1, STR, OBJ = "i8", "f8", "b1", "str", "obj"
_SEP = "\x00"
_I64 = (-(1 << 63), (1 << 63) - 1)


# -- encoding (writer thread: standard library only) -----------------------------------------
def encode_column(values: Sequence[Any]) -> dict[str, Any]:
    """One column (None where a row does not set it) as a msgpack-ready mapping."""
    kinds = {type(v) for v in values if v is not None}
    if kinds == {str}:
        if not any(_SEP in v for v in values if v is not None):
            return _encode_str(values)
    elif kinds == {int}:
        lo, hi = _I64
        if all(lo <= v <= hi for v in values if v is not None):
            return _encode_buffer(I8, "q", values, 0)
    elif kinds == {float}:
        return _encode_buffer(F8, "d", values, 0.0)
    elif kinds == {bool}:
        return _encode_buffer(B1, "b", values, False)
    text = json.dumps(list(values), separators=(",", ":"), default=repr)
    return {"k": OBJ, "j": text.encode("utf-8", "surrogatepass")}


def _encode_buffer(kind: str, code: str, values: Sequence[Any], fill: Any) -> dict[str, Any]:
    if all(v is not None for v in values):
        return {"k": kind, "v": array(code, values).tobytes(), "m": None}
    buf = array(code, (fill if v is None else v for v in values))
    mask = bytes(v is not None for v in values)
    return {"k": kind, "v": buf.tobytes(), "m": mask}


def _encode_str(values: Sequence[Any]) -> dict[str, Any]:
    index: dict[str, int] = {}
    codes = array("i", (-1 if v is None else index.setdefault(v, len(index)) for v in values))
    joined = _SEP.join(index)
    return {"k": STR, "u": joined.encode("utf-8", "surrogatepass"), "n": len(index),
            "c": codes.tobytes()}


def encode_columns(rows: Iterable[dict[str, Any]], first: Sequence[str] = ()
                   ) -> tuple[int, list[list[Any]]]:
    """Rows whose keys differ, as [name, encoded column] pairs (a key a row lacks is None in
    that row). Names are UTF-8 bytes, lone surrogates kept (a non-UTF-8 file name's)."""
    rows = list(rows)
    keys: dict[str, None] = dict.fromkeys(first)
    for row in rows:
        keys.update(dict.fromkeys(row))
    return len(rows), [[k.encode("utf-8", "surrogatepass"), encode_column([r.get(k) for r in rows])]
                       for k in keys]


def decode_columns(pairs: Any, n: int) -> dict[str, Column]:
    """The columns `encode_columns` made; ValueError if they are not that."""
    if not isinstance(pairs, list):
        raise ValueError("not a list of columns")
    out: dict[str, Column] = {}
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], bytes)):
            raise ValueError("not a column")
        out[pair[0].decode("utf-8", "surrogatepass")] = decode_column(pair[1], n)
    return out


# -- decoding (readers: numpy) ---------------------------------------------------------------
@dataclass
class Column:
    """A decoded column: `values` is int64 / float64 / bool (with `mask` True where set, None
    when every row is) or, for `str` and `obj`, an object array holding None where unset."""

    kind: str
    values: np.ndarray
    mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def is_set(self) -> np.ndarray:
        import numpy as np

        if self.kind in (STR, OBJ):
            return np.not_equal(self.values, None)
        return np.ones(len(self.values), dtype=bool) if self.mask is None else self.mask

    def tolist(self) -> list[Any]:
        """The column as the Python values the rows held (None where unset)."""
        out = self.values.tolist()
        if self.mask is not None:
            for i in (~self.mask).nonzero()[0].tolist():
                out[i] = None
        return out

    def take(self, index: np.ndarray) -> Column:
        return Column(self.kind, self.values[index],
                      None if self.mask is None else self.mask[index])


def decode_column(enc: Any, n: int) -> Column:
    """An encoded column of `n` rows; ValueError if it is not one (a damaged index)."""
    import numpy as np

    if not isinstance(enc, dict):
        raise ValueError("not an encoded column")
    kind = enc.get("k")
    if kind in (I8, F8, B1):
        dtype = {I8: np.int64, F8: np.float64, B1: np.bool_}[kind]
        values = np.frombuffer(enc["v"], dtype=dtype)
        mask = None if enc.get("m") is None else np.frombuffer(enc["m"], dtype=np.bool_)
        if len(values) != n or (mask is not None and len(mask) != n):
            raise ValueError("column length differs from the row count")
        return Column(kind, values, mask)
    if kind == STR:
        joined = enc["u"].decode("utf-8", "surrogatepass")
        uniques = joined.split(_SEP) if enc["n"] else []
        if len(uniques) != enc["n"]:
            raise ValueError("string dictionary damaged")
        table = np.empty(len(uniques) + 1, dtype=object)
        table[:-1] = uniques  # the last entry (code -1) stays None: unset
        codes = np.frombuffer(enc["c"], dtype=np.int32)
        if len(codes) != n or (len(codes) and (codes.max() >= len(uniques) or codes.min() < -1)):
            raise ValueError("string codes damaged")
        return Column(STR, table[codes])
    if kind == OBJ:
        values = _json_list(enc["j"])
        if not isinstance(values, list) or len(values) != n:
            raise ValueError("object column damaged")
        return Column(OBJ, np.fromiter(values, dtype=object, count=n))
    raise ValueError(f"unknown column kind {kind!r}")


def _json_list(raw: bytes) -> Any:
    """msgspec parses ~6x faster than `json`; `json` still reads NaN and Infinity, which the
    writer's `json.dumps` emits and msgspec rejects."""
    import msgspec

    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return json.loads(raw.decode("utf-8", "surrogatepass"))


def missing(kind: str, n: int) -> Column:
    """`n` unset rows of a column of `kind`: padding for the segments that lack it."""
    import numpy as np

    if kind in (I8, F8, B1):
        dtype = {I8: np.int64, F8: np.float64, B1: np.bool_}[kind]
        return Column(kind, np.zeros(n, dtype=dtype), np.zeros(n, dtype=bool))
    return Column(kind, np.full(n, None, dtype=object))


def concat(parts: list[tuple[Column | None, int]]) -> Column:
    """Columns of consecutive segments as one (None parts: a segment without that column).

    Segments that typed the column differently (ints in one, floats in another) give an
    object column of the values as they were: the frame then infers its type from all of them,
    exactly as from one list.
    """
    import numpy as np

    kinds = {c.kind for c, _ in parts if c is not None}
    kind = kinds.pop() if len(kinds) == 1 else OBJ
    cols = [c if c is not None else missing(kind, n) for c, n in parts]
    if kind == OBJ and any(c.kind != OBJ for c in cols):
        cols = [c if c.kind == OBJ else _as_objects(c) for c in cols]
    if len(cols) == 1:
        return cols[0]
    values = np.concatenate([c.values for c in cols])
    if kind in (STR, OBJ) or all(c.mask is None for c in cols):
        return Column(kind, values)
    mask = np.concatenate([c.is_set() for c in cols])
    return Column(kind, values, mask)


def _as_objects(col: Column) -> Column:
    import numpy as np

    return Column(OBJ, np.fromiter(col.tolist(), dtype=object, count=len(col)))
