"""The capture side of profiles: profile each new fingerprint once per session.

The recorder owns one `Profiler`; `read_data` hands it every fingerprinted object. A profile is
computed only for a content hash this session has not seen (re-running a cell on the same
frame costs a dict lookup), stored as a content-addressed blob, and referenced from the data
entry as `profile`. A data file read by a cell that produced exactly one DataFrame gets that
frame's profile too, so `validate --data new.csv` can compare a file with a file.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..store.blobs import blob_hash

log = logging.getLogger(__name__)
MAX_SEEN = 10_000


class Profiler:
    def __init__(self) -> None:
        self.seen: dict[str, str | None] = {}  # content hash -> profile blob (None: failed)
        self.pending: dict[str, bytes] = {}

    def __call__(self, obj: Any, fp: dict[str, Any]) -> None:
        digest = fp.get("hash")
        if not isinstance(digest, str):
            return
        if digest not in self.seen:
            if len(self.seen) >= MAX_SEEN:
                self.seen.clear()
            self.seen[digest] = self._profile(obj)
        if self.seen[digest] is not None:
            fp["profile"] = self.seen[digest]

    def _profile(self, obj: Any) -> str | None:
        from .profile import profile

        try:
            if getattr(obj, "ndim", 2) > 2:
                return None
            payload = json.dumps(profile(obj), separators=(",", ":"),
                                 allow_nan=False).encode("utf-8")
        except Exception as exc:  # tracking never breaks the cell; no profile, no check
            log.debug("mlops-nb: no profile: %r", exc)
            return None
        key = blob_hash(payload)
        self.pending[key] = payload
        return key

    def link_files(self, out: dict[str, dict[str, Any]]) -> None:
        files = [k for k in out if k.startswith("file:")]
        frames = [v for k, v in out.items()
                  if not k.startswith("file:") and v.get("type") == "DataFrame"
                  and "profile" in v]
        if len(files) == 1 and len(frames) == 1:
            out[files[0]]["profile"] = frames[0]["profile"]

    def take_blobs(self) -> dict[str, bytes]:
        out, self.pending = self.pending, {}
        return out
