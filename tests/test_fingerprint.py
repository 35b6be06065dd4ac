from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_nb.capture.fingerprint import data_kind, fingerprint, fingerprint_file


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
