"""The columnar run index: the fast listing path gives the very frame the slow path gives.

The slow path is the reference: every segment parsed in full, each run's summary row built
and the frame inferred from lists (what MLflow's runs go through). The fast path reads the
typed summaries the writer left (or a reader rebuilt) and decodes whole columns at once.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import mlops_nb as mnb
from mlops_nb.records import CellRun
from mlops_nb.store.columnar import (
    concat_encoded,
    decode_column,
    encode_column,
    plain_values,
    str_values,
)
from mlops_nb.store.index import BASE_COLUMNS, Columns, summary_row
from mlops_nb.store.layout import INDEX_DIR, index_path_for
from mlops_nb.store.reader import RunColumns, StoreReader
from mlops_nb.store.writer import SessionWriter
from mlops_nb.table import runs_frame


def reference_frame(home: Path, experiment: str | None = None) -> pd.DataFrame:
    """The slow path: parse every segment, one summary row per run, a frame from lists."""
    reader = StoreReader(home)
    cols = Columns()
    for cr in reader.iter_cell_runs():
        if cr.is_run:
            cols.add_row(summary_row(cr))
    data, n = cols.cols, cols.n
    if experiment is not None:  # columns no run of the experiment sets are left out
        keep = [i for i, e in enumerate(data["experiment"]) if e == experiment]
        data = {k: [v[i] for i in keep] for k, v in data.items()}
        data = {k: v for k, v in data.items() if k in BASE_COLUMNS or any(x is not None for x in v)}
        n = len(keep)
    return runs_frame(RunColumns(data, n, reader.problems))


def assert_same(fast: pd.DataFrame, ref: pd.DataFrame) -> None:
    from mlops_nb.api import with_mlflow_names

    ref = with_mlflow_names(ref)  # mnb.runs() adds MLflow's column names (run_id, ...)
    assert list(fast.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(fast, ref, check_exact=True)
    assert fast.attrs["problems"] == ref.attrs["problems"]
    nones = {k: frozenset(v) for k, v in (fast.attrs.get("params_none") or {}).items() if v}
    ref_nones = {k: frozenset(v) for k, v in (ref.attrs.get("params_none") or {}).items() if v}
    assert nones == ref_nones


# -- generated runs --------------------------------------------------------------------------
HOSTILE_KEYS = ["lr", "max_depth", "clf.max_depth", "a b", "ключ", "=cmd|' /C calc'!A0",
                "\u202eevil", "x\x00y", "params.nested", "1", ""]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.integers(2**62, 2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["<int of 5001 digits, too large to read>", "auto", "\x00", "=1+1"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.text(max_size=3), scalars, max_size=2))
metric_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                          st.integers(-1000, 1000), st.sampled_from(["high", True]))


@st.composite
def run_specs(draw: Any) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 14))
    # Some columns keep one type throughout (typed buffers), others mix across segments.
    typed_key = draw(st.sampled_from(HOSTILE_KEYS))
    typed = draw(st.sampled_from([st.integers(0, 9), st.floats(allow_nan=True),
                                  st.booleans(), st.text(max_size=4)]))
    specs = []
    for i in range(n):
        params = draw(st.dictionaries(st.sampled_from(HOSTILE_KEYS), values, max_size=4))
        if draw(st.booleans()):
            params[typed_key] = draw(typed)
        metrics = draw(st.dictionaries(st.sampled_from(["f1", "loss", "acc"]), metric_values,
                                       min_size=1, max_size=3))
        specs.append({
            "session": draw(st.sampled_from(["s1", "s2"])),
            "experiment": draw(st.sampled_from(["exp", "other \u202e"])),
            "name": draw(st.one_of(st.none(), st.text(max_size=5))),
            "started_at": 1_700_000_000 + draw(st.integers(0, 50)) + i / 1000,
            "execution_count": draw(st.one_of(st.none(), st.integers(1, 99))),
            "params": params, "metrics": metrics,
            "model": draw(st.sampled_from([None, "sklearn.ensemble.RandomForestClassifier"])),
            "cell": draw(st.booleans()),  # a cell run without metrics between runs
        })
    return specs


def write_store(home: Path, specs: list[dict[str, Any]], segment_size: int) -> None:
    writers: dict[str, SessionWriter] = {}
    for i, spec in enumerate(specs):
        w = writers.get(spec["session"])
        if w is None:
            w = writers[spec["session"]] = SessionWriter(home, spec["session"],
                                                         segment_size=segment_size)
        est = {"clf": {"class": spec["model"], "params": {}}} if spec["model"] else {}
        w.append(CellRun(
            id=f"{i:032x}", session=spec["session"], experiment=spec["experiment"], seq=i,
            started_at=spec["started_at"], name=spec["name"],
            execution_count=spec["execution_count"], params=dict(spec["params"]),
            metrics=dict(spec["metrics"]), estimators=est, deps=[f"{i - 1:032x}"] if i else [],
        ))
        if spec["cell"]:
            w.append(CellRun(id=f"c{i:031x}", session=spec["session"],
                             experiment=spec["experiment"], seq=i, started_at=spec["started_at"]))
    for w in writers.values():
        assert w.flush()
        w.close()


# No shrinking: every example writes a store; the failing example is printed as drawn.
@settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(specs=run_specs(), segment_size=st.sampled_from([1, 3, 200]))
def test_fast_path_frame_equals_the_slow_path(specs, segment_size):
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / ".mlops_nb"
        write_store(home, specs, segment_size)
        ref = reference_frame(home)
        assert_same(mnb.runs(home=home), ref)  # summaries the writer left
        shutil.rmtree(home / INDEX_DIR)
        assert_same(mnb.runs(home=home), ref)  # summarised by this reader, written back
        assert (home / INDEX_DIR).is_dir()
        assert_same(mnb.runs(home=home), ref)  # the reader's own summaries
        for exp in ("exp", "other \u202e"):
            assert_same(mnb.runs("" + exp, home=home), reference_frame(home, exp))


@pytest.mark.parametrize("column", [
    [1, None, 2**63 - 1, -2**63], [0.5, float("nan"), None, -0.0, float("inf")],
    [True, None, False], ["a", None, "é\ud800", ""], [None, None], [],
    [1, 1.0, True, None, "1", [1], {"a": 1}, -0.0, 0.0, 2**64, float("nan")],
    ["x\x00y", "z"],
])
def test_a_column_decodes_to_the_values_it_held(column):
    enc = msgspec.msgpack.decode(msgspec.msgpack.encode(encode_column(column)))
    got = decode_column(enc, len(column)).tolist()
    plain = plain_values(enc, len(column))  # what `show` reads, without numpy
    assert len(got) == len(plain) == len(column)
    for a, p, b in zip(got, plain, column, strict=True):
        if isinstance(b, float) and math.isnan(b):
            assert isinstance(a, float) and math.isnan(a) and math.isnan(p)
        else:
            assert type(a) is type(b) is type(p) and a == b == p
            if isinstance(b, float):
                assert math.copysign(1, a) == math.copysign(1, b) == math.copysign(1, p)


def test_segments_typed_differently_concatenate_as_their_values():
    parts = [(encode_column([1, None]), 2), (None, 1), (encode_column([2.5]), 1),
             (encode_column(["a"]), 1)]
    assert concat_encoded(parts).tolist() == [1, None, None, 2.5, "a"]
    same = [(encode_column(["a", None]), 2), (None, 2), (encode_column(["b", "a"]), 2)]
    assert concat_encoded(same).tolist() == ["a", None, None, None, "b", "a"]


# -- the index as a cache: invalidated, rebuilt, never trusted when damaged ----------------
def run(i: int, **kw: Any) -> CellRun:
    return CellRun(id=f"{i:032x}", session="s", experiment="exp", seq=i,
                   started_at=1_700_000_000 + i, params={"depth": i}, metrics={"f1": i / 10},
                   **kw)


def test_a_summary_goes_stale_when_its_session_file_grows(tmp_path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s")
    for i in range(3):
        w.append(run(i))
    assert w.flush()
    seg = next((home / "sessions").rglob("*.json"))
    index = index_path_for(home, seg)
    old = index.read_bytes()
    for i in range(3, 5):
        w.append(run(i))
    w.close()
    index.write_bytes(old)  # the summary of the file before it grew
    df = mnb.runs(home=home)
    assert list(df["params.depth"]) == [0, 1, 2, 3, 4]
    assert msgspec.msgpack.decode(index.read_bytes())["n"] == 5  # rebuilt and written back


def test_a_corrupt_summary_is_rebuilt_and_a_bad_record_still_named(tmp_path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s")
    for i in range(4):
        w.append(run(i))
    w.close()
    seg = next((home / "sessions").rglob("*.json"))
    doc = msgspec.json.decode(seg.read_bytes())
    doc["cell_runs"]["2"]["started_at"] = "yesterday"  # one bad record, by hand
    seg.write_bytes(msgspec.json.encode(doc))
    first = mnb.runs(home=home)  # slow path: summarised now, the problem recorded with it
    assert len(first) == 3 and len(first.attrs["problems"]) == 1
    assert "#2 (id" in first.attrs["problems"][0] and "skipped" in first.attrs["problems"][0]
    index = index_path_for(home, seg)
    assert index.exists()
    again = mnb.runs(home=home)  # fast path: the same runs, the same problem, by name
    pd.testing.assert_frame_equal(again, first)
    assert again.attrs["problems"] == first.attrs["problems"]
    raw = bytearray(index.read_bytes())
    raw[len(raw) // 2:] = b"\xc1" * (len(raw) - len(raw) // 2)  # damaged, stamp intact
    index.write_bytes(bytes(raw))
    pd.testing.assert_frame_equal(mnb.runs(home=home), first)
    assert index.read_bytes() != bytes(raw)  # rebuilt


def test_a_read_only_index_is_still_read_and_never_required(tmp_path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s")
    for i in range(3):
        w.append(run(i))
    w.close()
    shutil.rmtree(home / INDEX_DIR)
    (home / INDEX_DIR).mkdir()
    os.chmod(home / INDEX_DIR, 0o500)
    try:
        assert len(mnb.runs(home=home)) == 3  # cannot write its summary back: still listed
    finally:
        os.chmod(home / INDEX_DIR, 0o700)


def test_show_derives_lineage_from_the_index_without_parsing_other_segments(tmp_path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s", segment_size=5)
    ids = []
    for i in range(23):  # a chain: each cell depends on the one before
        cr = CellRun(id=f"{i:032x}", session="s", experiment="exp", seq=i,
                     execution_count=i + 1, started_at=1_700_000_000 + i,
                     deps=[ids[-1]] if ids else [], metrics={"acc": 0.5} if i == 22 else {})
        ids.append(cr.id)
        w.append(cr)
    w.close()
    reader = StoreReader(home)
    target = reader.resolve(ids[-1])
    parsed_before = set(reader._parsed)
    lineage, counts = reader.lineage(target)
    assert lineage == ids[:-1]
    assert counts[ids[0]] == 1 and counts[ids[21]] == 22
    assert set(reader._parsed) == parsed_before and len(parsed_before) == 1
    from mlops_nb.lineage import lineage_ids

    assert lineage == lineage_ids(reader.session_log("s"), target)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=6).filter(lambda t: "\x00" not in t)),
                max_size=30).filter(lambda v: any(x is not None for x in v)))
def test_a_str_column_reads_the_same_without_numpy(column):
    """`str_values` (resolving a run id) gives the rows the numpy decoder gives."""
    enc = encode_column(column)
    assert enc["k"] == "str"
    assert str_values(enc, len(column)) == concat_encoded([(enc, len(column))]).values.tolist()
    assert str_values(enc, len(column)) == column


@pytest.mark.parametrize("damage", [
    lambda e: e.update(c=e["c"][:-1]),  # not whole int32 codes
    lambda e: e.update(c=e["c"] + b"\x00" * 4),  # more codes than rows
    lambda e: e.update(c=b"\x07\x00\x00\x00" * 3),  # a code past the dictionary
    lambda e: e.update(c=b"\xfe\xff\xff\xff" * 3),  # below -1
    lambda e: e.update(n=5),  # dictionary shorter than it says
    lambda e: e.update(k="obj"),
])
def test_a_damaged_str_column_is_refused_like_the_numpy_decoder_refuses_it(damage):
    enc = encode_column(["a", "b", "a"])
    damage(enc)
    with pytest.raises(ValueError):
        str_values(enc, 3)
    if enc["k"] == "str":
        with pytest.raises(ValueError):
            concat_encoded([(enc, 3)])


def test_a_run_is_found_by_prefix_without_the_numpy_decoder(tmp_path, monkeypatch):
    """Resolving a run id reads the index's id columns with the standard library: an export
    or `show` does not import numpy for it. A damaged id column still takes the numpy path."""
    from mlops_nb.store import reader as reader_module

    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s", segment_size=4)
    for i in range(10):
        w.append(CellRun(id=f"{i:02x}{'ab' * 15}", session="s", experiment="exp", seq=i,
                         started_at=1_700_000_000 + i, metrics={"acc": i / 10}))
    w.close()

    def refused(*_a, **_k):
        raise AssertionError("numpy decoder used")

    with monkeypatch.context() as m:
        m.setattr(reader_module, "concat_encoded", refused)
        assert StoreReader(home).resolve("07ab").metrics == {"acc": 0.7}
    with monkeypatch.context() as m:  # a column that does not decode: the summaries answer
        def damaged(enc, n):
            raise ValueError("codes damaged")
        m.setattr(reader_module, "str_values", damaged)
        assert StoreReader(home).resolve("03ab").metrics == {"acc": 0.3}


_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=4), st.lists(st.integers(), max_size=2))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)), max_size=20),
                 st.lists(st.one_of(st.none(), st.floats(allow_nan=False)), max_size=20),
                 st.lists(st.one_of(st.none(), st.booleans()), max_size=20),
                 st.lists(_values, max_size=20)))
def test_every_kind_of_column_reads_the_same_without_numpy(column):
    enc = encode_column(column)
    assert plain_values(enc, len(column)) == decode_column(enc, len(column)).tolist()


@pytest.mark.parametrize("column, damage", [
    ([1, 2], lambda e: e.update(v=e["v"][:-1])),
    ([1, None], lambda e: e.update(m=b"\x01")),
    ([True, None], lambda e: e.update(m=b"\x02\x00")),  # numpy would read 2 as set: refused
    ([True, False], lambda e: e.update(v=b"\x01\x05")),
    ([[1], {"a": 2}], lambda e: e.update(n=3)),
    ([[1], {"a": 2}], lambda e: e.update(c=e["c"][:4])),
    ([[1], {"a": 2}], lambda e: e.update(k="f4")),
])
def test_a_damaged_column_is_left_to_the_numpy_decoder(column, damage):
    enc = encode_column(column)
    damage(enc)
    with pytest.raises((ValueError, TypeError)):
        plain_values(enc, len(column))


def test_show_reads_the_summaries_without_numpy_and_a_damaged_one_still_rebuilt(
        tmp_path, monkeypatch):
    from mlops_nb.store import columnar

    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s", segment_size=5)
    ids = []
    for i in range(12):
        cr = CellRun(id=f"{i:032x}", session="s", experiment="exp", seq=i,
                     execution_count=i + 1, started_at=1_700_000_000 + i,
                     deps=[ids[-1]] if ids else [], metrics={"acc": 0.5} if i == 11 else {})
        ids.append(cr.id)
        w.append(cr)
    w.close()
    expected = (ids[:-1], {rid: i + 1 for i, rid in enumerate(ids)})

    def refused(*_a, **_k):
        raise AssertionError("numpy decoder used")

    with monkeypatch.context() as m:
        m.setattr(columnar, "concat_encoded", refused)
        reader = StoreReader(home)
        assert reader.lineage(reader.resolve(ids[-1][:8])) == expected
    seg = sorted((home / "sessions").rglob("*.json"))[0]
    index = index_path_for(home, seg)
    raw = bytearray(index.read_bytes())
    raw[len(raw) // 2:] = b"\xc1" * (len(raw) - len(raw) // 2)  # damaged, stamp intact
    index.write_bytes(bytes(raw))
    reader = StoreReader(home)
    assert reader.lineage(reader.resolve(ids[-1][:8])) == expected
    assert index.read_bytes() != bytes(raw)  # rebuilt by the numpy path, as before
