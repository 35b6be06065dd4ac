"""Arrow-backed columns reduced to their logical content, for the data fingerprint.

Arrow keeps a column as chunks of arrays that may be slices of larger buffers; a null is a
bit in a validity bitmap while its slot keeps whatever bytes; dictionary, run-end and view
encodings store the same values in other layouts. The same values must hash alike however
they are stored, and a null must differ from every value (a float NaN included, which
pandas' own `hash_pandas_object` folds into null). So a column becomes its logical parts:
the positions of its nulls, then its valid values. Strings and binaries are streamed by
their bytes and value ends across chunks, without a copy in the common case; fixed-width
values (numbers, times, decimals) are their value bytes, in place unless a null's slot must
be zeroed; lists are their lengths
and their flattened values; structs go field by field; anything else becomes Python values.

`column_parts` yields what to hash, in order (fingerprint.py hashes them): bytes; numpy
arrays, hashed with their dtype and shape; lists of Python values, hashed value by value
with type tags. This module knows Arrow's layouts, nothing of how values are hashed. pyarrow
is only imported when such a column exists, so it is loaded already.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import xxhash

Part = Any  # bytes | numpy.ndarray | list


def arrow_chunks(array: Any) -> list[Any] | None:
    """The Arrow chunks behind a pandas extension array, when it has them."""
    if not type(array).__module__.startswith("pandas"):
        return None
    to_arrow = getattr(array, "__arrow_array__", None)
    if to_arrow is None or "pyarrow" not in sys.modules:
        return None
    arr = to_arrow()
    return list(getattr(arr, "chunks", [arr]))


def column_parts(chunks: list[Any]) -> Iterator[Part]:
    """The logical content of one column's chunks (see the module docstring)."""
    import pyarrow as pa

    if not chunks:
        yield b"A0"
        return
    if not _string_like(chunks[0].type):
        chunks = [_plain_encoding(chunk) for chunk in chunks]
    if _string_like(chunks[0].type):
        yield from _string_parts(chunks)
        return
    yield from _array_parts(chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks))


def _string_like(typ: Any) -> bool:
    import pyarrow as pa

    return (pa.types.is_string(typ) or pa.types.is_large_string(typ)
            or pa.types.is_binary(typ) or pa.types.is_large_binary(typ))


def _is(typ: Any, test: str) -> bool:
    """`pa.types.<test>(typ)` for the layouts newer than the oldest pyarrow we accept (views
    came in pyarrow 16): an older pyarrow has no such test, and no such arrays either."""
    import pyarrow as pa

    check = getattr(pa.types, test, None)
    return check is not None and check(typ)


def _plain_encoding(arr: Any) -> Any:
    """The same values in a plain layout: an extension type's storage, a dictionary decoded
    (a null in the dictionary itself is a null), run ends expanded, a view cast to the
    offsets layout. Peeled one at a time: an extension of a dictionary, and so on."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for _ in range(8):
        typ = arr.type
        if isinstance(typ, pa.ExtensionType):
            arr = arr.storage
        elif pa.types.is_dictionary(typ):
            arr = arr.dictionary_decode()
        elif _is(typ, "is_run_end_encoded"):
            arr = pc.run_end_decode(arr)
        elif _is(typ, "is_string_view"):
            arr = arr.cast(pa.large_string())
        elif _is(typ, "is_binary_view"):
            arr = arr.cast(pa.large_binary())
        else:
            break
    return arr


def _array_parts(arr: Any) -> Iterator[Part]:
    """One array's content: its length and null positions, then its values (a null's slot
    left out, or zeroed where values have a fixed width)."""
    import numpy as np
    import pyarrow as pa

    arr = _plain_encoding(arr)
    typ = arr.type
    if _string_like(typ):
        yield from _string_parts([arr])
        return
    n, nulls = len(arr), arr.null_count
    yield b"a%d:%d:" % (n, nulls)
    if pa.types.is_null(typ):
        return
    valid = None
    if nulls:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        yield np.flatnonzero(~valid).astype(np.int64)
    if _list_like(typ):
        lengths, values = _list_parts(arr, valid)
        yield lengths
        yield from _array_parts(values)
        return
    width = _byte_width(typ)
    if width:  # numbers, times, decimals, fixed-size binaries: the values' own bytes
        yield _fixed_width_values(arr, width, valid)
        return
    if valid is not None:  # a null slot keeps whatever it holds: not content
        arr = arr.filter(pa.array(valid))
    if pa.types.is_struct(typ):
        for i, child in enumerate(arr.flatten()):
            yield typ.field(i).name.encode("utf-8", "surrogatepass") + b"\x00"
            yield from _array_parts(child)
        return
    try:  # booleans (bits), and whatever Arrow converts
        yield arr.to_numpy(zero_copy_only=False)
    except (pa.ArrowException, TypeError, ValueError):
        yield arr.to_pylist()  # unions and the like: as Python values


def _fixed_width_values(arr: Any, width: int, valid: Any) -> Any:
    """The values' bytes in place (this slice of the buffer, no copy), a null slot's bytes
    zeroed: which slots are null was hashed before, and zeroing is a third of the time of
    leaving the slots out (`filter`) for a column with a few nulls."""
    import numpy as np

    buf = arr.buffers()[1]
    n = len(arr)
    if buf is None or not n:
        return np.zeros(0, dtype=np.uint8)
    dtype = np.dtype(f"u{width}") if width in (1, 2, 4, 8) else np.dtype((np.uint8, width))
    values = np.frombuffer(buf, dtype=dtype, count=arr.offset + n)[arr.offset:]
    if valid is None:
        return values
    return np.where(valid if values.ndim == 1 else valid[:, None], values, 0)


def _list_like(typ: Any) -> bool:
    import pyarrow as pa

    return (pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_map(typ)
            or pa.types.is_fixed_size_list(typ) or _is(typ, "is_list_view")
            or _is(typ, "is_large_list_view"))


def _list_parts(arr: Any, valid: Any) -> tuple[Any, Any]:
    """The valid lists' lengths (int64) and their values, flattened in order. A null list's
    slot may still span values in the child array: they are left out."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = arr.type
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_map(typ):
        offsets = arr.offsets.to_numpy(zero_copy_only=False)  # this slice's n + 1 offsets
        lengths = np.diff(offsets).astype(np.int64)
        start = int(offsets[0]) if len(offsets) else 0
        values = arr.values.slice(start, int(offsets[-1]) - start if len(offsets) else 0)
        if valid is not None:
            if lengths[~valid].any():
                values = values.filter(pa.array(np.repeat(valid, lengths)))
            lengths = lengths[valid]
        return lengths, values
    if valid is not None:  # fixed-size lists and list views: Arrow's own kernels
        arr = arr.filter(pa.array(valid))
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)
    return lengths, arr.flatten()


def _byte_width(typ: Any) -> int:
    """Bytes per value of a fixed-width type stored one value per slot; 0 for bits (booleans)
    and variable-width or nested types."""
    import pyarrow as pa

    if pa.types.is_boolean(typ) or pa.types.is_nested(typ):
        return 0
    try:
        bits = typ.bit_width
    except ValueError:
        return 0
    return bits // 8 if bits % 8 == 0 else 0


def _string_parts(chunks: list[Any]) -> Iterator[Part]:
    """(large_)string/binary chunks by their buffers: the bytes, each value's end and the
    null positions, each streamed across chunks so re-chunking or slicing keeps the hash."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = chunks[0].type
    off_dtype = np.int32 if pa.types.is_string(typ) or pa.types.is_binary(typ) else np.int64
    h_data, h_ends, h_valid = xxhash.xxh3_128(), xxhash.xxh3_128(), xxhash.xxh3_128()
    total = nulls = 0
    size = 0  # bytes of data so far: where the next chunk's values start in the whole column
    for chunk in chunks:
        n = len(chunk)
        if n == 0:
            continue
        total += n
        offs = _offsets(chunk, off_dtype)
        if chunk.null_count:
            nulls += chunk.null_count
            valid = chunk.is_valid().to_numpy(zero_copy_only=False)
            # positions of the nulls in the whole column: the same however it is chunked
            h_valid.update((np.flatnonzero(~valid) + (total - n)).astype(np.int64).tobytes())
            if np.diff(offs)[~valid].any():  # a null slot may keep bytes: not content
                chunk = pc.fill_null(chunk, "" if pa.types.is_string(typ)
                                     or pa.types.is_large_string(typ) else b"")
                offs = _offsets(chunk, off_dtype)
        # Each value's end in the column's data as int64: the same stream however the column
        # is chunked or sliced, and the common case (one chunk from 0) is hashed in place.
        ends = offs[1:]
        if offs[0] != size or ends.dtype != np.int64:
            ends = ends.astype(np.int64) - (int(offs[0]) - size)
        h_ends.update(memoryview(np.ascontiguousarray(ends)).cast("B"))
        data = chunk.buffers()[2]
        if data is not None and offs[-1] > offs[0]:
            h_data.update(memoryview(data)[int(offs[0]):int(offs[-1])])
        size += int(offs[-1]) - int(offs[0])
    yield b"A%d:%d:" % (total, nulls)
    yield h_data.digest() + h_ends.digest() + (h_valid.digest() if nulls else b"")


def _offsets(chunk: Any, dtype: Any) -> Any:
    """The chunk's n + 1 value offsets into its data buffer (a view, no copy)."""
    import numpy as np

    return np.frombuffer(chunk.buffers()[1], dtype=dtype)[chunk.offset:
                                                         chunk.offset + len(chunk) + 1]
