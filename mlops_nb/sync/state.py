"""Which runs went to which MLflow server: a small cache under `.mlops_nb/sync/`.

The server stays the truth (every sync checks its `mlops_nb.run_id` tags): the file only saves
looking at runs already pushed, and lets `--watch` tell in a glance that nothing is new. It
never holds credentials: the tracking URI is stored with any user and password removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from ..store.storage import atomic_write_bytes

SYNC_DIR = "sync"
_USERINFO = re.compile(r"(?<=//)[^/@\s]*@")


def redact(text: str) -> str:
    """`http://user:secret@host/` -> `http://***@host/`: safe to print, log or store."""
    return _USERINFO.sub("***@", text)


@dataclass
class SyncState:
    path: Path
    tracking_uri: str
    pushed: dict[str, str] = field(default_factory=dict)  # mlops-nb run id -> MLflow run id

    @classmethod
    def load(cls, home: Path, tracking_uri: str) -> SyncState:
        uri = redact(tracking_uri)
        name = f"mlflow-{xxhash.xxh3_64_hexdigest(uri.encode())[:12]}.json"
        path = Path(home) / SYNC_DIR / name
        state = cls(path, uri)
        try:
            doc: Any = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return state  # missing or damaged: the server's tags rebuild it
        if isinstance(doc, dict) and isinstance(doc.get("pushed"), dict):
            state.pushed = {k: v for k, v in doc["pushed"].items()
                            if isinstance(k, str) and isinstance(v, str)}
        return state

    def save(self) -> None:
        doc = {"tracking_uri": self.tracking_uri, "pushed": self.pushed}
        atomic_write_bytes(self.path, json.dumps(doc, indent=0).encode("utf-8"))
