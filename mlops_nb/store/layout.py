"""File names inside the store, in one place so writer and reader cannot disagree."""

from __future__ import annotations

import os
import re
from pathlib import Path

import xxhash

SESSIONS_DIR = "sessions"
INDEX_DIR = "index"
BLOBS_DIR = "blobs"
# The segment file's table of cell runs (TinyDB's table name): readers need only the name,
# not the writer.
CELL_RUNS_TABLE = "cell_runs"
SEGMENT_RE = re.compile(r"^(?P<session>[A-Za-z0-9_-]+)\.(?P<segment>\d{4,})\.json$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def experiment_dirname(experiment: str) -> str:
    """A folder name for any experiment name, however hostile, that stays unique per name.

    Readers never trust the folder name: every record carries the real experiment name.
    """
    slug = _UNSAFE.sub("_", experiment).strip("._")[:60] or "experiment"
    if slug != experiment:
        slug = f"{slug}-{xxhash.xxh32_hexdigest(experiment.encode('utf-8', 'surrogatepass'))}"
    return slug


def segment_name(session: str, segment: int) -> str:
    return f"{session}.{segment:04d}.json"


def segment_path(home: Path, experiment: str, session: str, segment: int) -> Path:
    return home / SESSIONS_DIR / experiment_dirname(experiment) / segment_name(session, segment)


def index_path_for(home: Path, segment: Path) -> Path:
    """The derived summary of a segment mirrors its path under index/ (msgpack, `.cols`)."""
    seg, root = os.fspath(segment), os.path.join(os.fspath(home), SESSIONS_DIR, "")
    if not seg.startswith(root):  # string work: listing asks this for 500 segments
        seg = os.path.join(root, os.fspath(segment.relative_to(home / SESSIONS_DIR)))
    rel = os.path.splitext(seg[len(root):])[0] + ".cols"
    return Path(os.path.join(os.fspath(home), INDEX_DIR, rel))
