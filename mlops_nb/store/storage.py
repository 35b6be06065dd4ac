"""A TinyDB storage that never leaves half a file behind.

TinyDB's JSONStorage truncates and rewrites its file in place: a kernel killed mid-write leaves
a truncated file and the whole session is lost. Here every write goes to a temporary file in the
same folder, is fsynced, and replaces the old file with `os.replace`, which is atomic on POSIX and
Windows. A reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from ..errors import StoreCorrupt

TEMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: Path, payload: bytes, *, sync_dir: bool = True,
                       durable: bool = True) -> bool:
    """Write `payload` to `path` so that a crash leaves either the old or the new content.
    Returns True when the folder had to be made (it was new, or removed since).

    `sync_dir=False` leaves making the rename durable to the caller (`fsync_dir`, or a
    `FolderSync`), so a batch of files in one folder pays for one directory sync, not one
    each. `durable=False` skips the fsyncs for derived files (the run index) that a reader
    rebuilds when they are stale or damaged: a killed process still leaves the old or the new
    file, only a power cut may not.
    """
    made = False
    try:
        fd, tmp = _new_temp(path)
    except FileNotFoundError:  # a new folder (or one removed since): made then, not each time
        path.parent.mkdir(parents=True, exist_ok=True)
        made = True
        fd, tmp = _new_temp(path)
    try:
        try:
            write_all(fd, payload)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir and durable:
        fsync_dir(path.parent)
    return made


def write_all(fd: int, payload: bytes) -> None:
    """The whole payload, through the descriptor itself: a file object around it (`fdopen`)
    asked the system for the file's size, whether it is a terminal and its position, three
    calls per file for nothing, each giving up the GIL on the writer thread."""
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


_TEMP_NAMES = random.Random(os.urandom(16))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _TEMP_NAMES.seed(os.urandom(16)))
_TEMP_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
               | getattr(os, "O_CLOEXEC", 0))


def _new_temp(path: Path) -> tuple[int, str]:
    """A new temporary file beside `path`, open for writing.

    Created with mode 0o666, so the system applies the umask (and a folder's default ACL) as to
    any file the user creates: a store shared with a group (umask 002) gets group-writable
    files. `mkstemp` creates 0o600 files, which needed the umask read from /proc and a chmod:
    four system calls per file, each of which, on the writer thread, gives up the GIL and must
    win it back from the kernel's thread running the user's cells.
    """
    folder = os.fspath(path.parent)
    for _ in range(100):
        tmp = os.path.join(folder, f".{path.name}.{_TEMP_NAMES.getrandbits(48):012x}{TEMP_SUFFIX}")
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is; not every OS lets us open a dir.
    once = FolderSync(folder)
    once.sync()
    once.reset()


class FolderSync:
    """Makes renames in one folder durable through a descriptor kept open: the session
    writer syncs its segment's folder after every write, and opening and closing the folder
    each time were two more system calls per write. `reset` after the folder was made
    again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def sync(self) -> None:
        if self._fd is None:
            try:
                self._fd = os.open(self.folder, os.O_RDONLY)
            except OSError:  # not every OS lets us open a folder
                return
        with contextlib.suppress(OSError):
            os.fsync(self._fd)

    def reset(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def remove_stray_temps(folder: Path, *, older_than_s: float = 60.0) -> int:
    """Delete temp files a killed writer left; young ones may belong to a live writer."""
    import time

    removed = 0
    if not folder.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    for entry in os.scandir(folder):
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass
    return removed


def read_json_file(path: Path) -> Any:
    """The parsed file, None if it does not exist; StoreCorrupt (naming the file and why) if it
    cannot be read or parsed. Only a file that really is not JSON gets the advice to move it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if isinstance(exc, PermissionError):
            why += " (owned by another user, or its mode forbids reading)"
        raise StoreCorrupt(f"{path} cannot be read: {why}; skipped") from None
    if not raw.strip():
        raise StoreCorrupt(f"{path} is empty; it was not written by mlops-nb's atomic writer")
    import msgspec

    try:  # twice as fast as json; anything it refuses (NaN, a lone surrogate) goes to json
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        pass
    try:
        return json.loads(raw)
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            # Valid JSON with an integer of thousands of digits (Python refuses to parse it by
            # default): read it, keeping that number as text.
            return json.loads(raw, parse_int=_int_or_text)
        raise StoreCorrupt(
            f"{path} is not valid JSON ({exc}); move it aside to silence this, "
            "other sessions are unaffected"
        ) from None


def _int_or_text(digits: str) -> int | str:
    try:
        return int(digits)
    except ValueError:
        return f"<int of {len(digits.lstrip('-'))} digits, too large to read>"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=repr).encode("utf-8")


class AtomicJSONStorage(Storage):
    """TinyDB storage with atomic replace-on-write; one writer per file by design: a session
    segment's, which only inserts documents and truncates its session table, never reading a
    document back.

    TinyDB hands over the whole database on every write, and the session writer rewrites its
    segment after every batch of cells: encoding all of it each time made the writer's CPU per
    cell grow with the segment. So each document, once encoded, is replaced in the tables it
    came in (TinyDB's cache) by its JSON (`Written`; the session writer puts cell runs there
    already encoded): a write encodes only what is new, the file is the same bytes
    `json.dumps` would give, and the segment holds bytes, which the garbage collector does not
    track, instead of a record's dicts and lists. Those lived as long as the segment (200 cell
    runs) and were most of what tracking kept alive per cell, so the kernel's collector ran
    every other cell.
    """

    def __init__(self, path: str | os.PathLike[str], **_: Any) -> None:
        self.path = Path(path)
        self._heads: dict[str, bytes] = {}  # document id -> `"id":`
        self._folder = FolderSync(self.path.parent)  # opened at the first write only

    def read(self) -> dict[str, dict[str, Any]] | None:
        data = read_json_file(self.path)
        if data is not None and not isinstance(data, dict):
            raise StoreCorrupt(f"{self.path} holds {type(data).__name__}, not a TinyDB document")
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if atomic_write_bytes(self.path, self._encode(data), sync_dir=False):
            self._folder.reset()  # made again: the one held is no longer the file's
        self._folder.sync()

    def _encode(self, data: dict[str, dict[str, Any]]) -> bytes:
        if not (isinstance(data, dict) and all(
                isinstance(name, str) and isinstance(docs, dict)
                and all(isinstance(doc_id, str) for doc_id in docs)
                for name, docs in data.items())):
            # not TinyDB's shape, or an id json.dumps would turn into text: no shortcut
            return _dumps(_unwritten(data))
        heads = self._heads
        tables = []
        for name, docs in data.items():
            parts = []
            for doc_id, doc in docs.items():
                head = heads.get(doc_id)
                if head is None:
                    head = heads[doc_id] = _dumps(doc_id) + b":"
                if type(doc) is not Written:
                    doc = docs[doc_id] = Written(_dumps(doc))
                parts.append(head + doc)
            tables.append(_dumps(name) + b":{" + b",".join(parts) + b"}")
        return b"{" + b",".join(tables) + b"}"

    def close(self) -> None:
        self._folder.reset()


class Written(bytes):
    """A document as it was written: its JSON, standing in for it in TinyDB's cache."""

    __slots__ = ()


def written(doc: Any) -> Written:
    """`doc` encoded as a segment holds it; raises ValueError, TypeError or RecursionError
    for a value JSON has no text for."""
    return Written(_dumps(doc))


def _unwritten(data: Any) -> Any:
    """`data` with written documents read back, for the plain encoder."""
    if isinstance(data, dict):
        return {k: json.loads(v) if type(v) is Written else _unwritten(v)
                for k, v in data.items()}
    return data
