"""Reading the store: merge every session's segments, tolerate the broken ones.

Readers never lock and never write: each segment has one writer that replaces it atomically, so
a reader sees a whole file, old or new. A file that does not parse or cannot be opened is
reported as a problem (naming the file) and skipped, so one bad session never hides the others;
each record is validated against the schema (msgspec) and a bad one is skipped and reported by
document number and run id, so one bad record never hides its neighbours.
"""

from __future__ import annotations

import contextlib
import gc
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AmbiguousRunId, MlopsNbError, RunNotFound, StoreCorrupt
from ..records import CellRun, cell_run_from_dict
from .blobs import BlobStore
from .columnar import STR, Column, concat, concat_encoded, plain_values, str_values
from .index import (
    BASE_COLUMNS,
    Summary,
    SummaryDamaged,
    cell_row,
    read_summary,
    segment_stamp,
    summary_row,
    write_read_summary,
)
from .layout import BLOBS_DIR, CELL_RUNS_TABLE, SEGMENT_RE, SESSIONS_DIR, index_path_for
from .storage import read_json_file


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


class RunColumns:
    """The runs of a store as columns, ready for `table.runs_frame`.

    From the store, `typed` holds decoded columns (`columnar.Column`: numbers in numpy
    buffers) and `cols` gives them as lists only when asked; from elsewhere (MLflow) `cols` is
    given as lists. `segments` says which segment holds which rows, in order: (path, count).
    """

    def __init__(self, cols: dict[str, list[Any]] | None = None, n: int = 0,
                 problems: list[Problem] | None = None, *,
                 typed: dict[str, Column] | None = None,
                 segments: list[tuple[Path, int]] | None = None) -> None:
        self._cols = cols
        self.n = n
        self.problems = problems if problems is not None else []
        self.typed = typed
        self.segments = segments or []
        self.total = n  # runs in the store (or experiment); more than `n` when only the
        # newest were read

    @property
    def cols(self) -> dict[str, list[Any]]:
        if self._cols is None:
            self._cols = {k: c.tolist() for k, c in (self.typed or {}).items()}
        return self._cols

    def segment_of(self, row: int) -> Path | None:
        for path, count in self.segments:
            if row < count:
                return path
            row -= count
        return None


class StoreReader:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.blobs = BlobStore(self.home / BLOBS_DIR)
        self.problems: list[Problem] = []
        # Segments parsed by this reader, while unchanged on disk: `show` resolves a run and
        # then reads its session (for the lineage) without parsing the session twice.
        self._parsed: dict[Path, tuple[tuple[int, int], tuple[dict[str, Any], list[CellRun]]]] = {}
        # Segments' encoded columns, by path and stamp, once `keep_encoded()` asks for it.
        self._encoded: dict[Path, tuple[Any, tuple[int, dict[str, Any]] | None]] | None = None

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
        doc, runs, problems = self._load_segment(path)
        for message in problems:
            self._problem(path, message)
        if stamp is not None:
            self._parsed[path] = (stamp, (doc, runs))
        return doc, list(runs)

    def _load_segment(self, path: Path) -> tuple[dict[str, Any], list[CellRun], list[str]]:
        """The segment's session document, valid cell runs, and what was wrong with the
        others; StoreCorrupt when the file as a whole is unusable."""
        fast = _typed_segment(path)
        if fast is not None:
            return fast
        data = read_json_file(path)
        if data is None:
            if not path.exists():  # deleted since it was listed
                return {}, [], []
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
        problems: list[str] = []
        for key in sorted(doc.cell_runs, key=_doc_key):
            raw = doc.cell_runs[key]
            try:
                runs.append(cell_run_from_dict(raw))
            except MlopsNbError as exc:
                problems.append(f"cell run {_record_name(key, raw)} skipped: {exc}")
        return (session_docs[0] if session_docs else {}), runs, problems

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

    def run_columns(self, experiment: str | None = None, *, newest: int | None = None
                    ) -> RunColumns:
        """Every run as columns, from each segment's summary (rebuilt where stale); with
        `newest`, only the newest that many by (started_at, seq), in the store's order, and
        only the segments holding them decoded (`total` still counts every run)."""
        with _gc_paused():
            return self._run_columns(experiment, newest)

    def summary(self, seg: Segment, part: str) -> dict[str, Column] | None:
        """The decoded `part` ("runs" or "cells") of a segment's summary: from the index while
        its stamp matches the segment, else summarised from the segment now and written back
        for the next reader. None (a problem noted) when the segment cannot be read."""
        found = self._current_summary(seg)
        if found is not None:
            try:
                return found.columns() if part == "runs" else found.cells()
            except SummaryDamaged:
                pass
        built = self._summarise(seg, index_path_for(self.home, seg.path))
        if built is None:
            return None
        return built.columns() if part == "runs" else built.cells()

    def _current_summary(self, seg: Segment) -> Summary | None:
        found = read_summary(index_path_for(self.home, seg.path), seg.stat)
        if found is not None:
            for message in found.problems:
                self._problem(seg.path, message)
        return found

    def keep_encoded(self) -> None:
        """Keep each segment's encoded columns for this reader's later `run_columns` calls:
        `mlops-nb runs` reads the newest runs, then every run (to name them), and reading
        and decoding each index file once is a tenth of its time at 100,000 runs. Costs the
        encoded columns' memory for the reader's life, so only short-lived readers ask."""
        self._encoded = {}

    def _encoded_runs(self, seg: Segment) -> tuple[int, dict[str, Any]] | None:
        """A segment's runs as still-encoded columns (decoded together with every other
        segment's by `columnar.concat_encoded`), summarising the segment if need be."""
        if self._encoded is None:
            return self._encoded_runs_now(seg)
        st = seg.stat
        stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        kept = self._encoded.get(seg.path)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        got = self._encoded_runs_now(seg)
        self._encoded[seg.path] = (stamp, got)
        return got

    def _encoded_runs_now(self, seg: Segment) -> tuple[int, dict[str, Any]] | None:
        import msgspec

        found = self._current_summary(seg)
        if found is None:
            found = self._summarise(seg, index_path_for(self.home, seg.path))
            if found is None:
                return None
        try:
            pairs = msgspec.msgpack.decode(found.raw_cols)
            cols = {k.decode("utf-8", "surrogatepass"): v for k, v in pairs}
            if not isinstance(cols.get("id"), dict) or (found.n and cols["id"].get("k") != STR):
                raise ValueError("no id column")
        except (msgspec.DecodeError, ValueError, TypeError, AttributeError):
            cols = {k: v for k, v in _reencoded(self.summary(seg, "runs")).items()}
        return found.n, cols

    def _summarise(self, seg: Segment, index: Path) -> Summary | None:
        import msgspec

        from .index import encode_summary

        try:
            _, runs, problems = self._load_segment(seg.path)
        except StoreCorrupt as exc:
            self._problem(seg.path, str(exc))
            return None
        for message in problems:
            self._problem(seg.path, message)
        stamp = segment_stamp(seg.stat)
        rows = [summary_row(cr) for cr in runs if cr.is_run]
        cells = [cell_row(cr) for cr in runs]
        payload = encode_summary(stamp, rows, cells, problems)
        # A store this user may read but not write is summarised again next time.
        with contextlib.suppress(OSError):
            write_read_summary(index, seg.path, stamp, payload)
        doc = msgspec.msgpack.decode(payload)
        return Summary(doc["n"], doc["cells_n"], problems, msgspec.msgpack.encode(doc["cols"]),
                       msgspec.msgpack.encode(doc["cells"]))

    def _run_columns(self, experiment: str | None, newest: int | None) -> RunColumns:
        encoded: list[tuple[Segment, int, dict[str, Any]]] = []
        for seg in self.segments():
            got = self._encoded_runs(seg)
            if got is not None:
                encoded.append((seg, got[0], got[1]))
        total = None
        if newest is not None:
            total, encoded = _holding_newest(encoded, experiment, newest)
        keys: dict[str, None] = dict.fromkeys(BASE_COLUMNS)
        for _, _, cols in encoded:
            keys.update(dict.fromkeys(cols))
        try:
            typed = {k: concat_encoded([(cols.get(k), n) for _, n, cols in encoded])
                     for k in keys} if encoded else {}
            parts = [(seg.path, n, cols) for seg, n, cols in encoded]
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            # Some summary is damaged though stamped as current: decode segment by segment,
            # summarising again each one that does not decode.
            decoded = [(seg.path, self.summary(seg, "runs")) for seg, _, _ in encoded]
            parts = [(path, len(cols["id"]), cols) for path, cols in decoded if cols is not None]
            keys = dict.fromkeys(BASE_COLUMNS)
            for _, _, cols in parts:
                keys.update(dict.fromkeys(cols))
            typed = {k: concat([(cols.get(k), n) for _, n, cols in parts]) for k in keys} \
                if parts else {}
        n = sum(count for _, count, _ in parts)
        segments = [(path, count) for path, count, _ in parts]
        if experiment is not None and n:
            import numpy as np

            keep = np.equal(typed["experiment"].values, experiment)
            segments = _kept_segments(segments, keep)
            typed = {k: c.take(keep) for k, c in typed.items()}
            typed = {k: c for k, c in typed.items() if k in BASE_COLUMNS or c.is_set().any()}
            n = int(keep.sum())
        if newest is not None and n > newest:
            keep = _newest_rows(typed, newest)
            segments = _kept_segments(segments, keep)
            typed = {k: c.take(keep) for k, c in typed.items()}
            typed = {k: c for k, c in typed.items() if k in BASE_COLUMNS or c.is_set().any()}
            n = int(keep.sum())
        if not n:  # no runs (in this experiment): the base columns, empty, as ever
            out = RunColumns({k: [] for k in BASE_COLUMNS}, 0, list(self.problems))
        else:
            out = RunColumns(None, n, list(self.problems), typed=typed, segments=segments)
        out.total = n if total is None else total
        return out

    def resolve(self, prefix: str) -> CellRun:
        """A cell run by id or unique id prefix, like git: runs first, then any cell run.
        Only the segment holding it is parsed."""
        prefix = prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise RunNotFound(f"{prefix!r} is not a run id (ids are hexadecimal)")
        where: dict[str, Path] = {}
        for seg in self.segments():  # runs first: their ids alone, from the summaries
            got = self._encoded_runs(seg)
            if got is None or not got[0]:
                continue
            try:
                ids = str_values(got[1]["id"], got[0])
            except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
                ids = (self.summary(seg, "runs") or {"id": _no_ids()})["id"].values.tolist()
            for rid in ids:
                if rid.startswith(prefix):
                    where.setdefault(rid, seg.path)
        if not where:
            for seg in self.segments():
                cells = self.summary(seg, "cells")
                if cells is None:
                    continue
                for rid in cells["id"].values.tolist():
                    if rid.startswith(prefix):
                        where.setdefault(rid, seg.path)
        matches = sorted(where)
        if not matches:
            raise RunNotFound(f"no run id starts with {prefix!r}; `mlops-nb runs` lists them")
        if len(matches) > 1:
            shown = ", ".join(m[:12] for m in matches[:5])
            raise AmbiguousRunId(
                f"{prefix!r} matches {len(matches)} runs ({shown}...); give more characters"
            )
        path = where[matches[0]]
        for seg in self.segments():
            if seg.path == path:
                try:
                    _, runs = self.load_segment(seg)
                except StoreCorrupt as exc:
                    self._problem(seg.path, str(exc))
                    break
                for cr in runs:
                    if cr.id == matches[0]:
                        return cr
        raise RunNotFound(f"run {matches[0]} is listed in the index but its segment is gone")

    def lineage(self, run: CellRun) -> tuple[list[str], dict[str, int | None]]:
        """A run's lineage (as `lineage.lineage_ids` derives it) and the execution count of
        each cell run of its session, from the segments' summaries: only the run's own
        segment is ever parsed, so `show` stays fast however long the session's chain."""
        deps: dict[str, list[str]] = {}
        stored: dict[str, list[str]] = {}
        seq: dict[str, int] = {}
        counts: dict[str, int | None] = {}
        for seg in self.segments():
            if seg.session != run.session:
                continue
            cells = self._cells_lists(seg)
            if cells is None:
                decoded = self.summary(seg, "cells")
                if decoded is None:
                    continue
                cells = {k: c.tolist() for k, c in decoded.items()}
            ids = cells["id"]
            for key, out in (("deps", deps), ("lineage", stored)):
                for rid, value in zip(ids, cells[key], strict=True):
                    if isinstance(value, list):
                        out[rid] = [d for d in value if isinstance(d, str)]
            seq.update(zip(ids, cells["seq"], strict=True))
            counts.update(zip(ids, cells["execution_count"], strict=True))
        if run.lineage is not None:
            return list(run.lineage), counts
        from ..lineage import deps_closure

        return deps_closure(run.deps, deps, stored, seq), counts

    def _cells_lists(self, seg: Segment) -> dict[str, list[Any]] | None:
        """A segment's cells summary as plain lists, decoded without numpy (`show` of a long
        chain reads one per segment). None when the summary is not current or anything in it
        is off: then `summary` answers, and rebuilds it, as before."""
        found = self._current_summary(seg)
        if found is None:
            return None
        import msgspec

        try:
            pairs = msgspec.msgpack.decode(found.raw_cells)
            if not isinstance(pairs, list):
                return None
            encoded: dict[str, Any] = {}
            for pair in pairs:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], bytes)):
                    return None
                encoded[pair[0].decode("utf-8", "surrogatepass")] = pair[1]
            n = found.cells_n
            cells = {k: plain_values(enc, n) for k, enc in encoded.items()}
            if "id" not in cells or (n and (encoded["id"].get("k") != STR
                                            or None in cells["id"])):
                return None
        except (msgspec.DecodeError, ValueError, KeyError, TypeError, AttributeError,
                UnicodeDecodeError):
            return None
        return cells

    def session_log(self, session: str, *, light: bool = False) -> list[CellRun]:
        """A session's cell runs in execution order: what lineage and export replay.
        `light`: without the effective parameters and data (records.LIGHT_OMITS are None),
        which an export of one run never reads from the others: a third less to build."""
        with _gc_paused():  # thousands of records, all kept: half the time went to the GC
            if not light:
                return sorted(self.iter_cell_runs(session), key=lambda cr: cr.seq)
            runs: list[CellRun] = []
            for seg in self.segments():
                if seg.session != session:
                    continue
                fast = _typed_segment(seg.path, light=True)
                if fast is not None:
                    runs.extend(fast[1])
                    continue
                try:  # anything off: the tolerant full read says what
                    runs.extend(self.load_segment(seg)[1])
                except StoreCorrupt as exc:
                    self._problem(seg.path, str(exc))
            return sorted(runs, key=lambda cr: cr.seq)

    def lineage_log(self, session: str) -> list[Any] | None:
        """A session's cell runs in execution order as lineage records (`records.
        lineage_schema`): what an export's replay reads, the measured values left undecoded
        until `records.cell_run_from_lineage` completes the slice's few. None when a segment
        is not sound: then `session_log` reads it the tolerant way and says what was wrong."""
        with _gc_paused():
            runs: list[Any] = []
            for seg in self.segments():
                if seg.session != session:
                    continue
                fast = _typed_segment(seg.path, light="lineage")
                if fast is None:
                    return None
                runs.extend(fast[1])
            return sorted(runs, key=lambda cr: cr.seq)


_SEGMENT_DOC: Any = None
_TYPED_SEGMENT: dict[bool | str, Any] = {}


def _typed_segment(path: Path, light: bool | str = False
                   ) -> tuple[dict[str, Any], list[Any], list[str]] | None:
    """The segment decoded straight into validated records, in one pass: the common case
    of a sound file (a 20,000-cell session is read for every export of its last run). None
    when anything is off (unreadable, not JSON to msgspec, one record invalid or newer):
    then the tolerant path reads it record by record and says what was wrong."""
    import msgspec

    from ..records import SCHEMA_VERSION, cell_run_from_checked, cell_run_schema, lineage_schema

    if light not in _TYPED_SEGMENT:
        schema = lineage_schema() if light == "lineage" else cell_run_schema(light=bool(light))
        _TYPED_SEGMENT[light] = msgspec.defstruct("TypedSegmentDoc", [
            ("session", dict[str, Any], msgspec.field(default_factory=dict)),
            (CELL_RUNS_TABLE, dict[str, schema],  # type: ignore[valid-type]
             msgspec.field(default_factory=dict)),
        ])
    try:
        doc = msgspec.json.decode(path.read_bytes(), type=_TYPED_SEGMENT[light])
    except (OSError, msgspec.DecodeError):
        return None
    records = doc.cell_runs
    if not records and not doc.session:
        return None
    if any(r.schema > SCHEMA_VERSION for r in records.values()):
        return None
    session_docs = [d for d in doc.session.values() if isinstance(d, dict)]
    if light == "lineage":  # the structs stand in for the records (lineage_log)
        runs: list[Any] = [records[k] for k in sorted(records, key=_doc_key)]
    else:
        runs = [cell_run_from_checked(records[k]) for k in sorted(records, key=_doc_key)]
    return (session_docs[0] if session_docs else {}), runs, []


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


def _order_keys(typed: dict[str, Column]) -> tuple[Any, Any]:
    """(started_at, seq) as float arrays, a missing value oldest."""
    import numpy as np

    out = []
    for key in ("started_at", "seq"):
        col = typed[key]
        if col.kind not in ("i8", "f8"):
            raise ValueError("not numeric")
        vals = col.values.astype(np.float64)
        if col.mask is not None:
            vals[~col.mask] = -np.inf
        out.append(np.nan_to_num(vals, nan=-np.inf))
    return out[0], out[1]


def _newest_rows(typed: dict[str, Column], newest: int) -> Any:
    """A mask of the `newest` rows by (started_at, seq); ties keep the later row."""
    import numpy as np

    n = len(typed["id"])
    keep = np.zeros(n, dtype=bool)
    try:
        t, s = _order_keys(typed)
    except (ValueError, KeyError):
        keep[max(n - newest, 0):] = True
        return keep
    order = np.lexsort((np.arange(n), s, t))
    keep[order[max(n - newest, 0):]] = True
    return keep


def _holding_newest(encoded: list[tuple[Segment, int, dict[str, Any]]], experiment: str | None,
                    newest: int) -> tuple[int, list[tuple[Segment, int, dict[str, Any]]]]:
    """How many runs match, and the segments that hold the newest `newest` of them: only the
    order columns of every segment are decoded (the rest only for those segments)."""
    import numpy as np

    keys = ["id", "started_at", "seq"] + (["experiment"] if experiment is not None else [])
    try:
        typed = {k: concat_encoded([(cols.get(k), n) for _, n, cols in encoded]) for k in keys}
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return sum(n for _, n, _ in encoded), encoded  # damaged: the full path sorts it out
    match = (np.equal(typed["experiment"].values, experiment) if experiment is not None
             else np.ones(len(typed["id"]), dtype=bool))
    total = int(match.sum())
    if total <= newest:
        return total, encoded
    sub = {k: c.take(match) for k, c in typed.items()}
    picked = np.zeros(len(match), dtype=bool)
    picked[np.flatnonzero(match)[_newest_rows(sub, newest)]] = True
    out = []
    start = 0
    for item in encoded:
        if picked[start:start + item[1]].any():
            out.append(item)
        start += item[1]
    return total, out


def _reencoded(cols: dict[str, Column] | None) -> dict[str, Any]:
    """Decoded columns encoded again (a damaged summary just rebuilt from its segment)."""
    from .columnar import encode_column

    return {k: encode_column(c.tolist()) for k, c in (cols or {"id": _no_ids()}).items()}


def _no_ids() -> Column:
    import numpy as np

    return Column(STR, np.empty(0, dtype=object))


def _kept_segments(segments: list[tuple[Path, int]], keep: Any) -> list[tuple[Path, int]]:
    out: list[tuple[Path, int]] = []
    start = 0
    for path, count in segments:
        kept = int(keep[start:start + count].sum())
        start += count
        if kept:
            out.append((path, kept))
    return out


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
