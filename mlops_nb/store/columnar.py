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
which listing needs anyway for pandas. Reading a few columns as lists (`str_values`,
`plain_values`: a run id's prefix, `show`'s lineage) uses the standard library too, so
`show` and `export` need not import numpy for them.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Sequence
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
    return _encode_obj(values)


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


def _encode_obj(values: Sequence[Any]) -> dict[str, Any]:
    """Distinct values as one JSON list, and a code per row: a column of 100,000 parameter
    values drawn from a handful decodes to that handful. Values are told apart by type and
    content (True is not 1, 1 is not 1.0, -0.0 is not 0.0); lists and dicts by their JSON."""
    index: dict[Any, int] = {}
    uniques: list[Any] = []
    codes = array("i")
    for v in values:
        t = type(v)
        if t is float:
            key: Any = (t, v.hex())
        elif v is None or t in (str, int, bool):
            key = (t, v)
        else:
            key = (list, json.dumps(v, separators=(",", ":"), default=repr))
        code = index.get(key)
        if code is None:
            code = index[key] = len(uniques)
            uniques.append(v)
        codes.append(code)
    text = json.dumps(uniques, separators=(",", ":"), default=repr)
    return {"k": OBJ, "j": text.encode("utf-8", "surrogatepass"), "n": len(uniques),
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
class Column:
    """A decoded column.

    Numbers: `values` is int64 / float64 / bool, `mask` True where set (None: every row is).
    `str` and `obj`: dictionary form, `table` the distinct values (its last entry None, for
    unset rows) and `codes` an index into it per row; `values` (an object array) is made only
    when asked, so a string column can go to Arrow without a Python object per row.
    """

    def __init__(self, kind: str, values: np.ndarray | None = None,
                 mask: np.ndarray | None = None, *, table: np.ndarray | None = None,
                 codes: np.ndarray | None = None) -> None:
        self.kind = kind
        self._values = values
        self.mask = mask
        self.table = table
        self.codes = codes

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = self.table[self.codes]  # type: ignore[index]
        return self._values

    def __len__(self) -> int:
        return len(self.codes) if self._values is None else len(self._values)  # type: ignore[arg-type]

    def is_set(self) -> np.ndarray:
        import numpy as np

        if self.kind in (STR, OBJ):
            if self._values is None:
                return np.not_equal(self.table, None)[self.codes]  # type: ignore[index]
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
        if self._values is None:
            return Column(self.kind, table=self.table, codes=self.codes[index])  # type: ignore[index]
        return Column(self.kind, self.values[index],
                      None if self.mask is None else self.mask[index])


def str_values(enc: Any, n: int) -> list[str | None]:
    """The `n` rows of one encoded `str` column as a list, with the standard library only:
    finding a run by id prefix reads the id columns alone, and importing numpy for them was
    a tenth of a second of every `mlops-nb export`. ValueError on anything `concat_encoded`
    would refuse (the caller then takes the numpy path, which says what is wrong)."""
    if not isinstance(enc, dict) or enc.get("k") != STR:
        raise ValueError("not an encoded str column")
    uniques = enc["u"].decode("utf-8", "surrogatepass").split(_SEP) if enc["n"] else []
    return _by_code(enc, n, uniques)


def _by_code(enc: dict[str, Any], n: int, uniques: Any) -> list[Any]:
    """The rows of a dictionary-encoded column: its int32 codes into `uniques`, -1 unset."""
    codes = array("i")
    codes.frombytes(enc["c"])  # ValueError when not whole int32s
    if len(codes) != n or codes.itemsize != 4:
        raise ValueError("codes damaged")
    if not isinstance(uniques, list) or len(uniques) != enc["n"]:
        raise ValueError("dictionary damaged")
    if codes and (max(codes) >= len(uniques) or min(codes) < -1):
        raise ValueError("codes damaged")
    uniques.append(None)  # code -1: an unset row
    return [uniques[c] for c in codes]


_ARRAY_CODES = {I8: "q", F8: "d"}


def plain_values(enc: Any, n: int) -> list[Any]:
    """The `n` rows of one encoded column as the list `decode_column(enc, n).tolist()` gives,
    with the standard library only (`show` reads five small columns per segment, and numpy's
    import was half of its time). ValueError or TypeError on anything the numpy decoder
    would refuse, and on what it would read differently (a mask or bool byte not 0 or 1):
    the caller then takes the numpy path."""
    if not isinstance(enc, dict):
        raise ValueError("not an encoded column")
    kind = enc.get("k")
    if kind == STR:
        return str_values(enc, n)
    if kind in (I8, F8, B1):
        raw = enc["v"]
        if not isinstance(raw, bytes) or len(raw) != _SIZES[kind] * n:
            raise ValueError("column length differs from the row count")
        if kind == B1:
            if raw.strip(b"\x00\x01"):
                raise ValueError("not a bool column")
            values: list[Any] = [b == 1 for b in raw]
        else:
            buf = array(_ARRAY_CODES[kind])
            buf.frombytes(raw)
            values = buf.tolist()
        mask = enc.get("m")
        if mask is None:
            return values
        if not isinstance(mask, bytes) or len(mask) != n or mask.strip(b"\x00\x01"):
            raise ValueError("mask damaged")
        return [v if m else None for v, m in zip(values, mask, strict=True)]
    if kind != OBJ:
        raise ValueError(f"unknown column kind {kind!r}")
    return _by_code(enc, n, _json_list(b"[" + enc["j"][1:-1] + b"]") if enc["n"] else [])


def _table(uniques: list[Any]) -> np.ndarray:
    import numpy as np

    table = np.empty(len(uniques) + 1, dtype=object)  # the last entry (code -1) stays None
    table[:-1] = np.fromiter(uniques, dtype=object, count=len(uniques))
    return table


def decode_column(enc: Any, n: int) -> Column:
    """An encoded column of `n` rows; ValueError if it is not one (a damaged index)."""
    return concat_encoded([(enc, n)])


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


_SIZES = {I8: 8, F8: 8, B1: 1}


def concat_encoded(parts: list[tuple[Any, int]]) -> Column:
    """Encoded columns of consecutive segments (None: a segment without that column) decoded
    as one: a constant number of numpy calls per column however many segments, which is what
    keeps 500 segments of 200 runs as fast as one of 100,000. ValueError on anything damaged
    (the caller then decodes segment by segment to find it)."""
    import numpy as np

    if any(enc is not None and not isinstance(enc, dict) for enc, _ in parts):
        raise ValueError("not an encoded column")
    kinds = {enc.get("k") for enc, _ in parts if enc is not None}
    if len(kinds) > 1:
        return concat([(None if enc is None else decode_column(enc, n), n) for enc, n in parts])
    kind = kinds.pop() if kinds else OBJ
    if kind in _SIZES:
        size = _SIZES[kind]
        bufs = [enc["v"] if enc is not None else bytes(size * n) for enc, n in parts]
        if any(len(b) != size * n for b, (_, n) in zip(bufs, parts, strict=True)):
            raise ValueError("column length differs from the row count")
        dtype = {I8: np.int64, F8: np.float64, B1: np.bool_}[kind]
        values = np.frombuffer(b"".join(bufs), dtype=dtype).copy()
        if all(enc is not None and enc.get("m") is None for enc, _ in parts):
            return Column(kind, values)
        masks = [b"\x00" * n if enc is None else b"\x01" * n if enc.get("m") is None
                 else enc["m"] for enc, n in parts]
        if any(len(m) != n for m, (_, n) in zip(masks, parts, strict=True)):
            raise ValueError("mask length differs from the row count")
        return Column(kind, values, np.frombuffer(b"".join(masks), dtype=np.bool_).copy())
    if kind not in (STR, OBJ):
        raise ValueError(f"unknown column kind {kind!r}")
    counts = np.array([n for _, n in parts], dtype=np.int64)
    nuniq = np.array([0 if enc is None else enc["n"] for enc, _ in parts], dtype=np.int64)
    codes_raw = [enc["c"] if enc is not None else b"\xff\xff\xff\xff" * n for enc, n in parts]
    if any(len(c) != 4 * n for c, (_, n) in zip(codes_raw, parts, strict=True)):
        raise ValueError("codes damaged")
    if kind == STR:
        texts = [enc["u"] for enc, _ in parts if enc is not None and enc["n"]]
        uniques: Any = (b"\x00".join(texts).decode("utf-8", "surrogatepass").split(_SEP)
                        if texts else [])
    else:
        inner = [enc["j"][1:-1] for enc, _ in parts if enc is not None and enc["n"]]
        uniques = _json_list(b"[" + b",".join(inner) + b"]")
    if not isinstance(uniques, list) or len(uniques) != int(nuniq.sum()):
        raise ValueError("dictionary damaged")
    codes = np.frombuffer(b"".join(codes_raw), dtype=np.int32).astype(np.int64)
    if len(parts) == 1:
        if len(codes) and (codes.max() >= nuniq[0] or codes.min() < -1):
            raise ValueError("codes damaged")
    else:
        limit = np.repeat(nuniq, counts)
        if (codes >= limit).any() or (codes < -1).any():
            raise ValueError("codes damaged")
        offsets = np.repeat(np.cumsum(nuniq) - nuniq, counts)
        codes = np.where(codes >= 0, codes + offsets, -1)
    return Column(kind, table=_table(uniques), codes=codes)
