"""Content hashes of the data a cell touched: DataFrames, Series, arrays and files.

Two runs on the same data must get the same hash whatever the object's identity, and a single
changed value must change it (content-exact: equal content, equal hash; any change, including
a value's type, `1` vs `'1'`, a new hash). Hashing reads buffers with xxh3-128 (several GB/s):
numeric arrays as they are, Arrow-backed columns of any type through their buffers (a sliced,
re-chunked or re-encoded array by its logical content: arrow_content.py), object columns of
strings as one joined text (no per-value Python work), and only mixed or nested object
columns (lists, dicts, arrays) value by value with type tags. A frame's columns are read from
its blocks, not as a Series each. Nothing is pickled. The type is decided from the class's
module so pandas, numpy and pyarrow are never imported here on their own.

`FingerprintCache` keeps the hash of each object the session hashed, guarded by its identity,
shape, dtypes, buffers and a sampled digest, so a cell that only reads a 2M-row frame does not
hash it again; the recorder re-hashes whatever the cell could have changed (effects.py).
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import sys
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import xxhash

from .arrow_content import arrow_chunks, column_parts
from .values import PLAIN_TYPES

MAX_DTYPES = 200
_FILE_CHUNK = 1 << 22
_SAMPLE = 64  # values per buffer in a cache guard's sampled digest
_WHOLE_GUARD_BYTES = 16384  # an array up to this size is digested whole in its guard
# Version of the hashing scheme, mixed into every hash: data hashed by an older mlops-nb gets
# a different hash (the store says which rows share data; it never compares across schemes).
_SCHEME = b"fp2"


def data_kind(obj: Any) -> str | None:
    """'DataFrame', 'Series' or 'ndarray' for data we fingerprint (subclasses too, such as a
    GeoDataFrame), else None. Cheap, and never imports pandas or numpy: if a library is not
    loaded yet, no object of it can exist."""
    cls = type(obj)
    if cls in PLAIN_TYPES:  # most names a cell binds: one set lookup
        return None
    kind = _DATA_TYPES.get(cls)
    if kind is not None:  # an instance of this type was data before: so is this one
        return kind
    base: type | None = None
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(obj, pd.DataFrame):
            kind, base = "DataFrame", pd.DataFrame
        elif isinstance(obj, pd.Series):
            kind, base = "Series", pd.Series
    np = sys.modules.get("numpy")
    if kind is None and np is not None and isinstance(obj, np.ndarray):
        kind, base = "ndarray", np.ndarray
    if base is not None and issubclass(cls, base):  # not an object posing as one
        if len(_DATA_TYPES) > 256:  # classes made cell after cell: keep few alive
            _DATA_TYPES.clear()
        _DATA_TYPES[cls] = kind  # type: ignore[assignment]
    return kind


# Types whose instances are data: an ndarray, a DataFrame is asked about several times per
# cell (capture, the fingerprint cache). Only a real subclass of what `isinstance` said yes
# to: all its instances are data alike.
_DATA_TYPES: dict[type, str] = {}


# -- values -------------------------------------------------------------------------------------
def _update_array(h: Any, arr: Any) -> None:
    import numpy as np

    h.update(str(arr.dtype).encode())
    h.update(repr(arr.shape).encode())
    if arr.dtype.hasobject:
        _update_objects(h, np.asarray(arr, dtype=object).ravel(order="C"))
        return
    buf = np.ascontiguousarray(arr)
    h.update(memoryview(buf.reshape(-1).view(np.uint8)))


def _update_objects(h: Any, values: Any) -> None:
    """A 1-D object array by content. The strings (usually all of them) are joined into one
    text in C; the positions of the other values are a bit mask, and they are hashed one by
    one with a type tag, so `[1, 2]` and `['1', '2']` differ and `None` is not `nan`."""
    import numpy as np

    n = len(values)
    h.update(b"O%d:" % n)
    items = values.tolist()
    try:
        _update_strings(h, items)
        return
    except TypeError:  # not all strings: nulls, numbers, lists...
        pass
    is_str = np.fromiter((type(v) is str for v in items), dtype=bool, count=n)
    h.update(b"m")
    h.update(np.packbits(is_str).tobytes())
    _update_strings(h, values[is_str].tolist())
    for i in np.flatnonzero(~is_str).tolist():
        _update_value(h, items[i])


def _update_strings(h: Any, items: list[str]) -> None:
    """Strings joined with NUL; when a value holds NUL itself, every length is hashed too."""
    joined = "\x00".join(items)
    n = len(items)
    if joined.count("\x00") == max(n - 1, 0):  # no NUL inside any value: the split is known
        h.update(b"s%d:" % n)
    else:
        import numpy as np

        h.update(b"l%d:" % n)
        h.update(np.fromiter(map(len, items), dtype=np.int64, count=n).tobytes())
    h.update(joined.encode("utf-8", "surrogatepass"))


def _update_value(h: Any, v: Any) -> None:
    if v is None:
        h.update(b"\x01N")
    elif isinstance(v, bool):
        h.update(b"\x01b1" if v else b"\x01b0")
    elif isinstance(v, int):
        h.update(b"\x01i%d;" % v)
    elif isinstance(v, float):
        h.update(b"\x01fnan" if math.isnan(v) else b"\x01f" + struct.pack("<d", v))
    elif isinstance(v, str):
        data = v.encode("utf-8", "surrogatepass")
        h.update(b"\x01s%d:" % len(data))
        h.update(data)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        data = bytes(v)
        h.update(b"\x01y%d:" % len(data))
        h.update(data)
    elif isinstance(v, (list, tuple)):
        h.update(b"\x01%s%d[" % (b"L" if isinstance(v, list) else b"T", len(v)))
        for x in v:
            _update_value(h, x)
    elif isinstance(v, dict):
        # Equal dicts are equal whatever their insertion order: hash items apart, sorted.
        items = sorted(_digest_of((k, x)) for k, x in v.items())
        h.update(b"\x01D%d{" % len(items))
        for d in items:
            h.update(d)
    elif isinstance(v, (set, frozenset)):
        items = sorted(_digest_of(x) for x in v)
        h.update(b"\x01S%d{" % len(items))
        for d in items:
            h.update(d)
    elif data_kind(v) == "ndarray":
        h.update(b"\x01a")
        _update_array(h, v)
    elif data_kind(v) is not None:
        h.update(b"\x01P")
        h.update(str((fingerprint(v) or {}).get("hash")).encode())
    else:
        cls = type(v)
        h.update(b"\x01o" + f"{cls.__module__}.{cls.__qualname__}".encode() + b":")
        np = sys.modules.get("numpy")
        if np is not None and isinstance(v, np.generic):
            h.update(v.tobytes())
        else:
            h.update(repr(v).encode("utf-8", "surrogatepass"))


def _digest_of(v: Any) -> bytes:
    h = xxhash.xxh3_128()
    _update_value(h, v)
    return h.digest()


def _update_extension(h: Any, values: Any) -> None:
    """A pandas extension array: categoricals by codes and categories, Arrow-backed columns
    of any type by their logical content, the rest (masked numbers, datetimes with a time
    zone, intervals...) through pandas' own hashing of their values."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        h.update(b"C1" if dtype.ordered else b"C0")
        _update_index_values(h, dtype.categories)
        h.update(np.ascontiguousarray(values.codes).tobytes())
        return
    chunks = arrow_chunks(values)
    if chunks is not None:  # Arrow-backed, any type: by logical content (arrow_content.py)
        for part in column_parts(chunks):
            if isinstance(part, bytes):
                h.update(part)
            elif isinstance(part, list):
                _update_value(h, part)
            else:
                _update_array(h, part)
        return
    if getattr(dtype, "storage", None) == "python":  # strings as Python objects, NA for null
        mask = np.asarray(values.isna(), dtype=bool)
        h.update(b"p")
        h.update(np.packbits(mask).tobytes())
        _update_objects(h, np.asarray(values, dtype=object)[~mask])
        return
    hashed = pd.util.hash_pandas_object(pd.Series(values, copy=False), index=False)
    h.update(memoryview(np.ascontiguousarray(hashed.to_numpy()).view(np.uint8)))


def _update_series_values(h: Any, ser: Any) -> None:
    import numpy as np

    dtype = ser.dtype
    h.update(str(dtype).encode())
    values = ser.array
    if isinstance(dtype, np.dtype):
        _update_array(h, ser.to_numpy())
    else:
        _update_extension(h, values)


def _update_index_values(h: Any, index: Any) -> None:
    import numpy as np
    import pandas as pd

    h.update(type(index).__name__.encode() + str(index.dtype).encode())
    if isinstance(index, pd.RangeIndex):
        h.update(f"range{index.start}:{index.stop}:{index.step}".encode())
    elif isinstance(index, pd.MultiIndex):
        for level, codes in zip(index.levels, index.codes, strict=True):
            _update_index_values(h, level)
            h.update(np.ascontiguousarray(codes).tobytes())
    elif isinstance(index.dtype, np.dtype):
        _update_array(h, index.to_numpy())
    else:
        _update_extension(h, index.array)


def fingerprint(obj: Any) -> dict[str, Any] | None:
    """{'type', 'hash', 'shape', 'dtypes'} for data objects; None for anything else."""
    kind = data_kind(obj)
    if kind is None:
        return None
    h = xxhash.xxh3_128()
    h.update(_SCHEME)
    h.update(kind.encode())
    if kind == "ndarray":
        _update_array(h, obj)
        return {"type": kind, "hash": h.hexdigest(), "shape": list(obj.shape),
                "dtypes": str(obj.dtype)}
    if kind == "Series":
        h.update(repr(obj.name).encode("utf-8", "surrogatepass"))
        _update_index_values(h, obj.index)
        _update_series_values(h, obj)
        return {"type": kind, "hash": h.hexdigest(), "shape": [len(obj)],
                "dtypes": str(obj.dtype)}
    import numpy as np

    df = obj
    _update_index_values(h, df.index)
    dtypes: dict[str, str] = {}
    in_blocks = _block_columns(df)
    heads: dict[Any, tuple[str, bytes]] = {}  # per dtype: its name, and what precedes the bytes
    for i, col in enumerate(df.columns):
        h.update(repr(col).encode("utf-8", "surrogatepass"))
        values = in_blocks[i]
        if type(values) is np.ndarray:  # what `_update_series_values` hashes of the column
            head = heads.get(values.dtype)
            if head is None:
                name = str(values.dtype)
                head = heads[values.dtype] = (
                    name, name.encode() * 2 + repr(values.shape).encode())
            dtype = head[0]
            if values.dtype.hasobject or not values.flags.c_contiguous:
                h.update(dtype.encode())
                _update_array(h, values)
            else:  # `_update_array`'s stream, without its per-call steps
                h.update(head[1])
                h.update(memoryview(values.view(np.uint8)))
        elif values is not None:  # an extension array: the column's `.array`
            dtype = str(values.dtype)
            h.update(dtype.encode())
            _update_extension(h, values)
        else:
            ser = df.iloc[:, i]
            _update_series_values(h, ser)
            dtype = str(ser.dtype)
        if i < MAX_DTYPES:
            dtypes[str(col)] = dtype
    return {"type": kind, "hash": h.hexdigest(), "shape": list(df.shape), "dtypes": dtypes}


def _block_columns(df: Any) -> list[Any]:
    """Each column's values read from its pandas block: a row of a 2-D numpy block (numbers,
    booleans, objects), or the extension array a 1-D block holds (Arrow strings, nullable
    numbers, categoricals); None for the others (datetimes) and for every column when the
    frame's blocks cannot be read. `df.iloc[:, i]` builds a Series per column, 80 us each:
    a 10,000-column frame took 0.8 s to hash, nearly all of it that."""
    import numpy as np

    out: list[Any] = [None] * df.shape[1]
    try:
        for blk in df._mgr.blocks:
            values = blk.values
            positions = blk.mgr_locs.as_array.tolist()
            if type(values) is np.ndarray:
                if values.ndim == 2:
                    for row, position in enumerate(positions):
                        out[position] = values[row]
            elif getattr(values, "ndim", 0) == 1 and len(positions) == 1:
                out[positions[0]] = values
    except Exception:  # another pandas' internals: every column through its Series
        return [None] * df.shape[1]
    return out


# -- the cache ----------------------------------------------------------------------------------
def _root_buffers(arr: Any) -> list[int]:
    """Ids of the arrays whose memory `arr` lives in (its base chain), to find views."""
    ids = [id(arr)]
    base = getattr(arr, "base", None)
    while base is not None and len(ids) < 16:
        ids.append(id(base))
        base = getattr(base, "base", None)
    return ids


def _sample_digest(h: Any, values: Any) -> None:
    """A few values spread over a mutable buffer: catches bulk rewrites identities miss."""
    n = values.size
    if n == 0:
        return
    sample = values.flat[:: max(1, n // _SAMPLE)]  # copies the sampled values only
    if sample.dtype.hasobject:
        _update_objects(h, sample)
    else:
        h.update(sample.tobytes())


def _np_array(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def _guard(obj: Any, kind: str) -> tuple[Any, ...] | None:
    """What must be unchanged for a cached hash to stand; None when it cannot be told.

    A small array (a notebook's `y`, a test split, a batch) is digested whole: cheaper than
    sampling it and reading its data pointer (`__array_interface__` builds a dict), and
    exact. Its dtype itself is kept, not its `.str`: `a.dtype = other` in place can swap one
    structured dtype for another of the same size."""
    if kind == "ndarray":
        if obj.nbytes <= _WHOLE_GUARD_BYTES and not obj.dtype.hasobject:
            return ("whole", obj.shape, obj.dtype, xxhash.xxh3_64_intdigest(obj.tobytes()))
        h = xxhash.xxh3_64()
        _sample_digest(h, obj)
        return (obj.shape, obj.strides, obj.dtype.str, obj.__array_interface__["data"],
                h.intdigest())
    h = xxhash.xxh3_64()
    mgr = getattr(obj, "_mgr", None)
    blocks = getattr(mgr, "blocks", None)
    if blocks is None:
        return None
    # Index objects are immutable: a rename or a new index is a new object.
    parts: list[Any] = [obj.shape, id(mgr), id(obj.index)]
    if kind == "DataFrame":
        parts.append(id(obj.columns))
    else:
        parts.append(repr(obj.name))
    for blk in blocks:
        values = blk.values
        parts.extend((id(values), values.dtype))
        arrow = getattr(values, "_pa_array", None)
        if arrow is not None:  # Arrow data is immutable: pandas swaps in a new array on writes
            parts.append(id(arrow))
        elif _np_array(values):
            _sample_digest(h, values)
        else:  # another extension array: sample its backing numpy data where it has one
            data = getattr(values, "_data", getattr(values, "_ndarray", None))
            parts.append(id(data))
            if _np_array(data):
                _sample_digest(h, data)
    parts.append(h.intdigest())
    return tuple(parts)


def _roots(obj: Any, kind: str) -> frozenset[int]:
    """The buffers a guarded object lives in (its blocks' too): asked only when an entry is
    stored or dropped, not on the hit that most cells are."""
    if kind == "ndarray":
        return frozenset(_root_buffers(obj))
    roots: list[int] = []
    for blk in getattr(getattr(obj, "_mgr", None), "blocks", None) or ():
        roots.extend(_root_buffers(blk.values))
    return frozenset(roots)


class FingerprintCache:
    """Fingerprints of live objects, so one nothing could have changed is not hashed again.

    An entry stands while the very object lives (a weak reference, not a reused id) and its
    guard matches: shape, dtypes, the identity of its pandas block manager and block arrays
    (an Arrow column replaced in place gets a new array), the data pointer, and a digest of
    values sampled across each buffer. The caller decides which objects a cell could have
    changed and passes them as `changed`; re-hashing one also drops the entries of objects
    sharing its buffers (`v = arr[:10]; v[0] = 1` changes `arr`).
    """

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[int, tuple[Any, tuple[Any, ...], frozenset[int],
                                               dict[str, Any]]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._slow: dict[int, Any] = {}  # id -> weak reference of objects over their budget

    def __len__(self) -> int:
        return len(self._entries)

    def fingerprint(self, obj: Any, *, changed: bool = True, kind: str | None = None
                    ) -> dict[str, Any] | None:
        """`kind`: the object's `data_kind`, when the caller knows it already."""
        kind = kind or data_kind(obj)
        if kind is None:
            return None
        key = id(obj)
        entry = self._entries.get(key)
        guard = _guard(obj, kind)
        if (not changed and entry is not None and guard is not None
                and entry[0]() is obj and entry[1] == guard):
            self._entries.move_to_end(key)
            self.hits += 1
            return dict(entry[3])
        self.misses += 1
        fp = fingerprint(obj)
        if guard is not None:
            roots = _roots(obj, kind)
            if changed or entry is not None:  # its content may be new: so is its views'
                self.invalidate_buffers(roots)
            # else first seen, unchanged: `X` and its view `X_test` must not evict each other
            self._put(key, obj, guard, roots, fp)
        return fp

    def note_slow(self, obj: Any) -> None:
        """`obj` ran out of its budget: skip it while nothing can have changed it."""
        key = id(obj)
        with contextlib.suppress(TypeError):  # not weak-referenceable: tried again next time
            self._slow[key] = weakref.ref(obj, lambda _r, k=key, s=self._slow: s.pop(k, None))

    def too_slow(self, obj: Any, *, changed: bool) -> bool:
        """True for an object that ran out of its budget and that the cell cannot have
        changed; a changed one gets another try."""
        ref = self._slow.get(id(obj))
        if ref is None:
            return False
        if changed or ref() is not obj:
            del self._slow[id(obj)]
            return False
        return True

    def forget(self, obj: Any) -> None:
        """Drop what is cached for `obj` and for whatever shares its buffers."""
        kind = data_kind(obj)
        if kind is None:
            return
        self._entries.pop(id(obj), None)
        self.invalidate_buffers(_roots(obj, kind))

    def invalidate_buffers(self, roots: Iterable[int]) -> None:
        roots = frozenset(roots)
        for key in [k for k, e in self._entries.items() if e[2] & roots]:
            del self._entries[key]

    def _put(self, key: int, obj: Any, guard: tuple[Any, ...], roots: frozenset[int],
             fp: dict[str, Any] | None) -> None:
        if fp is None:
            return
        try:
            ref = weakref.ref(obj, lambda _r, k=key, c=self._entries: c.pop(k, None))
        except TypeError:
            return
        self._entries[key] = (ref, guard, roots, dict(fp))
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)


def fingerprint_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Hash of a file's bytes; None when it does not exist (a missing file is not an error)."""
    p = Path(path)
    try:
        st = p.stat()
        if not p.is_file():
            return None
        h = xxhash.xxh3_128()
        with p.open("rb") as fh:
            while chunk := fh.read(_FILE_CHUNK):
                h.update(chunk)
    except OSError:
        return None
    return {"type": "file", "hash": h.hexdigest(), "path": str(p), "size": st.st_size}


def folder_files(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(name below the folder, '/'-separated; full path) of every file in a folder and its
    subfolders, sorted by name: what a folder read as one data set holds."""
    root = os.fspath(path)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            full = os.path.join(folder, name)
            if os.path.isfile(full):
                found.append((os.path.relpath(full, root).replace(os.sep, "/"), full))
    return sorted(found)


def fingerprint_folder(path: str | os.PathLike[str], *, max_files: int | None = None,
                       max_bytes: int | None = None) -> dict[str, Any] | None:
    """Hash of a folder read as one data set (a partitioned parquet dataset): every file's
    name below it and the hash of its bytes, in name order, so a file added, removed,
    renamed or changed changes it. None when it is no folder; over `max_files` files or
    `max_bytes` bytes the folder is described without a hash. The export's support module
    computes the same hash (`_folder_hash`)."""
    try:
        if not os.path.isdir(path):
            return None
        files = folder_files(path)
        size = sum(os.stat(full).st_size for _name, full in files)
    except OSError:
        return None
    out: dict[str, Any] = {"type": "folder", "hash": None, "path": os.fspath(path),
                           "size": size, "files": len(files)}
    if (max_files is not None and len(files) > max_files) or (
            max_bytes is not None and size > max_bytes):
        return out
    h = xxhash.xxh3_128()
    for name, full in files:
        fp = fingerprint_file(full)
        if fp is None:  # removed while hashed
            return out
        h.update(name.encode("utf-8", "surrogateescape") + b"\0" + fp["hash"].encode() + b"\n")
    out["hash"] = h.hexdigest()
    return out

