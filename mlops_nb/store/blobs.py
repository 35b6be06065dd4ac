"""Content-addressed blobs: large payloads written once, referenced by hash.

Cell code, figures and RNG states would make session documents big and every TinyDB rewrite
slow; keyed by their xxh3-128 hash they are deduplicated for free (re-running a cell stores its
code once) and two kernels writing the same blob race harmlessly.

Small blobs (most: a cell's code is a few hundred bytes) go into append-only *pack* files, one
writer per pack, one fsync per batch; 20,000 cells would otherwise leave 20,000 tiny files (and
pay 20,000 fsyncs). A pack entry is a fixed header (magic, hash, length) and the payload. A
writer killed mid-append leaves a torn last entry that readers ignore: nothing references it,
since a record is written only after its blobs are durable. Large blobs stay one file each, and
stores written before packs existed (every blob a loose file) are read as they are. Every read
checks the payload against its hash, so a damaged blob is reported, never returned.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import xxhash

from ..errors import StoreCorrupt

PACKS_DIR = "packs"
PACK_SUFFIX = ".pack"
SMALL_BLOB = 64 * 1024  # smaller blobs go into packs
PACK_LIMIT = 32 * 1024 * 1024  # a writer starts a new pack past this size
RECENT_BLOBS = 4096  # digests a writer remembers having written (re-run cells share code blobs)
_MAGIC = b"MNB1"
_HEADER = struct.Struct("<4s32sQ")  # magic, 32 hex digits of xxh3-128, payload length


def blob_hash(payload: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(payload)


def _is_digest(digest: object) -> bool:
    return (isinstance(digest, str) and len(digest) >= 8
            and all(c in "0123456789abcdef" for c in digest))


def iter_pack(path: Path) -> Iterator[tuple[str, int, int]]:
    """(digest, offset of payload, length) of each whole entry of a pack, in order; stops at a
    torn tail (a writer killed mid-append, or one still appending)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                pos = 0
                while pos + _HEADER.size <= size:
                    magic, digest, length = _HEADER.unpack_from(mm, pos)
                    start = pos + _HEADER.size
                    if magic != _MAGIC or start + length > size:
                        return
                    yield digest.decode("ascii", "replace"), start, length
                    pos = start + length
    except FileNotFoundError:
        return


class BlobStore:
    """Reads every blob of the store; writes through `put_many` (one writer per pack)."""

    def __init__(self, root: Path, *, pack_prefix: str | None = None) -> None:
        self.root = root
        self.problems: list[str] = []  # blobs that could not be read: named, never raised
        self._pack_prefix = pack_prefix
        self._index: dict[str, tuple[Path, int, int]] = {}
        self._scanned: dict[Path, int] = {}  # pack -> bytes indexed so far
        # Digests known durable: those in the store when this writer first wrote, and the last
        # RECENT_BLOBS it wrote itself (bounded: a long session keeps no per-run state here; a
        # blob forgotten and met again costs a duplicate pack entry, which readers ignore).
        self._known: set[str] = set()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._started = False
        self._pack_fd: int | None = None
        self._pack_path: Path | None = None
        self._pack_size = 0
        self._pack_number = 0

    # -- reading ----------------------------------------------------------------------------
    def path_for(self, digest: str) -> Path:
        if not _is_digest(digest):
            raise ValueError(f"not a blob hash: {digest!r}")
        return self.root / digest[:2] / digest

    def _refresh_packs(self) -> None:
        folder = self.root / PACKS_DIR
        try:
            with os.scandir(folder) as it:
                packs = [Path(e.path) for e in it if e.name.endswith(PACK_SUFFIX)]
        except FileNotFoundError:
            return
        except OSError as exc:
            self._note(f"{folder} cannot be listed: {exc.strerror}; blobs in it are missing")
            return
        for pack in packs:
            try:
                size = pack.stat().st_size
            except OSError:
                continue
            if self._scanned.get(pack) == size:
                continue
            try:
                for digest, offset, length in iter_pack(pack):
                    self._index.setdefault(digest, (pack, offset, length))
                self._scanned[pack] = size
            except (OSError, ValueError) as exc:
                self._note(f"{pack} cannot be read: {exc}")

    def get(self, digest: str) -> bytes:
        """The payload; FileNotFoundError if the store has no such blob, StoreCorrupt if the
        bytes on disk no longer hash to `digest`."""
        try:
            payload = self.path_for(digest).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            payload = self._from_pack(digest)
        else:
            if blob_hash(payload) != digest:  # a damaged loose copy: a pack may hold a good one
                with contextlib.suppress(FileNotFoundError):
                    payload = self._from_pack(digest)
        if blob_hash(payload) != digest:
            raise StoreCorrupt(f"blob {digest} is damaged: its content does not match its hash")
        return payload

    def _from_pack(self, digest: str) -> bytes:
        if digest not in self._index:
            self._refresh_packs()
        where = self._index.get(digest)
        if where is None:
            raise FileNotFoundError(f"no blob {digest} in {self.root}")
        pack, offset, length = where
        with open(pack, "rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    def get_text(self, digest: str | None) -> str | None:
        """The blob as text; None (and a problem noted) if it is missing, damaged, unreadable
        or not UTF-8: one bad blob must not break `show` or `export` of the runs sharing it."""
        if digest is None:
            return None
        try:
            return self.get(digest).decode("utf-8")
        except FileNotFoundError:
            return None
        except (StoreCorrupt, OSError, UnicodeDecodeError, ValueError) as exc:
            self._note(f"blob {str(digest)[:40]} skipped: {_why(exc)}")
            return None

    def _note(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def __contains__(self, digest: str) -> bool:
        if os.path.exists(self.path_for(digest)):
            return True
        if digest not in self._index:
            self._refresh_packs()
        return digest in self._index

    # -- writing (the session writer's thread only) ----------------------------------------
    def put(self, payload: bytes, digest: str | None = None) -> str:
        digest = digest or blob_hash(payload)
        failed = self.put_many({digest: payload})
        if failed:
            raise failed[digest]
        return digest

    def put_many(self, payloads: dict[str, bytes]) -> dict[str, BaseException]:
        """Make the blobs durable; returns the ones that could not be written, with why.

        Small blobs are appended to this writer's pack in one write and one fsync; large ones
        are written each to its own file. A failure is per blob: the others are still written.
        """
        if not self._started and self._pack_prefix is not None:
            self._started = True
            self._refresh_packs()  # blobs other sessions already stored are not stored again
            self._known.update(self._index)
        from .storage import atomic_write_bytes, fsync_dir  # tinydb: a writer's, not `%load_ext`'s

        failed: dict[str, BaseException] = {}
        small: dict[str, bytes] = {}
        folders: set[Path] = set()
        for digest, payload in payloads.items():
            if digest in self._known:
                continue
            if digest in self._recent:
                self._recent.move_to_end(digest)
                continue
            if len(payload) < SMALL_BLOB and len(digest) == 32 and self._pack_prefix:
                small[digest] = payload
                continue
            try:
                path = self.path_for(digest)
                if not path.is_file():
                    atomic_write_bytes(path, payload, sync_dir=False)
                    folders.add(path.parent)
                self._remember(digest)
            except (OSError, ValueError) as exc:
                failed[digest] = exc
        for folder in folders:
            fsync_dir(folder)
        if small:
            try:
                self._append_pack(small)
                for digest in small:
                    self._remember(digest)
            except OSError as exc:
                failed.update(dict.fromkeys(small, exc))
        return failed

    def _remember(self, digest: str) -> None:
        self._recent[digest] = None
        if len(self._recent) > RECENT_BLOBS:
            self._recent.popitem(last=False)

    def _append_pack(self, blobs: dict[str, bytes]) -> None:
        chunk = b"".join(_HEADER.pack(_MAGIC, d.encode("ascii"), len(p)) + p
                         for d, p in blobs.items())
        if self._pack_fd is None or self._pack_size + len(chunk) > PACK_LIMIT:
            self._open_pack()
        assert self._pack_fd is not None
        start = self._pack_size
        from .storage import write_all

        try:
            write_all(self._pack_fd, chunk)
            os.fsync(self._pack_fd)
        except OSError:
            # Leave no half entry behind (disk full mid-write); if even that fails, a new pack
            # is started next time, and readers ignore the torn tail of this one.
            try:
                os.ftruncate(self._pack_fd, start)
            except OSError:
                self.close_pack()
            raise
        self._pack_size = start + len(chunk)

    def _open_pack(self) -> None:
        self.close_pack()
        folder = self.root / PACKS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        token = os.urandom(4).hex()
        while True:
            path = folder / f"{self._pack_prefix}.{token}.{self._pack_number:04d}{PACK_SUFFIX}"
            self._pack_number += 1
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o666)
                break
            except FileExistsError:
                continue
        from .storage import fsync_dir

        fsync_dir(folder)
        self._pack_fd, self._pack_path, self._pack_size = fd, path, 0

    def close_pack(self) -> None:
        if self._pack_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pack_fd)
        self._pack_fd, self._pack_path, self._pack_size = None, None, 0


def _why(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)
