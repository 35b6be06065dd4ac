from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_nb.capture.fingerprint import (
    FingerprintCache,
    data_kind,
    fingerprint,
    fingerprint_file,
    fingerprint_folder,
)


def test_kinds():
    assert data_kind(pd.DataFrame()) == "DataFrame"
    assert data_kind(pd.Series(dtype=float)) == "Series"
    assert data_kind(np.zeros(2)) == "ndarray"
    assert data_kind([1, 2]) is None and data_kind(np.float64(1)) is None


def test_same_content_same_hash_any_identity():
    a = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"], "c": pd.Categorical(["u", "v"])})
    b = a.copy(deep=True)
    assert fingerprint(a) == fingerprint(b)


def test_every_change_changes_the_hash():
    base = pd.DataFrame({"x": [1.0, 2.0, 3.0], "s": ["a", "b", "c"]})
    variants = [
        base.assign(x=[1.0, 2.0, 3.5]),
        base.assign(s=["a", "b", "d"]),
        base.rename(columns={"x": "y"}),
        base.set_axis([10, 11, 12]),
        base.astype({"x": "float32"}),
        base.iloc[:2],
        base[["s", "x"]],
    ]
    hashes = {fingerprint(v)["hash"] for v in variants}
    assert len(hashes) == len(variants)
    assert fingerprint(base)["hash"] not in hashes


def test_profile_fields():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    fp = fingerprint(df)
    assert fp["type"] == "DataFrame" and fp["shape"] == [2, 2]
    assert fp["dtypes"]["a"] == "int64" and len(fp["hash"]) == 32


def test_arrays_non_contiguous_and_object():
    arr = np.arange(12.0).reshape(3, 4)
    assert fingerprint(arr.T)["hash"] == fingerprint(np.ascontiguousarray(arr.T))["hash"]
    assert fingerprint(arr.T)["hash"] != fingerprint(arr)["hash"]  # shape differs
    obj = np.array(["a", None, 3], dtype=object)
    assert fingerprint(obj)["hash"] == fingerprint(obj.copy())["hash"]
    assert fingerprint(obj)["dtypes"] == "object"


def test_series_name_and_values():
    s = pd.Series([1, 2], name="a")
    assert fingerprint(s)["hash"] != fingerprint(s.rename("b"))["hash"]
    assert fingerprint(s)["hash"] == fingerprint(pd.Series([1, 2], name="a"))["hash"]


def test_files(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a\n1\n")
    first = fingerprint_file(p)
    assert first["size"] == 4
    p.write_text("a\n2\n")
    assert fingerprint_file(p)["hash"] != first["hash"]
    assert fingerprint_file(tmp_path / "missing.csv") is None
    assert fingerprint_file(tmp_path) is None


def test_subclasses_are_fingerprinted():
    class Frame(pd.DataFrame):
        pass

    class Arr(np.ndarray):
        pass

    f = Frame({"a": [1, 2]})
    assert data_kind(f) == "DataFrame"
    assert fingerprint(f)["hash"] == fingerprint(pd.DataFrame({"a": [1, 2]}))["hash"]
    assert data_kind(np.zeros(3).view(Arr)) == "ndarray"


# -- content-exact object, nested, Arrow, categorical and sliced columns ------------------------
def _h(values, dtype=None) -> str:
    return fingerprint(pd.Series(values, dtype=dtype))["hash"]


def test_object_columns_distinguish_types():
    assert _h([1, 2], object) != _h(["1", "2"], object)
    assert _h([None, "a"], object) != _h([float("nan"), "a"], object)
    assert _h([1, 2.0], object) != _h([1.0, 2], object)
    assert _h([True, 1], object) != _h([1, True], object)
    assert _h(["a\x00b"], object) != _h(["a", "b"], object)
    assert _h(["a\x00", "b"], object) != _h(["a", "\x00b"], object)
    assert _h([["a", "b"], 1], object) != _h(["a", "b", 1], object)


def test_columns_of_lists_dicts_and_arrays_are_fingerprinted_by_content():
    lists = pd.Series([[1, 2], [3]])
    assert _h([[1, 2], [3]]) == fingerprint(lists)["hash"]
    assert _h([[1, 2], [3]]) != _h([[1, 2], [4]])
    assert _h([[1, 2], [3]]) != _h([["1", "2"], ["3"]])
    assert _h([{"a": 1, "b": 2}]) == _h([{"b": 2, "a": 1}])  # equal dicts, any order
    assert _h([{"a": 1}]) != _h([{"a": 2}])
    arrays = [np.arange(3), np.zeros(2)]
    assert _h(arrays, object) == _h([a.copy() for a in arrays], object)
    changed = [np.arange(3), np.ones(2)]
    assert _h(arrays, object) != _h(changed, object)
    assert _h([np.arange(3)], object) != _h([np.arange(3.0)], object)


def test_arrow_strings_hash_by_logical_content():
    values = ["alpha", None, "", "délta", "e" * 100]
    whole = pd.Series(values, dtype="string[pyarrow]")
    # re-chunked and sliced arrays: same content, same hash
    parts = pd.concat([pd.Series(values[:2], dtype="string[pyarrow]"),
                       pd.Series(values[2:], dtype="string[pyarrow]")], ignore_index=True)
    sliced = pd.Series(["junk", *values, "tail"], dtype="string[pyarrow]").iloc[1:-1]
    sliced = sliced.reset_index(drop=True)
    assert fingerprint(parts)["hash"] == fingerprint(whole)["hash"]
    assert fingerprint(sliced)["hash"] == fingerprint(whole)["hash"]
    for i in range(len(values)):
        other = list(values)
        other[i] = "x" if values[i] is None else None
        assert fingerprint(pd.Series(other, dtype="string[pyarrow]"))["hash"] != \
            fingerprint(whole)["hash"]
    assert fingerprint(pd.Series(["ab", "c"], dtype="string[pyarrow]"))["hash"] != \
        fingerprint(pd.Series(["a", "bc"], dtype="string[pyarrow]"))["hash"]


_texts = st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=12)


def _forms(values: list) -> dict[str, pd.Series]:
    """One column's content in each storage the fingerprint must handle."""
    forms = {
        "object": pd.Series(values, dtype=object),
        "categorical": pd.Series(pd.Categorical(values, categories=sorted(
            {v for v in values if v is not None}))),
    }
    forms["arrow"] = pd.Series(values, dtype="string[pyarrow]")
    padded = pd.Series(["pad", *values, "pad"], dtype="string[pyarrow]")
    forms["sliced"] = padded.iloc[1:len(values) + 1].reset_index(drop=True)
    return forms


@settings(max_examples=60, deadline=None)
@given(_texts, _texts)
def test_content_exact_for_every_storage(a, b):
    fa, fb = _forms(a), _forms(b)
    again = _forms(list(a))
    for kind in fa:
        ha = fingerprint(fa[kind])["hash"]
        assert ha == fingerprint(again[kind])["hash"], kind  # equal content, equal hash
        if a != b:
            assert ha != fingerprint(fb[kind])["hash"], kind  # any change, a new hash
    assert fingerprint(fa["arrow"])["hash"] == fingerprint(fa["sliced"])["hash"]


# -- the cache ----------------------------------------------------------------------------------
def test_cache_reuses_an_unchanged_object_and_rehashes_a_changed_one():
    cache = FingerprintCache()
    df = pd.DataFrame({"a": np.arange(1000), "s": [f"v{i}" for i in range(1000)]})
    first = cache.fingerprint(df, changed=False)
    assert cache.fingerprint(df, changed=False) == first and cache.hits == 1
    df.loc[5, "a"] = -1  # what the recorder marks changed: the cell stored into df
    assert cache.fingerprint(df, changed=True)["hash"] != first["hash"]
    df["a"] = np.arange(1000)  # a replaced column is seen by the guard alone
    assert cache.fingerprint(df, changed=False)["hash"] == first["hash"]


def test_cache_guard_sees_replaced_buffers_and_views():
    cache = FingerprintCache()
    arr = np.arange(100.0)
    before = cache.fingerprint(arr, changed=False)
    view = arr[:10]
    view[0] = 99.0
    cache.fingerprint(view, changed=True)  # rehashing a view drops what shares its memory
    assert cache.fingerprint(arr, changed=False)["hash"] != before["hash"]
    arr[:] = 7.0  # a bulk rewrite the cell did not name is caught by the sampled digest
    again = cache.fingerprint(arr, changed=False)
    assert again == fingerprint(arr)


def test_cache_guard_of_a_small_array_is_its_whole_content():
    """An array of a few KB is digested whole in its guard: a change the cell did not name,
    at a position a sampled digest skips, or its dtype swapped in place for another of the
    same size (same `.str`), is never served a stale fingerprint."""
    cache = FingerprintCache()
    arr = np.arange(1000.0)  # 8 KB: the sampled digest reads every 15th value
    cache.fingerprint(arr, changed=False)
    arr[1] = -1.0
    assert cache.fingerprint(arr, changed=False) == fingerprint(arr)
    assert cache.hits == 0
    assert cache.fingerprint(arr, changed=False) == fingerprint(arr) and cache.hits == 1
    rec = np.zeros(4, dtype=[("x", "<f8")])
    first = cache.fingerprint(rec, changed=False)
    rec.dtype = np.dtype([("y", "<f8")])  # the same bytes, another dtype of the same `.str`
    assert cache.fingerprint(rec, changed=False) == fingerprint(rec) != first


def test_cache_never_serves_a_new_object_at_a_reused_id():
    cache = FingerprintCache()
    for i in range(50):
        arr = np.full(10, float(i))
        assert cache.fingerprint(arr, changed=False) == fingerprint(arr)
        del arr


def test_arrow_32_bit_offsets_chunked_and_sliced_hash_alike():
    import pyarrow as pa

    values = ["alpha", None, "", "délta", "e" * 100, "f"]

    def frame(arr):
        return pd.Series(pd.arrays.ArrowExtensionArray(arr))

    whole = frame(pa.chunked_array([pa.array(values, pa.string())]))
    chunked = frame(pa.chunked_array([pa.array(values[:3], pa.string()),
                                      pa.array(values[3:], pa.string())]))
    sliced = frame(pa.chunked_array([pa.array(["x", *values], pa.string()).slice(1)]))
    assert fingerprint(whole)["hash"] == fingerprint(chunked)["hash"] == \
        fingerprint(sliced)["hash"]
    changed = frame(pa.chunked_array([pa.array([*values[:-1], "g"], pa.string())]))
    assert fingerprint(changed)["hash"] != fingerprint(whole)["hash"]


def test_data_kind_knows_subclasses_and_is_not_fooled_by_a_posing_object():
    import numpy as np
    import pandas as pd

    from mlops_nb.capture.fingerprint import data_kind

    class Frame(pd.DataFrame):
        @property
        def _constructor(self):
            return Frame

    class Poser:  # claims to be an ndarray through __class__: isinstance believes it
        @property
        def __class__(self):
            return np.ndarray

    for _ in range(2):  # asked again, the remembered answer is the same
        assert data_kind(Frame({"a": [1]})) == "DataFrame"
        assert data_kind(pd.Series([1])) == "Series"
        assert data_kind(np.arange(3)) == "ndarray"
        assert data_kind(np.arange(3).view(np.ma.MaskedArray)) == "ndarray"
        assert data_kind(1.5) is None and data_kind([1, 2]) is None
        assert data_kind(Poser()) == "ndarray"  # what isinstance says, as before
    from mlops_nb.capture import fingerprint

    assert Poser not in fingerprint._DATA_TYPES  # but its type is not remembered as data


# -- Arrow columns of any type (arrow_content.py) ----------------------------------------------
def _arrow_series(*arrays) -> pd.Series:
    import pyarrow as pa

    return pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array(list(arrays))))


def _arrow_forms(values: list, typ) -> dict[str, pd.Series]:
    """One Arrow column's content stored whole, in two chunks, and as a slice of a longer
    array: the same logical content in three layouts."""
    import pyarrow as pa

    whole = pa.array(values, typ, from_pandas=False)
    cut = len(values) // 2
    padded = pa.array([values[0] if values else None, *values, None], typ, from_pandas=False)
    return {"whole": _arrow_series(whole),
            "chunked": _arrow_series(whole.slice(0, cut), whole.slice(cut)),
            "sliced": _arrow_series(padded.slice(1, len(values)))}


_ints = st.one_of(st.none(), st.integers(-3, 3))
_nested = {
    "list": (st.lists(st.one_of(st.none(), st.lists(_ints, max_size=3)), min_size=1,
                      max_size=8), lambda pa: pa.list_(pa.int64())),
    "struct": (st.lists(st.one_of(st.none(), st.fixed_dictionaries(
        {"a": _ints, "b": st.one_of(st.none(), st.text(max_size=3))})), min_size=1, max_size=8),
        lambda pa: pa.struct([("a", pa.int64()), ("b", pa.string())])),
    "float": (st.lists(st.one_of(st.none(), st.floats(allow_nan=True)), min_size=1,
                       max_size=8), lambda pa: pa.float64()),
}


def _same_floats(a: list, b: list) -> bool:
    """Equal as stored: NaN equals NaN, None only None, and 0.0 is not -0.0."""
    import struct

    def key(v):
        return None if v is None else struct.pack("<d", v)

    return [key(v) for v in a] == [key(v) for v in b]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_arrow_nested_and_numeric_columns_are_content_exact(data):
    import pyarrow as pa

    for kind, (values_of, type_of) in _nested.items():
        typ = type_of(pa)
        a, b = data.draw(values_of, label=kind), data.draw(values_of, label=kind)
        fa, fb = _arrow_forms(a, typ), _arrow_forms(b, typ)
        hashes = {form: fingerprint(s)["hash"] for form, s in fa.items()}
        assert len(set(hashes.values())) == 1, (kind, a, hashes)  # any layout, one hash
        equal = _same_floats(a, b) if kind == "float" else a == b
        assert (fingerprint(fb["whole"])["hash"] == hashes["whole"]) == equal, (kind, a, b)


def test_arrow_columns_hash_by_values_not_by_encoding_or_stale_bytes():
    import pyarrow as pa
    import pyarrow.compute as pc

    nan, L = float("nan"), pa.list_(pa.int64())
    # pandas' own hashing folds a null into NaN: here they differ
    assert fingerprint(_arrow_series(pa.array([nan, None], from_pandas=False)))["hash"] != \
        fingerprint(_arrow_series(pa.array([nan, nan], from_pandas=False)))["hash"]
    # a null list whose slot still spans child values hashes as a clean null
    stale = pa.ListArray.from_arrays(pa.array([0, 1, 3, 4]), pa.array([1, 7, 7, 3]),
                                     mask=pa.array([False, True, False]))
    assert fingerprint(_arrow_series(stale))["hash"] == \
        fingerprint(_arrow_series(pa.array([[1], None, [3]], L)))["hash"]
    # chunks with different dictionaries: the decoded values decide
    assert fingerprint(_arrow_series(pa.array(["x", "y"]).dictionary_encode(),
                                     pa.array(["y"]).dictionary_encode()))["hash"] == \
        fingerprint(_arrow_series(pa.array(["x", "y", "y"]).dictionary_encode()))["hash"]
    # encodings pandas cannot hash itself: views, run ends, maps, unions, fixed-size binaries
    pairs = [
        (pa.array(["a", "b"], pa.string_view()), pa.array(["a", "c"], pa.string_view())),
        (pc.run_end_encode(pa.array([1, 1, None])), pc.run_end_encode(pa.array([1, 1, 1]))),
        (pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int64())),
         pa.array([[("a", 2)]], pa.map_(pa.string(), pa.int64()))),
        (pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()),
                                   [pa.array([1, 2]), pa.array(["a", "b"])]),
         pa.UnionArray.from_sparse(pa.array([0, 0], pa.int8()),
                                   [pa.array([1, 2]), pa.array(["a", "b"])])),
        (pa.array([b"ab"], pa.binary(2)), pa.array([b"ac"], pa.binary(2))),
    ]
    for one, other in pairs:
        assert fingerprint(_arrow_series(one))["hash"] != \
            fingerprint(_arrow_series(other))["hash"], one.type
    frame = pd.DataFrame({"tokens": _arrow_series(pa.array([[1], [2, 3]], L)), "x": [1, 2]})
    assert fingerprint(frame)["hash"] == fingerprint(frame.copy())["hash"]


# -- wide frames: columns read from their blocks --------------------------------------------
_column_kinds = st.sampled_from(["float", "int", "bool", "object", "str", "datetime", "Int64",
                                 "tz", "category", "list"])


def _column(kind: str, n: int, seed: int) -> pd.Series:
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    values = {
        "float": lambda: rng.normal(size=n),
        "int": lambda: rng.integers(-5, 5, n),
        "bool": lambda: rng.random(n) < 0.5,
        "object": lambda: pd.Series([("x", 1)[i % 2] for i in range(n)], dtype=object),
        "str": lambda: pd.Series([f"s{i}" for i in rng.integers(0, 3, n)], dtype="str"),
        "datetime": lambda: pd.Series(pd.to_datetime(rng.integers(0, 10**9, n), unit="s")),
        "Int64": lambda: pd.Series(rng.integers(0, 3, n), dtype="Int64"),
        "tz": lambda: pd.Series(pd.to_datetime(rng.integers(0, 10**9, n), unit="s", utc=True)),
        "category": lambda: pd.Series(pd.Categorical(rng.choice(["a", "b"], n))),
        "list": lambda: _arrow_series(pa.array([[int(v)] for v in rng.integers(0, 3, n)],
                                               pa.list_(pa.int64()))),
    }[kind]()
    return pd.Series(values)


@settings(max_examples=40, deadline=None)
@given(st.lists(_column_kinds, min_size=1, max_size=8), st.integers(0, 6),
       st.integers(0, 10**6))
def test_a_frame_hashes_alike_whatever_its_blocks(kinds, n, seed):
    """Columns are read from their blocks (the per-column Series were most of the time a
    wide frame took): the hash is the per-Series one, whatever the layout."""
    import mlops_nb.capture.fingerprint as fp

    columns = {f"c{i}": _column(kind, n, seed + i) for i, kind in enumerate(kinds)}
    consolidated = pd.DataFrame(columns)
    split = pd.DataFrame(index=range(n))
    for name, col in columns.items():  # one block per column, in insertion order
        split[name] = col.copy()
    reordered = consolidated[list(reversed(columns))][list(columns)]  # a take: new blocks
    hashes = {fingerprint(df)["hash"] for df in (consolidated, split, reordered)}
    assert len(hashes) == 1
    real = fp._block_columns
    try:
        fp._block_columns = lambda df: [None] * df.shape[1]  # every column through its Series
        assert fingerprint(consolidated)["hash"] in hashes
    finally:
        fp._block_columns = real


def test_a_wide_frame_with_duplicate_names_and_strided_blocks():
    wide = pd.DataFrame(np.arange(60.0).reshape(3, 20), columns=["a"] * 20)
    strided = pd.DataFrame(np.asfortranarray(np.arange(60.0).reshape(3, 20)),
                           columns=["a"] * 20)
    assert fingerprint(wide)["hash"] == fingerprint(strided)["hash"]
    swapped = wide.copy()
    swapped.iloc[0, [3, 4]] = swapped.iloc[0, [4, 3]].to_numpy()
    assert fingerprint(swapped)["hash"] != fingerprint(wide)["hash"]


def test_arrow_columns_hash_with_a_pyarrow_older_than_views(monkeypatch):
    """pyproject accepts pyarrow 14; view layouts and their type tests came in 16. Without
    those tests a list or number column still hashes, as it did."""
    import pyarrow as pa

    lists = _arrow_series(pa.array([[1, 2], None, [3]], pa.list_(pa.int64())))
    numbers = _arrow_series(pa.array([1.5, None]))
    before = fingerprint(lists)["hash"], fingerprint(numbers)["hash"]
    for test in ("is_string_view", "is_binary_view", "is_list_view", "is_large_list_view"):
        monkeypatch.delattr(pa.types, test)
    assert (fingerprint(lists)["hash"], fingerprint(numbers)["hash"]) == before


def test_a_folder_hash_is_its_files_names_and_bytes_as_the_export_computes_it(tmp_path):
    """A folder read as one data set (a partitioned parquet dataset): the hash capture
    records is the one the export's support module checks, and it changes with a file's
    bytes, a file added and a file renamed, not with the folder's own timestamps."""
    import mlops_nb.exporting.support as support

    root = tmp_path / "events"
    (root / "plan=a").mkdir(parents=True)
    (root / "plan=b").mkdir()
    (root / "plan=a" / "part-0.parquet").write_bytes(b"aaa")
    (root / "plan=b" / "part-0.parquet").write_bytes(b"bb")
    fp = fingerprint_folder(root)
    assert fp == {"type": "folder", "hash": fp["hash"], "path": str(root), "size": 5,
                  "files": 2}
    assert fp["hash"] == support._folder_hash(str(root))
    assert fingerprint_folder(root / "plan=a" / "part-0.parquet") is None
    assert fingerprint_folder(root, max_files=1)["hash"] is None
    assert fingerprint_folder(root, max_bytes=4)["hash"] is None
    seen = {fp["hash"]}
    for change in (lambda: (root / "plan=b" / "part-0.parquet").write_bytes(b"bc"),
                   lambda: (root / "plan=b" / "part-1.parquet").write_bytes(b""),
                   lambda: (root / "plan=b" / "part-1.parquet").rename(root / "part-1")):
        change()
        now = fingerprint_folder(root)["hash"]
        assert now not in seen and now == support._folder_hash(str(root))
        seen.add(now)
