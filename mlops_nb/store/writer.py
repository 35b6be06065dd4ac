"""The one writer of a session's files, working off the cell's critical path.

The recorder hands over a finished record and returns at once; a background thread coalesces
what arrives within `flush_interval` into one atomic rewrite per segment. Segments roll over
every `segment_size` cell runs because TinyDB rewrites its whole file on each write: small
segments keep that cost flat however long the kernel lives.

Nothing is dropped on a failed write. A record leaves memory only once it is durable; while the
disk is full or the store read-only, records wait (bounded: `max_pending` records and
`max_pending_bytes` of blobs, oldest kept) and are retried every `retry_interval`, so they are
written as soon as space returns. One blob that cannot be written holds back its own record,
never the batch.

The writer's lag is bounded by back-pressure, not by an unbounded queue: when the oldest record
not yet durable is more than `max_lag` old, the next `append` waits for the write in flight
(at most `max_wait`), so a kernel killed at any moment loses at most `max_lag` of cell runs and
never corrupts a file. While writes are failing there is nothing to wait for and appends return
at once.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.middlewares import CachingMiddleware

from ..errors import MlopsNbError
from ..own_threads import own
from ..records import SCHEMA_VERSION, CellRun, cell_run_from_dict
from .blobs import BlobStore
from .index import cell_row, summary_row, write_summary
from .layout import BLOBS_DIR, CELL_RUNS_TABLE, index_path_for, segment_path
from .storage import AtomicJSONStorage, Written, remove_stray_temps, written

log = logging.getLogger(__name__)

SESSION_TABLE = "session"
DEFAULT_SEGMENT_SIZE = 200
DEFAULT_FLUSH_INTERVAL = 0.05
# The run index of the segment being written (store/index.py) is re-encoded whole: while cells
# keep coming, at most once per this many seconds, and at once on flush, close or roll-over.
# A reader meanwhile finds it stale and reads the segment itself: nothing is lost but time.
DEFAULT_SUMMARY_INTERVAL = 1.0
DEFAULT_MAX_LAG = 0.1
DEFAULT_MAX_PENDING = 20_000
DEFAULT_MAX_PENDING_BYTES = 256 * 1024 * 1024
# Errors of the whole store (full, read-only, over quota): records wait for them to clear.
# Any other error writing one blob, three times over, costs that record the blob, not the run.
_STORE_WIDE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
_BLOB_TRIES = 3


@dataclass
class _Segment:
    path: Path
    db: TinyDB
    experiment: str
    count: int = 0
    run_rows: list[dict[str, Any]] = field(default_factory=list)
    cell_rows: list[dict[str, Any]] = field(default_factory=list)  # every cell run, for show
    unsaved: list[_Item] = field(default_factory=list)  # inserted, file not yet rewritten
    session_stale: bool = True
    summary_stale: bool = False  # written, but its run index not refreshed yet
    summary_at: float = 0.0  # when the run index was last written (monotonic)


@dataclass
class _Item:
    n: int
    record: CellRun
    blobs: dict[str, bytes]
    size: int
    blob_tries: int = 0
    # Steps of the record left to this thread (redaction, lineage: capture/deferred.py);
    # returns False when the record must not be stored.
    finish: Callable[[], bool] | None = None


class SessionWriter:
    """Appends cell runs of one session; safe to call from the kernel's main thread only."""

    def __init__(
        self,
        home: Path,
        session: str,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        summary_interval: float = DEFAULT_SUMMARY_INTERVAL,
        max_lag: float = DEFAULT_MAX_LAG,
        max_wait: float = 5.0,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        retry_interval: float = 1.0,
    ) -> None:
        self.home = Path(home)
        self.session = session
        self.segment_size = segment_size
        self.flush_interval = flush_interval
        self.summary_interval = summary_interval
        self.max_lag = max_lag
        self.max_wait = max_wait
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.retry_interval = retry_interval
        self.blobs = BlobStore(self.home / BLOBS_DIR, pack_prefix=session)
        self._segments: dict[str, _Segment] = {}  # the current segment of each experiment
        self._open: list[_Segment] = []  # every segment not closed yet (full ones until clean)
        self._next_segment: dict[str, int] = {}
        self._session_doc: dict[str, Any] = {"schema": SCHEMA_VERSION, "session": session}
        # Shared between the kernel thread and the writer thread, under `_cond`.
        self._cond = threading.Condition()
        self._inbox: list[Any] = []
        self._unsaved: dict[int, float] = {}  # n -> when appended, for records not yet durable
        self._pending_bytes = 0
        self._next_n = 0
        self._attempts = 0
        self._last_failed = False
        self._wake = False
        self._index_asked = False  # flush() wants the run index current too
        self._busy = False
        self._next_retry = 0.0
        self._stopping = False
        self._error: BaseException | None = None
        self.last_error: tuple[float, BaseException] | None = None  # kept after recovery
        self.written = 0  # cell runs made durable so far
        self.lost = 0  # cell runs dropped because the pending bound was reached
        self.waited_s = 0.0  # time appends spent waiting on the writer (back-pressure)
        self._told: str | None = None  # the failure the user was last told about
        self._told_lost = 0
        # Writer thread only.
        self._pending: list[_Item] = []
        self._force_summary = False  # this round was asked for (flush, close): index too
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise MlopsNbError(
                f"the store {self.home} (or a folder above it) is a file, not a folder: move "
                "it aside, or point MLOPS_NB_HOME at a folder; nothing was recorded") from None
        self._thread = threading.Thread(
            target=own(self._loop), name=f"mlops-nb-writer-{session}", daemon=True
        )
        self._thread.start()
        self._closed = False
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)

    # -- called from the kernel thread ------------------------------------------------------
    def append(self, record: CellRun, blobs: dict[str, bytes] | None = None,
               finish: Callable[[], bool] | None = None) -> bool:
        """Queue a cell run and the blobs it references. Returns at once unless the writer is
        more than `max_lag` behind (then it waits for it); False if the record was dropped
        because the store has been failing long enough to fill the pending bound.

        `finish`, when given, completes the record on this writer's thread before it is
        stored (it may change the record and its blobs); False from it drops the record."""
        if self._closed:
            raise RuntimeError("session writer is closed")
        if blobs is None:  # the caller's own dict, even empty: `finish` may add to it
            blobs = {}
        size = sum(len(b) for b in blobs.values())
        with self._cond:
            if self._error is None and self._unsaved:
                self._wait_for_writer()
            if self._unsaved and (len(self._unsaved) >= self.max_pending
                                  or self._pending_bytes + size > self.max_pending_bytes):
                self.lost += 1
                return False
            n = self._next_n
            self._next_n += 1
            self._unsaved[n] = time.monotonic()
            self._pending_bytes += size
            self._inbox.append(_Item(n, record, blobs, size, finish=finish))
            if len(self._inbox) == 1:
                self._cond.notify_all()
        return True

    def _wait_for_writer(self) -> None:
        """Back-pressure: hold the kernel while the oldest unsaved record is over `max_lag`
        old and writes are succeeding (caller holds `_cond`)."""
        now = time.monotonic()
        deadline = now + self.max_wait
        started = now
        while self._unsaved and self._error is None:
            oldest = self._unsaved[next(iter(self._unsaved))]
            # the lag first: asking the thread whether it is alive takes its lock
            if now - oldest <= self.max_lag or now >= deadline or not self._thread.is_alive():
                break
            self._wake = True
            self._cond.notify_all()
            self._cond.wait(deadline - now)
            now = time.monotonic()
        self.waited_s += now - started

    def update_session(self, **info: Any) -> None:
        """Session-level facts replicated into every segment file; callables are called later."""
        with self._cond:
            self._inbox.append(("session", info))
            self._cond.notify_all()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write everything appended so far now; True only if all of it is durable.

        False when a write attempt failed (disk full, read-only store: `error` says why; the
        records stay pending and are retried) or `timeout` ran out.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._next_n
            first = self._attempts
            self._wake = self._index_asked = True
            self._cond.notify_all()
            while True:
                oldest = next(iter(self._unsaved), None)
                busy = self._thread.is_alive() and (
                    self._inbox or any(seg.summary_stale for seg in list(self._open)))
                if (oldest is None or oldest >= target) and not busy:
                    return True  # written, and the run index says so
                if self._attempts > first and self._last_failed:
                    return False
                if not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def close(self, timeout: float | None = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for seg in self._open:
            seg.db.close()
        self.blobs.close_pack()

    @property
    def error(self) -> BaseException | None:
        """The current write failure (None once a write succeeds again); `last_error` keeps
        the last one with its time, for `%track status`."""
        return self._error

    @property
    def waiting(self) -> int:
        """Cell runs appended but not durable yet."""
        return len(self._unsaved)

    def take_notice(self) -> str | None:
        """What the user must be told, once: runs stopped being saved, were dropped, or are
        being saved again. The recorder shows it at the start of the next cell."""
        if self._error is None and self._told is None:  # nothing to tell: no lock taken
            return None  # (each is one read; a failure after them is told at the next cell)
        with self._cond:
            err = self._error
            if err is not None:
                text = _describe(err)
                kind = f"{type(err).__name__}:{getattr(err, 'errno', None)}"  # not the temp name
                if self._told == kind and self.lost == self._told_lost:
                    return None
                self._told, self._told_lost = kind, self.lost
                msg = (f"runs are NOT being saved: {text}. {len(self._unsaved)} cell run(s) "
                       "wait in memory and will be written once the store is writable again")
                if self.lost:
                    msg += (f"; {self.lost} cell run(s) were dropped (more than "
                            f"{self.max_pending} waiting)")
                return msg + " (`%track status` for details)"
            if self._told is not None and not self._unsaved:
                self._told = None
                lost = f"; {self.lost} cell run(s) were dropped" if self.lost else ""
                return f"the store is writable again: every waiting cell run is saved{lost}"
            return None

    # -- background thread --------------------------------------------------------------------
    def _loop(self) -> None:
        with contextlib.suppress(OSError):
            self._clean_blob_temps()
        while True:
            with self._cond:
                items, due = self._gather()
                stopping = self._stopping
            self._take(items)
            if due and (self._pending or any(s.unsaved or s.session_stale or s.summary_stale
                                             for s in self._open)):
                ok = self._attempt()
                with self._cond:
                    self._attempts += 1
                    self._last_failed = not ok
                    self._busy = bool(self._inbox)
                    self._cond.notify_all()
            if stopping:
                with self._cond:
                    if not self._inbox:
                        if self._unsaved:
                            log.warning("mlops-nb: %d cell run(s) could not be written before "
                                        "the kernel exited: %s", len(self._unsaved),
                                        _describe(self._error))
                        return

    def _gather(self) -> tuple[list[Any], bool]:
        """Wait for work (caller holds `_cond`): new items, gathered for `flush_interval`; a
        retry when it is due while writes fail; at once when flushed or stopped. Returns the
        new items and whether to write now (while failing, new items wait for the retry)."""
        while True:
            failing = self._error is not None
            now = time.monotonic()
            if self._wake or self._stopping or (self._inbox and not failing):
                break
            if failing and now >= self._next_retry:
                break
            summary = None if failing else self._summary_due()  # a retry rewrites it anyway
            if summary is not None and now >= summary:
                break
            waits = [t - now for t in (self._next_retry if failing else None, summary)
                     if t is not None]
            self._cond.wait(min(waits) if waits else None)
        if self._inbox and not failing and not self._busy:
            # An idle writer gathers what arrives within `flush_interval` into one write; a
            # busy one (records arrived while it wrote) writes at once: they are gathered.
            deadline = time.monotonic() + self.flush_interval
            while not (self._wake or self._stopping):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        due = (not failing or self._wake or self._stopping
               or time.monotonic() >= self._next_retry)
        self._force_summary = self._index_asked or self._stopping
        self._wake = self._index_asked = False
        items, self._inbox = self._inbox, []
        self._busy = False
        return items, due

    def _take(self, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, _Item):
                if item.finish is not None and not self._finish(item):
                    continue
                self._pending.append(item)
                continue
            # Values may be callables: slow facts (packages, git) are computed here,
            # on the writer thread, instead of on the cell's critical path.
            for key, value in item[1].items():
                self._session_doc[key] = _clean(_evaluate(value), key, [])
            for seg in self._segments.values():
                seg.session_stale = True

    def _summary_due(self) -> float | None:
        """When the earliest stale run index must be written (caller holds `_cond`)."""
        due = [seg.summary_at + self.summary_interval for seg in self._open if seg.summary_stale]
        return min(due) if due else None

    def _finish(self, item: _Item) -> bool:
        """Complete a record handed over unfinished; False (and the record let go) when it
        must not be stored."""
        finish, item.finish = item.finish, None
        try:
            keep = finish is not None and finish()
        except Exception as exc:
            log.warning("mlops-nb could not finish cell run %s: %r", item.record.id, exc)
            keep = False
        size = sum(len(b) for b in item.blobs.values())
        with self._cond:
            if keep:
                self._pending_bytes += size - item.size
                item.size = size
            else:
                self._unsaved.pop(item.n, None)
                self._pending_bytes -= item.size
                self._cond.notify_all()
        return bool(keep)

    def _attempt(self) -> bool:
        """Write what is pending, oldest first; True if nothing is left pending."""
        error: BaseException | None = None
        try:
            error = self._write_pending()
        except Exception as exc:  # keep the thread alive: the next attempt may succeed
            error = exc
        with self._cond:
            if error is None and not self._pending:
                self._error = None
            elif error is not None:
                self._error = error
                self.last_error = (time.time(), error)
                self._next_retry = time.monotonic() + self.retry_interval
                log.debug("mlops-nb could not write the session store: %s", error)
        return error is None and not self._pending

    def _write_pending(self) -> BaseException | None:
        error: BaseException | None = None
        # Blobs first: a record on disk must never reference a blob that is not.
        wanted = {d: b for item in self._pending for d, b in item.blobs.items()}
        failed = self.blobs.put_many(wanted) if wanted else {}
        still: list[_Item] = []
        for item in self._pending:
            bad = {d: failed[d] for d in item.blobs if d in failed}
            if bad:
                item.blob_tries += 1
                error = error or next(iter(bad.values()))
                if item.blob_tries < _BLOB_TRIES or any(
                        getattr(e, "errno", None) in _STORE_WIDE for e in bad.values()):
                    still.append(item)
                    continue
                item.record = _without_blobs(item.record, bad)
            item.blobs = {}
            try:
                self._insert(item)
            except OSError as exc:  # no folder for a new segment: the store is failing
                error = error or exc
                still.append(item)
            except Exception as exc:  # a record no retry can store: never block the others
                error = error or exc
                log.warning("mlops-nb could not store cell run %s: %r", item.record.id, exc)
                with self._cond:
                    self._unsaved.pop(item.n, None)
                    self._pending_bytes -= item.size
                    self.lost += 1
                    self._cond.notify_all()
        self._pending = still
        for seg in list(self._open):
            if not (seg.unsaved or seg.session_stale or seg.summary_stale):
                continue
            try:
                self._commit(seg)
            except Exception as exc:
                error = error or exc
        return error

    def _insert(self, item: _Item) -> None:
        """Add the record to its segment's cache as the JSON the file will hold, encoded
        once: TinyDB's `insert` rebuilt the whole table's dict for every record (a cost
        growing with the segment), and the record was encoded twice, once to check that JSON
        can hold it and again when the segment was written."""
        record, doc = _storable(item.record)
        row = summary_row(record) if record.is_run else None
        seg = self._segment_for(record.experiment)
        storage = seg.db.storage  # TinyDB's cache (CachingMiddleware): written by `_commit`
        tables = storage.read() or {}
        tables.setdefault(CELL_RUNS_TABLE, {})[str(seg.count + 1)] = doc  # TinyDB's ids
        storage.write(tables)
        seg.count += 1
        seg.unsaved.append(item)
        seg.cell_rows.append(cell_row(record))
        if row is not None:
            seg.run_rows.append(row)

    def _commit(self, seg: _Segment) -> None:
        table = seg.db.table(SESSION_TABLE)
        if seg.session_stale or not table:
            table.truncate()
            table.insert(dict(self._session_doc))
        seg.db.storage.flush()  # type: ignore[attr-defined]  # raises: stays dirty, retried
        seg.session_stale = False
        now = time.monotonic()
        if (self._force_summary or seg.count >= self.segment_size
                or now - seg.summary_at >= self.summary_interval):
            seg.summary_stale, seg.summary_at = False, now
            try:  # the index is derived: failing to refresh it loses nothing
                write_summary(index_path_for(self.home, seg.path), seg.path, seg.run_rows,
                              seg.cell_rows)
            except (OSError, ValueError, TypeError) as exc:
                log.debug("mlops-nb could not refresh the run index: %s", exc)
        else:
            seg.summary_stale = True
        saved, seg.unsaved = seg.unsaved, []
        with self._cond:
            for item in saved:
                self._unsaved.pop(item.n, None)
                self._pending_bytes -= item.size
            self.written += len(saved)
            self._cond.notify_all()
        if seg.count >= self.segment_size and self._segments.get(seg.experiment) is not seg:
            seg.db.close()
            self._open.remove(seg)

    def _clean_blob_temps(self) -> None:
        # Blob writes are shared by every session; a killed one leaves a temp in blobs/ab/.
        root = self.home / BLOBS_DIR
        if root.is_dir():
            for sub in root.iterdir():
                if sub.is_dir():
                    remove_stray_temps(sub)

    def _segment_for(self, experiment: str) -> _Segment:
        seg = self._segments.get(experiment)
        if seg is not None and seg.count < self.segment_size:
            return seg
        number = self._next_segment.get(experiment, 0)
        path = segment_path(self.home, experiment, self.session, number)
        while path.exists():  # a reloaded extension continues the same session id
            number += 1
            path = segment_path(self.home, experiment, self.session, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stray_temps(path.parent)
        remove_stray_temps(index_path_for(self.home, path).parent)
        self._next_segment[experiment] = number + 1
        storage = CachingMiddleware(AtomicJSONStorage)
        storage.WRITE_CACHE_SIZE = 1 << 30  # we flush explicitly, once per batch
        db = TinyDB(path, storage=storage)
        new = _Segment(path=path, db=db, experiment=experiment)
        self._segments[experiment] = new
        self._open.append(new)
        if seg is not None and not (seg.unsaved or seg.session_stale or seg.summary_stale):
            seg.db.close()
            self._open.remove(seg)
        return new


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no error"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"


def _without_blobs(record: CellRun, bad: dict[str, BaseException]) -> CellRun:
    """The record less its references to blobs that cannot be written, saying so."""
    doc = record.to_dict()
    for key in ("code", "python"):
        if doc.get(key) in bad:
            doc[key] = None
    doc["figures"] = [d for d in doc.get("figures") or [] if d not in bad]
    if doc.get("rng"):
        doc["rng"] = {k: d for k, d in doc["rng"].items() if d not in bad}
    doc["warnings"] = [*doc.get("warnings", []), *(
        f"blob {d[:12]} could not be written ({_describe(e)}); the run is kept without it"
        for d, e in bad.items())]
    return CellRun(**doc)


def _close_at_exit(ref: weakref.ReferenceType[SessionWriter]) -> None:
    writer = ref()
    if writer is not None:
        writer.close(timeout=10.0)


def _storable(record: CellRun) -> tuple[CellRun, Written]:
    """The record and its JSON if JSON can hold it, else a copy with the values it cannot
    hold as text, and that copy's JSON.

    One such value (an int of 5,000 digits has no JSON text) would otherwise stay in TinyDB's
    cache and fail every later write of the session, losing all its cell runs.
    """
    try:
        return record, written(record.to_dict())
    except (ValueError, TypeError, RecursionError):
        pass
    bad: list[str] = []
    doc = _clean(record.to_dict(), "", bad)
    doc["warnings"] = [*doc.get("warnings", []),
                       *(f"{path}: not storable as JSON, stored as text" for path in bad)]
    record = cell_run_from_dict(doc)
    return record, written(record.to_dict())


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
