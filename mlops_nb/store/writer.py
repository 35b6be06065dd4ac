"""The one writer of a session's files, working off the cell's critical path.

The recorder hands over a finished record and returns at once; a background thread coalesces
what arrives within `flush_interval` into one atomic rewrite per segment. A kernel killed at any
moment therefore loses at most the last interval's cell runs and never corrupts a file. Segments
roll over every `segment_size` cell runs because TinyDB rewrites its whole file on each write:
small segments keep that cost flat however long the kernel lives.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.middlewares import CachingMiddleware

from ..records import SCHEMA_VERSION, CellRun, cell_run_from_dict
from .blobs import BlobStore
from .index import summary_row, write_summary
from .layout import BLOBS_DIR, index_path_for, segment_path
from .storage import AtomicJSONStorage, remove_stray_temps

log = logging.getLogger(__name__)

CELL_RUNS_TABLE = "cell_runs"
SESSION_TABLE = "session"
DEFAULT_SEGMENT_SIZE = 200
DEFAULT_FLUSH_INTERVAL = 0.05


@dataclass
class _Segment:
    path: Path
    db: TinyDB
    count: int = 0
    run_rows: list[dict[str, Any]] = field(default_factory=list)


class _Stop:
    pass


class SessionWriter:
    """Appends cell runs of one session; safe to call from the kernel's main thread only."""

    def __init__(
        self,
        home: Path,
        session: str,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        self.home = Path(home)
        self.session = session
        self.segment_size = segment_size
        self.flush_interval = flush_interval
        self.blobs = BlobStore(self.home / BLOBS_DIR)
        self._segments: dict[str, _Segment] = {}
        self._next_segment: dict[str, int] = {}
        self._session_doc: dict[str, Any] = {"schema": SCHEMA_VERSION, "session": session}
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self.written = 0  # cell runs made durable so far
        self.home.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(
            target=self._loop, name=f"mlops-nb-writer-{session}", daemon=True
        )
        self._thread.start()
        self._closed = False
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)

    # -- called from the kernel thread ------------------------------------------------------
    def append(self, record: CellRun, blobs: dict[str, bytes] | None = None) -> None:
        """Queue a cell run and the blobs it references; returns immediately."""
        if self._closed:
            raise RuntimeError("session writer is closed")
        self._queue.put((record, blobs or {}))

    def update_session(self, **info: Any) -> None:
        """Session-level facts replicated into every segment file; callables are called later."""
        self._queue.put(("session", info))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything queued so far is on disk; False if `timeout` ran out."""
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._queue.put(_Stop())
            self._thread.join(timeout)
        for seg in self._segments.values():
            seg.db.close()

    @property
    def error(self) -> BaseException | None:
        """The last write failure, for `%track status`; the writer keeps trying later batches."""
        return self._error

    # -- background thread --------------------------------------------------------------------
    def _loop(self) -> None:
        self._clean_blob_temps()
        stop = False
        while not stop:
            item = self._queue.get()
            batch = [item]
            deadline = time.monotonic() + self.flush_interval
            while not isinstance(batch[-1], (_Stop, threading.Event)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            # Whatever else is already queued joins this write: that is the coalescing.
            while not isinstance(batch[-1], (_Stop, threading.Event)):
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            events = [b for b in batch if isinstance(b, threading.Event)]
            stop = any(isinstance(b, _Stop) for b in batch)
            records = [b for b in batch if isinstance(b, tuple)]
            try:
                self._write(records)
                self._error = None
            except BaseException as exc:  # keep the thread alive: the next batch may succeed
                self._error = exc
                log.warning("mlops-nb could not write the session store: %s", exc)
            for ev in events:
                ev.set()

    def _clean_blob_temps(self) -> None:
        # Blob writes are shared by every session; a killed one leaves a temp in blobs/ab/.
        root = self.home / BLOBS_DIR
        if root.is_dir():
            for sub in root.iterdir():
                if sub.is_dir():
                    remove_stray_temps(sub)

    def _write(self, items: list[tuple[Any, Any]]) -> None:
        touched: dict[str, tuple[_Segment, list[dict[str, Any]]]] = {}
        session_changed = False
        # Blobs first: a record on disk must never reference a blob that is not.
        self.blobs.put_many({d: b for head, payload in items if head != "session"
                             for d, b in payload.items()})
        for head, payload in items:
            if head == "session":
                # Values may be callables: slow facts (packages, git) are computed here,
                # on the writer thread, instead of on the cell's critical path.
                for key, value in payload.items():
                    self._session_doc[key] = _clean(_evaluate(value), key, [])
                session_changed = True
                continue
            record: CellRun = _storable(head)
            seg = self._segment_for(record.experiment, touched)
            touched.setdefault(str(seg.path), (seg, []))[1].append(record.to_dict())
            seg.count += 1
            if record.is_run:
                seg.run_rows.append(summary_row(record))
        if session_changed:
            for seg in self._segments.values():
                touched.setdefault(str(seg.path), (seg, []))
        for seg, docs in touched.values():
            self._commit(seg, docs)

    def _commit(self, seg: _Segment, docs: list[dict[str, Any]]) -> None:
        seg.db.table(SESSION_TABLE).truncate()
        seg.db.table(SESSION_TABLE).insert(dict(self._session_doc))
        if docs:
            seg.db.table(CELL_RUNS_TABLE).insert_multiple(docs)
        seg.db.storage.flush()  # type: ignore[attr-defined]
        write_summary(index_path_for(self.home, seg.path), seg.path, seg.run_rows)
        self.written += len(docs)

    def _segment_for(self, experiment: str, touched: dict[str, Any]) -> _Segment:
        seg = self._segments.get(experiment)
        if seg is not None and seg.count < self.segment_size:
            return seg
        if seg is not None:
            # Write what this batch already put in the full segment before leaving it.
            entry = touched.pop(str(seg.path), None)
            if entry is not None:
                self._commit(*entry)
            seg.db.close()
        number = self._next_segment.get(experiment, 0)
        path = segment_path(self.home, experiment, self.session, number)
        while path.exists():  # a reloaded extension continues the same session id
            number += 1
            path = segment_path(self.home, experiment, self.session, number)
        self._next_segment[experiment] = number + 1
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stray_temps(path.parent)
        remove_stray_temps(index_path_for(self.home, path).parent)
        storage = CachingMiddleware(AtomicJSONStorage)
        storage.WRITE_CACHE_SIZE = 1 << 30  # we flush explicitly, once per batch
        db = TinyDB(path, storage=storage)
        seg = _Segment(path=path, db=db)
        self._segments[experiment] = seg
        return seg


def _close_at_exit(ref: weakref.ReferenceType[SessionWriter]) -> None:
    writer = ref()
    if writer is not None:
        writer.close(timeout=10.0)


def _storable(record: CellRun) -> CellRun:
    """The record if JSON can hold it, else a copy with the values it cannot hold as text.

    One such value (an int of 5,000 digits has no JSON text) would otherwise stay in TinyDB's
    cache and fail every later write of the session, losing all its cell runs.
    """
    try:
        json.dumps(record.to_dict(), default=repr)
        return record
    except (ValueError, TypeError, RecursionError):
        pass
    bad: list[str] = []
    doc = _clean(record.to_dict(), "", bad)
    doc["warnings"] = [*doc.get("warnings", []),
                       *(f"{path}: not storable as JSON, stored as text" for path in bad)]
    return cell_run_from_dict(doc)


def _clean(value: Any, path: str, bad: list[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            name = k if isinstance(k, str) else _text(k)
            out[name] = _clean(v, f"{path}.{name}" if path else name, bad)
        return out
    if isinstance(value, (list, tuple)):
        return [_clean(v, f"{path}[{i}]", bad) for i, v in enumerate(value)]
    try:
        json.dumps(value, default=repr)
        return value
    except (ValueError, TypeError, RecursionError):
        bad.append(path)
    if isinstance(value, int):
        return f"<int of {value.bit_length()} bits, too large to store>"
    return f"<unstorable {type(value).__name__}>"


def _text(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _evaluate(value: Any) -> Any:
    if not callable(value):
        return value
    try:
        return value()
    except Exception as exc:  # a fact we could not gather must not lose the batch's cell runs
        return {"error": f"{type(exc).__name__}: {exc}"}
