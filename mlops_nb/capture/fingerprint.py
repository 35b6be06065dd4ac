"""Content hashes of the data a cell touched: DataFrames, Series, arrays and files.

Two runs on the same data must get the same hash whatever the object's identity, and a single
changed value must change it. Hashing reads the underlying buffers with xxh3-128 (several GB/s)
and uses pandas' vectorised hashing only for object columns; nothing is pickled. The type is
decided from the class's module so pandas and numpy are never imported here on their own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import xxhash

MAX_DTYPES = 200
_FILE_CHUNK = 1 << 22


def data_kind(obj: Any) -> str | None:
    """'DataFrame', 'Series' or 'ndarray' for data we fingerprint (subclasses too, such as a
    GeoDataFrame), else None. Cheap, and never imports pandas or numpy: if a library is not
    loaded yet, no object of it can exist."""
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(obj, pd.DataFrame):
            return "DataFrame"
        if isinstance(obj, pd.Series):
            return "Series"
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return "ndarray"
    return None


def _update_array(h: Any, arr: Any) -> None:
    import numpy as np

    h.update(str(arr.dtype).encode())
    h.update(repr(arr.shape).encode())
    if arr.dtype.hasobject:
        import pandas as pd

        h.update(pd.util.hash_array(np.asarray(arr, dtype=object).ravel(order="C")).tobytes())
        return
    buf = np.ascontiguousarray(arr)
    h.update(memoryview(buf.reshape(-1).view(np.uint8)))


def _update_series_values(h: Any, ser: Any) -> None:
    import numpy as np
    import pandas as pd

    dtype = ser.dtype
    h.update(str(dtype).encode())
    if isinstance(dtype, np.dtype) and not dtype.hasobject:
        _update_array(h, ser.to_numpy())
    else:
        hashed = pd.util.hash_pandas_object(ser, index=False).to_numpy()
        h.update(memoryview(np.ascontiguousarray(hashed).view(np.uint8)))


def _update_index(h: Any, index: Any) -> None:
    import numpy as np
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        h.update(f"range{index.start}:{index.stop}:{index.step}".encode())
    else:
        hashed = pd.util.hash_pandas_object(index, index=False).to_numpy()
        h.update(memoryview(np.ascontiguousarray(hashed).view(np.uint8)))


def fingerprint(obj: Any) -> dict[str, Any] | None:
    """{'type', 'hash', 'shape', 'dtypes'} for data objects; None for anything else."""
    kind = data_kind(obj)
    if kind is None:
        return None
    h = xxhash.xxh3_128()
    h.update(kind.encode())
    if kind == "ndarray":
        _update_array(h, obj)
        return {"type": kind, "hash": h.hexdigest(), "shape": list(obj.shape),
                "dtypes": str(obj.dtype)}
    if kind == "Series":
        h.update(repr(obj.name).encode("utf-8", "surrogatepass"))
        _update_index(h, obj.index)
        _update_series_values(h, obj)
        return {"type": kind, "hash": h.hexdigest(), "shape": [len(obj)],
                "dtypes": str(obj.dtype)}
    df = obj
    _update_index(h, df.index)
    dtypes: dict[str, str] = {}
    for i, col in enumerate(df.columns):
        h.update(repr(col).encode("utf-8", "surrogatepass"))
        ser = df.iloc[:, i]
        _update_series_values(h, ser)
        if i < MAX_DTYPES:
            dtypes[str(col)] = str(ser.dtype)
    return {"type": kind, "hash": h.hexdigest(), "shape": list(df.shape), "dtypes": dtypes}


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


