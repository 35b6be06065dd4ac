"""Reading the store: merge every session's segments, tolerate the broken ones.

Readers never lock and never write: each segment has one writer that replaces it atomically, so
a reader sees a whole file, old or new. A file that does not parse is reported as a problem
(naming the file) and skipped, so one bad session never hides the others.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AmbiguousRunId, MlopsNbError, RunNotFound, StoreCorrupt
from ..records import CellRun, cell_run_from_dict
from .blobs import BlobStore
from .index import BASE_COLUMNS, Columns, read_summary, summary_row
from .layout import BLOBS_DIR, SEGMENT_RE, SESSIONS_DIR, index_path_for
from .storage import read_json_file
from .writer import CELL_RUNS_TABLE, SESSION_TABLE


@dataclass
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        if self.message.startswith(str(self.path)):  # StoreCorrupt names the file already
            return self.message
        return f"{self.path}: {self.message}"


@dataclass
class Segment:
    path: Path
    session: str
    number: int
    stat: os.stat_result


@dataclass
class RunColumns:
    """The runs of a store as columns, ready for `pandas.DataFrame(cols)`."""

    cols: dict[str, list[Any]]
    n: int
    problems: list[Problem] = field(default_factory=list)


class StoreReader:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.blobs = BlobStore(self.home / BLOBS_DIR)
        self.problems: list[Problem] = []
        # Segments parsed by this reader, while unchanged on disk: `show` resolves a run and
        # then reads its session (for the lineage) without parsing the session twice.
        self._parsed: dict[Path, tuple[tuple[int, int], tuple[dict[str, Any], list[CellRun]]]] = {}

    def segments(self) -> list[Segment]:
        root = self.home / SESSIONS_DIR
        found: list[Segment] = []
        if not root.is_dir():
            return found
        for exp_dir in os.scandir(root):
            if not exp_dir.is_dir():
                continue
            for entry in os.scandir(exp_dir.path):
                m = SEGMENT_RE.match(entry.name)
                if m is None:
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                found.append(
                    Segment(Path(entry.path), m["session"], int(m["segment"]), st)
                )
        found.sort(key=lambda s: (s.session, s.number))
        return found

    def load_segment(self, seg: Segment | Path) -> tuple[dict[str, Any], list[CellRun]]:
        """The session document and cell runs of one segment; raises StoreCorrupt."""
        path = seg.path if isinstance(seg, Segment) else seg
        st = seg.stat if isinstance(seg, Segment) else None
        stamp = (st.st_mtime_ns, st.st_size) if st is not None else None
        cached = self._parsed.get(path)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1][0], list(cached[1][1])
        doc, runs = self._load_segment(path)
        if stamp is not None:
            self._parsed[path] = (stamp, (doc, runs))
        return doc, list(runs)

    def _load_segment(self, path: Path) -> tuple[dict[str, Any], list[CellRun]]:
        data = read_json_file(path)
        if data is None:
            return {}, []
        if not isinstance(data, dict):
            raise StoreCorrupt(f"{path} holds {type(data).__name__}, not a TinyDB document")
        sessions = data.get(SESSION_TABLE) or {}
        table = data.get(CELL_RUNS_TABLE) or {}
        for name, tbl in ((SESSION_TABLE, sessions), (CELL_RUNS_TABLE, table)):
            if not isinstance(tbl, dict):
                raise StoreCorrupt(f"{path}: table {name!r} is not a mapping")
        session_docs = [d for d in sessions.values() if isinstance(d, dict)]
        runs: list[CellRun] = []
        for key in sorted(table, key=_doc_key):
            try:
                runs.append(cell_run_from_dict(table[key]))
            except MlopsNbError as exc:
                self.problems.append(Problem(path, f"document {key}: {exc}"))
            except (TypeError, ValueError, AttributeError) as exc:
                self.problems.append(Problem(path, f"document {key} is malformed: {exc}"))
        return (session_docs[0] if session_docs else {}), runs

    def iter_cell_runs(self, session: str | None = None) -> Iterator[CellRun]:
        for seg in self.segments():
            if session is not None and seg.session != session:
                continue
            try:
                _, runs = self.load_segment(seg)
            except StoreCorrupt as exc:
                self.problems.append(Problem(seg.path, str(exc)))
                continue
            yield from runs

    def session_info(self, session: str) -> dict[str, Any]:
        for seg in self.segments():
            if seg.session == session:
                try:
                    doc, _ = self.load_segment(seg)
                except StoreCorrupt:
                    continue
                if doc:
                    return doc
        return {}

    def run_columns(self, experiment: str | None = None) -> RunColumns:
        """Every run as columns, through the derived index where it is current."""
        with _gc_paused():
            return self._run_columns(experiment)

    def _run_columns(self, experiment: str | None) -> RunColumns:
        out = Columns()
        problems: list[Problem] = []
        for seg in self.segments():
            summary = read_summary(index_path_for(self.home, seg.path), seg.stat)
            if summary is not None:
                out.extend(summary["cols"], summary["n"])
                continue
            try:
                _, runs = self.load_segment(seg)
            except StoreCorrupt as exc:
                problems.append(Problem(seg.path, str(exc)))
                continue
            for cr in runs:
                if cr.is_run:
                    out.add_row(summary_row(cr))
        problems.extend(self.problems)
        cols, n = out.cols, out.n
        if experiment is not None:
            keep = [i for i, e in enumerate(cols["experiment"]) if e == experiment]
            cols = {k: [v[i] for i in keep] for k, v in cols.items()}
            cols = {
                k: v for k, v in cols.items() if k in BASE_COLUMNS or any(x is not None for x in v)
            }
            n = len(keep)
        return RunColumns(cols, n, problems)

    def resolve(self, prefix: str) -> CellRun:
        """A cell run by id or unique id prefix, like git: runs first, then any cell run."""
        prefix = prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise RunNotFound(f"{prefix!r} is not a run id (ids are hexadecimal)")
        ids = self.run_columns().cols["id"]
        matches = sorted({i for i in ids if i.startswith(prefix)})
        if not matches:
            matches = sorted({cr.id for cr in self.iter_cell_runs() if cr.id.startswith(prefix)})
        if not matches:
            raise RunNotFound(f"no run id starts with {prefix!r}; `mlops-nb runs` lists them")
        if len(matches) > 1:
            shown = ", ".join(m[:12] for m in matches[:5])
            raise AmbiguousRunId(
                f"{prefix!r} matches {len(matches)} runs ({shown}...); give more characters"
            )
        for cr in self.iter_cell_runs():
            if cr.id == matches[0]:
                return cr
        raise RunNotFound(f"run {matches[0]} is listed in the index but its segment is gone")

    def session_log(self, session: str) -> list[CellRun]:
        """A session's cell runs in execution order: what lineage and export replay."""
        return sorted(self.iter_cell_runs(session), key=lambda cr: cr.seq)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while bulk-loading acyclic data (lists, dicts, strings, numbers).

    Every parsed summary survives into the result, so the collector would rescan the growing
    columns again and again: about a quarter of listing 100,000 runs (benchmarks/).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _doc_key(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        return 1 << 62
