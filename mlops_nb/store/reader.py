"""Reading the store: merge every session's segments, tolerate the broken ones.

Readers never lock and never write: each segment has one writer that replaces it atomically, so
a reader sees a whole file, old or new. A file that does not parse or cannot be opened is
reported as a problem (naming the file) and skipped, so one bad session never hides the others;
each record is validated against the schema (msgspec) and a bad one is skipped and reported by
document number and run id, so one bad record never hides its neighbours.
"""

from __future__ import annotations

import gc
import os
import stat
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
from .writer import CELL_RUNS_TABLE


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
        for exp_dir in self._scan(root):
            if not exp_dir.is_dir():
                continue
            for entry in self._scan(Path(exp_dir.path)):
                m = SEGMENT_RE.match(entry.name)
                if m is None:
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    self._problem(Path(entry.path), f"cannot be read: {_reason(exc)}")
                    continue
                if not stat.S_ISREG(st.st_mode):
                    self._problem(Path(entry.path), "is named like a session segment but is "
                                                    "not a file; skipped")
                    continue
                found.append(
                    Segment(Path(entry.path), m["session"], int(m["segment"]), st)
                )
        found.sort(key=lambda s: (s.session, s.number))
        return found

    def _scan(self, folder: Path) -> list[os.DirEntry[str]]:
        """A folder's entries; one the user may not list is a problem, not a traceback."""
        try:
            with os.scandir(folder) as it:
                return list(it)
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._problem(folder, f"cannot be listed: {_reason(exc)}; its runs are not shown")
            return []

    def _problem(self, path: Path, message: str) -> None:
        problem = Problem(path, message)
        if all(str(p) != str(problem) for p in self.problems):
            self.problems.append(problem)

    def load_segment(self, seg: Segment | Path) -> tuple[dict[str, Any], list[CellRun]]:
        """The session document and the valid cell runs of one segment; raises StoreCorrupt
        when the file as a whole is unusable. Each invalid cell run is skipped and reported
        (by document number and run id) in `problems`; it never hides its neighbours."""
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
            if not path.exists():  # deleted since it was listed
                return {}, []
            raise StoreCorrupt(f"{path} holds JSON null, not a session segment; skipped")
        import msgspec

        try:
            doc = msgspec.convert(data, _segment_doc(), strict=True)
        except msgspec.ValidationError as exc:
            raise StoreCorrupt(
                f"{path} is JSON but not a session segment ({exc}); skipped"
            ) from None
        if not doc.cell_runs and not doc.session:
            raise StoreCorrupt(f"{path} holds no session and no cell runs; skipped")
        session_docs = [d for d in doc.session.values() if isinstance(d, dict)]
        runs: list[CellRun] = []
        for key in sorted(doc.cell_runs, key=_doc_key):
            raw = doc.cell_runs[key]
            try:
                runs.append(cell_run_from_dict(raw))
            except MlopsNbError as exc:
                self._problem(path, f"cell run {_record_name(key, raw)} skipped: {exc}")
        return (session_docs[0] if session_docs else {}), runs

    def iter_cell_runs(self, session: str | None = None) -> Iterator[CellRun]:
        for seg in self.segments():
            if session is not None and seg.session != session:
                continue
            try:
                _, runs = self.load_segment(seg)
            except StoreCorrupt as exc:
                self._problem(seg.path, str(exc))
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
        for seg in self.segments():
            summary = read_summary(index_path_for(self.home, seg.path), seg.stat)
            if summary is not None:
                out.extend(summary["cols"], summary["n"])
                continue
            try:
                _, runs = self.load_segment(seg)
            except StoreCorrupt as exc:
                self._problem(seg.path, str(exc))
                continue
            for cr in runs:
                if cr.is_run:
                    out.add_row(summary_row(cr))
        problems = list(self.problems)
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


_SEGMENT_DOC: Any = None


def _segment_doc() -> Any:
    """A segment file as TinyDB writes it: tables of documents keyed by document id. Built on
    first use: msgspec is imported only when a store is read, not at `%load_ext`."""
    global _SEGMENT_DOC
    if _SEGMENT_DOC is None:
        import msgspec

        _SEGMENT_DOC = msgspec.defstruct("SegmentDoc", [
            ("session", dict[str, Any], msgspec.field(default_factory=dict)),
            (CELL_RUNS_TABLE, dict[str, Any], msgspec.field(default_factory=dict)),
        ])
    return _SEGMENT_DOC


def _record_name(key: str, raw: Any) -> str:
    run_id = raw.get("id") if isinstance(raw, dict) else None
    name = f"#{key}"
    if isinstance(run_id, str):
        name += f" (id {run_id[:32]!r})"
    return name


def _reason(exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError):
        reason += " (the store belongs to another user or its mode forbids reading)"
    return reason


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
