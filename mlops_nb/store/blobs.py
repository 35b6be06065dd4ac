"""Content-addressed blobs: large payloads written once, referenced by hash.

Cell code, figures and RNG states would make session documents big and every TinyDB rewrite
slow; keyed by their xxh3-128 hash they are deduplicated for free (re-running a cell stores its
code once) and two kernels writing the same blob race harmlessly.
"""

from __future__ import annotations

import os
from pathlib import Path

import xxhash

from .storage import atomic_write_bytes, fsync_dir


def blob_hash(payload: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(payload)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        if len(digest) < 8 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a blob hash: {digest!r}")
        return self.root / digest[:2] / digest

    def put(self, payload: bytes, digest: str | None = None) -> str:
        digest = digest or blob_hash(payload)
        self.put_many({digest: payload})
        return digest

    def put_many(self, payloads: dict[str, bytes]) -> None:
        """Write the blobs not stored yet; one directory sync per folder touched."""
        folders: set[Path] = set()
        for digest, payload in payloads.items():
            path = self.path_for(digest)
            if not path.exists():
                atomic_write_bytes(path, payload, sync_dir=False)
                folders.add(path.parent)
        for folder in folders:
            fsync_dir(folder)

    def get(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def get_text(self, digest: str | None) -> str | None:
        if digest is None:
            return None
        try:
            return self.get(digest).decode("utf-8")
        except FileNotFoundError:
            return None

    def __contains__(self, digest: str) -> bool:
        return os.path.exists(self.path_for(digest))
