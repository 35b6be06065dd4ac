"""The derived run index: one small columnar summary per session segment.

Listing 100,000 runs must not parse every cell run's full document. Each segment gets a summary
(msgpack, typed columns: `columnar.py`) holding its runs (cell runs with metrics) as columns,
and the id, order and direct deps of every cell run (what `show` needs for a lineage), stamped
with the size, mtime, ctime and inode of the segment it was made from. The writer refreshes it
after each write; a reader that finds it missing, stale or damaged summarises the segment itself
and writes the summary back (atomically: two processes doing so both leave a whole file). A
reader trusts a summary only while its stamp matches, so the index can be deleted at any time
and is never the only copy of anything: the session files stay the record.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from ..records import CellRun, is_value_ref, measured_model, shown_value
from .columnar import STR, Column, decode_columns, encode_columns
from .storage import atomic_write_bytes

# 2: the data digest covers input data only; 3: model, params_none; 4: typed columns
# (msgpack), every cell run's id and direct deps, problems met summarising the segment;
# 5: a dict of settings' entries as columns of their own (`settings`); 6: the model is the
# one the run's metrics measured (`run_model`), fitted by the cell or in its lineage; 7: a
# parameter stored as a blob (over 1 KB) is one column, not its reference's $blob/size/preview
INDEX_SCHEMA = 7
CELL_COLUMNS = ("id", "seq", "execution_count", "deps", "lineage")

# Fixed columns of the runs table, in display order; params.* and metrics.* follow.
BASE_COLUMNS = (
    "id",
    "experiment",
    "name",
    "session",
    "notebook",
    "cell_id",
    "execution_count",
    "seq",
    "started_at",
    "duration_s",
    "status",
    "data",
)


def data_digest(data: dict[str, dict[str, Any]] | None) -> str | None:
    """One short hash for all the data a run saw, to spot at a glance runs on the same data."""
    if not data:
        return None
    h = xxhash.xxh3_64()
    for name in sorted(data):
        h.update(name.encode("utf-8", "surrogatepass"))
        h.update(str(data[name].get("hash", "")).encode())
    return h.hexdigest()[:12]


def input_data(cr: CellRun) -> dict[str, dict[str, Any]]:
    """The data a run started from: its lineage's data, less what the run's own cell produced
    (predictions differ with every model; they say nothing about which data it was trained on).
    """
    data = cr.effective_data if cr.effective_data is not None else cr.data
    outputs = set(cr.defs) - set(cr.uses)
    return {name: fp for name, fp in data.items() if name not in outputs}


def summary_row(cr: CellRun) -> dict[str, Any]:
    params = cr.effective_params if cr.effective_params is not None else cr.params
    row: dict[str, Any] = {
        "id": cr.id,
        "experiment": cr.experiment,
        "name": cr.name,
        "session": cr.session,
        "notebook": cr.notebook,
        "cell_id": cr.cell_id,
        "execution_count": cr.execution_count,
        "seq": cr.seq,
        "started_at": cr.started_at,
        "duration_s": cr.duration_s,
        "status": cr.status,
        "data": data_digest(input_data(cr)),
    }
    model = run_model(cr)
    if model is not None:
        row["model"] = model
    shown = {k: shown_value(v) for k, v in params.items()}
    for k, v in params.items():
        for sub, x in settings(v):  # `params.max_depth` of a ParameterGrid loop's `params`
            shown.setdefault(f"{k}.{sub}", x)
    nones = [k for k, v in shown.items() if v is None]
    if nones:  # a None value and an unset parameter both pad to None in the columns
        row["params_none"] = nones
    for k, v in shown.items():
        row["params." + k] = v
    for k, v in cr.metrics.items():
        row["metrics." + k] = v
    return row


_SETTING_TYPES = (bool, int, float, str, type(None))
_MAX_SETTINGS = 20


def settings(value: Any) -> list[tuple[str, Any]]:
    """The entries of a parameter that is a small dict of plain settings (`params` of `for
    params in ParameterGrid(grid):`, `cfg = {"depth": 3, "lr": 0.1}`), each a column of its
    own beside the dict, so runs sort, filter and plot by `params.max_depth`; else none."""
    if type(value) is not dict or not 0 < len(value) <= _MAX_SETTINGS or is_value_ref(value):
        return []  # a large value stored as a blob is one value, shown by its preview
    if not all(type(k) is str and type(v) in _SETTING_TYPES for k, v in value.items()):
        return []
    return list(value.items())


def run_model(cr: CellRun) -> str | None:
    """The class name of the fitted estimator the run's metrics came from: one an earlier
    cell fitted (`model`, filled from the lineage), or one the cell fitted itself, the one
    its metrics measured, else the last. Only the record is read: the writer and a reader
    rebuilding a summary must agree."""
    model = getattr(cr, "model", None)
    if isinstance(model, dict):
        model = model.get("class")
    if not model and cr.estimators:
        est = cr.estimators.get(measured_model(cr) or "")
        if not isinstance(est, dict):
            est = list(cr.estimators.values())[-1]
        model = est.get("class") if isinstance(est, dict) else None
    return str(model).rsplit(".", 1)[-1] if model else None


class Columns:
    """Column-wise accumulation of rows whose keys differ: padding with None as keys appear."""

    def __init__(self) -> None:
        self.n = 0
        self.cols: dict[str, list[Any]] = {c: [] for c in BASE_COLUMNS}

    def add_row(self, row: dict[str, Any]) -> None:
        for key, value in row.items():
            col = self.cols.get(key)
            if col is None:
                col = self.cols[key] = [None] * self.n
            col.append(value)
        self.n += 1
        for col in self.cols.values():
            if len(col) < self.n:
                col.append(None)

    def extend(self, cols: dict[str, list[Any]], n: int) -> None:
        for key, values in cols.items():
            col = self.cols.get(key)
            if col is None:
                col = self.cols[key] = [None] * self.n
            col.extend(values)
        self.n += n
        for col in self.cols.values():
            if len(col) < self.n:
                col.extend([None] * (self.n - len(col)))


def cell_row(cr: CellRun) -> dict[str, Any]:
    """What `show` needs of every cell run to derive a lineage without parsing its segment."""
    return {"id": cr.id, "seq": cr.seq, "execution_count": cr.execution_count,
            "deps": list(cr.deps) if cr.deps else None,
            "lineage": list(cr.lineage) if cr.lineage is not None else None}


def segment_stamp(st: os.stat_result) -> list[int]:
    """What identifies one version of a segment file. Every write replaces the file (a new
    inode) and sets its mtime; ctime cannot be set back by `touch`; a changed size or any of
    these makes the summary stale."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def encode_summary(stamp: list[int], rows: list[dict[str, Any]], cells: list[dict[str, Any]],
                   problems: list[str] = ()) -> bytes:  # type: ignore[assignment]
    import msgspec

    n, cols = encode_columns(rows, BASE_COLUMNS)
    m, cell_cols = encode_columns(cells, CELL_COLUMNS)
    doc = {"schema": INDEX_SCHEMA, "stamp": stamp, "n": n, "cols": cols, "cells_n": m,
           "cells": cell_cols, "problems": list(problems)}
    return msgspec.msgpack.encode(doc)


def write_summary(index_path: Path, segment: Path, rows: list[dict[str, Any]],
                  cells: list[dict[str, Any]]) -> None:
    """The writer's summary of the segment it has just written (its only writer: the
    segment as it is now is the version summarised)."""
    payload = encode_summary(segment_stamp(os.stat(segment)), rows, cells)
    with _index_lock(index_path):
        atomic_write_bytes(index_path, payload, durable=False)  # derived: rebuilt if lost


def write_read_summary(index_path: Path, segment: Path, stamp: list[int],
                       payload: bytes) -> bool:
    """A reader's summary (`payload`, encoded from the segment as it read it, `stamp`),
    written only if the segment is still that version with the index's lock held; True if
    written. Checked without the lock, the check and the write could straddle the writer's
    rewrite of the segment and of its index, putting an older summary over the newer one:
    never wrong (its stamp says it is stale), but the next read summarised the segment
    again, and the index the writer had just written was gone. Raises OSError (TimeoutError:
    the lock stayed busy) if it cannot be written."""
    with _index_lock(index_path):
        if segment_stamp(os.stat(segment)) != stamp:
            return False  # rewritten since it was read: the writer summarises it
        atomic_write_bytes(index_path, payload, durable=False)
    return True


_LOCK_WAIT_S = 2.0
_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})


@contextlib.contextmanager
def _index_lock(index_path: Path) -> Iterator[None]:
    """The lock every writer of an index file holds while it writes it: `flock` on the
    folder holding it (its experiment's; a lock file beside it would be one more file in
    the store that is not a summary), held for one small write, so a wait is short
    (TimeoutError after `_LOCK_WAIT_S`). Where there is no `flock` (Windows, some NFS)
    nothing is locked: a lost race costs a later reader one summary of the segment, never a
    wrong answer."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock = index_path.parent
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(lock, flags)
    except FileNotFoundError:  # the folder is made with its first index
        lock.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, flags)
    try:
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{lock} stayed locked for {_LOCK_WAIT_S:g} s") from None
                time.sleep(0.001)
            except OSError as exc:  # a file system without `flock` (some NFS): as Windows
                if exc.errno not in _NO_FLOCK:
                    raise
                break
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass
class Summary:
    """A segment's summary as read, its parts decoded on demand (listing needs the runs'
    columns, `show` the cells')."""

    n: int
    cells_n: int
    problems: list[str]
    raw_cols: Any
    raw_cells: Any

    def columns(self) -> dict[str, Column]:
        return _decode_columns(self.raw_cols, self.n, "id")

    def cells(self) -> dict[str, Column]:
        return _decode_columns(self.raw_cells, self.cells_n, "id")


def _decode_columns(raw: Any, n: int, required: str) -> dict[str, Column]:
    import msgspec

    try:
        cols = decode_columns(msgspec.msgpack.decode(raw), n)
        if required not in cols:
            raise ValueError("no id column")
        if n and (cols[required].kind != STR or not cols[required].is_set().all()):
            raise ValueError("ids are not all text")
    except (msgspec.DecodeError, ValueError, KeyError, TypeError, AttributeError,
            UnicodeDecodeError) as exc:
        raise SummaryDamaged(str(exc)) from None
    return cols


class SummaryDamaged(Exception):
    """A summary stamped as current whose columns do not decode: the segment is read instead."""


_SUMMARY_DOC: Any = None


def _summary_doc() -> Any:
    global _SUMMARY_DOC
    if _SUMMARY_DOC is None:
        import msgspec

        _SUMMARY_DOC = msgspec.defstruct("SummaryDoc", [
            ("schema", int), ("stamp", list[int]), ("n", int), ("cols", msgspec.Raw),
            ("cells_n", int), ("cells", msgspec.Raw), ("problems", list[str]),
        ])
    return _SUMMARY_DOC


def read_summary(index_path: Path, segment_stat: os.stat_result) -> Summary | None:
    """The summary if it is intact and still describes the segment as it is now, else None."""
    import msgspec

    try:
        raw = index_path.read_bytes()
        doc = msgspec.msgpack.decode(raw, type=_summary_doc())
    except (OSError, msgspec.DecodeError, ValueError):
        return None
    if doc.schema != INDEX_SCHEMA or doc.stamp != segment_stamp(segment_stat):
        return None
    if doc.n < 0 or doc.cells_n < doc.n:
        return None  # stamped as current but not a summary we wrote: read the segment
    return Summary(doc.n, doc.cells_n, doc.problems, doc.cols, doc.cells)
