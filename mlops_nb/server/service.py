"""What the REST handlers answer, as plain functions over the store (no tornado here).

The same functions the CLI and the widget use (`StoreReader`, `Comparison`, `export_run`,
`render_report`) do the work; this module only shapes their results as JSON-ready dicts in the
payload form the shared runs view reads (`compare.payload.build_payload`, the one the widget and
the report draw from) plus the paging and store facts the panel needs.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import json
import math
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from ..errors import MlopsNbError, StoreNotFound
from ..store.layout import SESSIONS_DIR
from ..store.storage import TEMP_SUFFIX
from .paths import api_path, resolve_inside

MAX_LIMIT = 5000
DEFAULT_LIMIT = 500
VERDICTS_DIR = "verdicts"
NOISE_DIR = "noise"  # noise.NOISE_DIR, named here so the token needs no import


# -- locating the store ---------------------------------------------------------------------------
def store_for(root: str | os.PathLike[str], path: str | None) -> Path | None:
    """The store serving `path` (a notebook or folder under root, default root), or None.

    Found like the kernel finds it (nearest `.mlops_nb/` at or above, MLOPS_NB_HOME first), so
    the panel shows the runs the notebook's kernel writes.
    """
    from ..store.location import find_home

    target = resolve_inside(root, path)
    start = target if target.is_dir() else target.parent
    try:
        home = find_home(start)
    except StoreNotFound:
        return None
    return home if home.is_dir() else None


def store_token(home: Path | None) -> str:
    """A cheap fingerprint of everything a listing depends on: one scandir + stat per folder.

    Segments are replaced atomically by their writer, so (name, size, mtime_ns) changes with
    every flush; verdict files likewise when a reproduce finishes. A writer's temporary file
    is left out: counting it would report a change before the new segment is in place, and
    the panel would reload twice for one run.
    """
    if home is None:
        return "none"
    h = xxhash.xxh64()
    for folder in _watched_dirs(home):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for e in entries:
            if e.name.endswith(TEMP_SUFFIX) and e.name.startswith("."):
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            h.update(f"{folder}/{e.name}:{st.st_size}:{st.st_mtime_ns};".encode(
                "utf-8", "surrogateescape"))
    return h.hexdigest()


def store_stamp(home: Path | None) -> tuple[int, ...]:
    """Cheaper than `store_token`: the modification times of the watched folders alone (one
    stat each). A writer's atomic replace changes its folder's mtime, so the change feed
    polls this often and computes the full token only when it moved (or now and then, for
    file systems with coarse times)."""
    if home is None:
        return ()
    out: list[int] = []
    for folder in (str(home / SESSIONS_DIR), *_watched_dirs(home)):
        try:
            out.append(os.stat(folder).st_mtime_ns)
        except OSError:
            out.append(-1)
    return tuple(out)


def _watched_dirs(home: Path) -> list[str]:
    sessions = home / SESSIONS_DIR
    dirs = [str(home / VERDICTS_DIR), str(home / NOISE_DIR)]  # a verdict or noise changes rows
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        dirs += sorted(e.path for e in os.scandir(sessions) if e.is_dir(follow_symlinks=False))
    return dirs


# -- a small cache of loaded frames, keyed by the store token ------------------------------------
@dataclass
class _Loaded:
    token: str
    df: Any
    verdicts: dict[str, dict[str, Any]]


_cache: dict[tuple[str, str | None], _Loaded] = {}
_cache_lock = threading.Lock()
_pages: dict[tuple[str, str], tuple[Any, dict[str, Any], str]] = {}  # default-order pages
_build_locks: dict[tuple[str, str | None], threading.Lock] = {}


def _single_flight(key: tuple[str, str | None]) -> threading.Lock:
    """One lock per cache key, held while its value is built: requests run in threads, and
    after a store change the panel's page requests arrive together; without it each would
    rebuild the same frame and comparison at once, all slowed by sharing the GIL."""
    with _cache_lock:
        if len(_build_locks) > 256:
            _build_locks.clear()
        return _build_locks.setdefault(key, threading.Lock())


def load_frame(home: Path, experiment: str | None) -> tuple[Any, dict[str, dict[str, Any]]]:
    """The runs of `experiment` as a DataFrame and the stored verdicts; reread only when the
    store changed since the last call (the panel asks again on every change-feed event)."""

    token = store_token(home)
    key = (str(home), experiment)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit.token == token:
            return hit.df, hit.verdicts
    with _single_flight(key):
        with _cache_lock:  # built by another request while this one waited
            hit = _cache.get(key)
            if hit is not None and hit.token == token:
                return hit.df, hit.verdicts
        return _load_frame(home, experiment, key, token)


def _load_frame(home: Path, experiment: str | None, key: tuple[str, str | None], token: str
                ) -> tuple[Any, dict[str, dict[str, Any]]]:
    from ..comparison.model import load_verdicts
    from ..store.reader import StoreReader
    from ..table import runs_frame

    if experiment is None:
        df = runs_frame(StoreReader(home).run_columns(None))
        verdicts = load_verdicts(home)
    else:  # one read of the store serves the experiment list and every experiment's runs
        full, verdicts = load_frame(home, None)
        df = full[full["experiment"] == experiment] if len(full) else full
        df = df[[c for c in df.columns
                 if not c.startswith(("params.", "metrics.")) or df[c].notna().any()]]
        df = df.reset_index(drop=True)
        df.attrs = dict(full.attrs)
    with _cache_lock:
        if len(_cache) > 32:
            _cache.clear()
        _cache[key] = _Loaded(token, df, verdicts)
    return df, verdicts


# -- JSON shaping ---------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy/pandas scalars unwrapped, NaN and infinities as null,
    timestamps as ISO 8601, anything else as its text (never code: the front end shows text)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if hasattr(value, "isoformat") and hasattr(value, "tz_convert"):  # pandas Timestamp
        return value.isoformat()
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        return jsonable(value.item())
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError, ImportError):
        pass
    return str(value)


# -- experiments ----------------------------------------------------------------------------------
def experiments(root: str | os.PathLike[str], path: str | None) -> dict[str, Any]:
    """The experiments of the store serving `path`, with counts and which one `path` (a
    notebook) records into: its latest run's experiment, else the default (the file's stem).

    Asked on every store change, beside the first runs page: one group-by over the frame, and
    each distinct notebook path resolved once (10,000 runs come from a handful of notebooks)."""
    home = store_for(root, path)
    if home is None:
        return {"store": None, "experiments": [], "notebook_experiment": None}
    df, _ = load_frame(home, None)
    out: list[dict[str, Any]] = []
    mine: str | None = None
    if len(df):
        api = {p: api_path(root, p) if isinstance(p, str) else None
               for p in df["notebook"].dropna().unique().tolist()}
        groups = df.groupby("experiment", sort=True)
        counts = groups.size()
        last = groups["started_at"].max()
        notebooks = groups["notebook"].agg(lambda s: s.dropna().unique().tolist())
        for name in counts.index:
            out.append({"name": str(name), "runs": int(counts[name]),
                        "last_run_at": jsonable(last[name]),
                        "notebooks": sorted({api[p] for p in notebooks[name] if api.get(p)})})
        if path and path.endswith(".ipynb"):
            want = path.lstrip("/")
            hits = df["experiment"][df["notebook"].isin([p for p, a in api.items() if a == want])]
            if len(hits):
                mine = str(hits.iloc[-1])
            elif any(e["name"] == Path(want).stem for e in out):
                mine = Path(want).stem
    return {"store": api_path(root, home), "experiments": out, "notebook_experiment": mine}


# -- runs -----------------------------------------------------------------------------------------
def runs_page(root: str | os.PathLike[str], path: str | None, *, experiment: str | None = None,
              query: str = "", sort: str | None = None, ascending: bool | None = None,
              metric: str | None = None, goal: str | None = None, limit: int = DEFAULT_LIMIT,
              offset: int = 0) -> dict[str, Any]:
    """One page of runs, filtered and sorted, in the runs view's payload form."""
    return _runs(root, path, experiment, query, sort, ascending, metric, goal, limit,
                 offset)[0]


def runs_json(root: str | os.PathLike[str], path: str | None, *, experiment: str | None = None,
              query: str = "", sort: str | None = None, ascending: bool | None = None,
              metric: str | None = None, goal: str | None = None, limit: int = DEFAULT_LIMIT,
              offset: int = 0, cancelled: Callable[[], bool] = lambda: False) -> str:
    """`runs_page` as JSON text (NaN refused), written once per page while the store stays the
    same and in the request's thread, so the server's event loop never serialises 10,000 runs.

    A later page (offset > 0: the panel loading the rest in the background) gives way to first
    pages being built, and stops with `Cancelled` once `cancelled()` says its request is gone
    (a newer listing aborted it), so after a store change the first page of the new listing
    does not queue behind the old listing's pages."""
    with _foreground() if not offset else contextlib.nullcontext():
        payload, text = _runs(root, path, experiment, query, sort, ascending, metric, goal,
                              limit, offset, cancelled)
    return text if text is not None else json.dumps(payload, allow_nan=False)


class Cancelled(Exception):
    """The request this work was for has gone away."""


_first_pages = 0
_first_pages_cond = threading.Condition()


@contextlib.contextmanager
def _foreground() -> Iterator[None]:
    global _first_pages
    with _first_pages_cond:
        _first_pages += 1
    try:
        yield
    finally:
        with _first_pages_cond:
            _first_pages -= 1
            _first_pages_cond.notify_all()


def _background_checkpoint(cancelled: Callable[[], bool]) -> None:
    """Wait while first pages are being built (at most a second), then stop if cancelled."""
    with _first_pages_cond:
        _first_pages_cond.wait_for(lambda: _first_pages == 0, timeout=1.0)
    if cancelled():
        raise Cancelled


def _runs(root: str | os.PathLike[str], path: str | None, experiment: str | None, query: str,
          sort: str | None, ascending: bool | None, metric: str | None, goal: str | None,
          limit: int, offset: int, cancelled: Callable[[], bool] = lambda: False
          ) -> tuple[dict[str, Any], str | None]:
    if goal not in (None, "min", "max"):
        raise MlopsNbError(f"goal must be 'min' or 'max', not {goal!r}")
    limit = max(0, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    home = store_for(root, path)
    if home is None:
        return _empty_payload(experiment), None
    df, verdicts = load_frame(home, experiment)
    if not len(df):
        return _empty_payload(experiment, problems=df.attrs.get("problems", [])), None
    if metric is not None and not metric.startswith("metrics."):
        metric = f"metrics.{metric}"
    if sort and sort not in df.columns:
        raise MlopsNbError(f"cannot sort by {sort!r}: no such column")
    cmp = _comparison(home, experiment, df, verdicts, metric, goal)
    if query.strip() or sort:
        return _page(root, home, experiment, df, cmp, query, sort, ascending, limit,
                     offset), None
    # The panel's own listing (default order, page by page): the same pages for every request
    # until the store changes, so each is built and serialised once, even when a reload and
    # the change feed ask for the first page together.
    key = (str(home), f"page:{root}:{experiment}:{metric}:{goal}:{limit}:{offset}")
    with _cache_lock:
        hit = _pages.get(key)
    if hit is not None and hit[0] is cmp:
        return dict(hit[1]), hit[2]
    with _single_flight(key):
        with _cache_lock:
            hit = _pages.get(key)
        if hit is not None and hit[0] is cmp:
            return dict(hit[1]), hit[2]
        if offset:
            _background_checkpoint(cancelled)
        payload = _page(root, home, experiment, df, cmp, query, sort, ascending, limit, offset)
        if offset:
            _background_checkpoint(cancelled)
        text = json.dumps(payload, allow_nan=False)
        with _cache_lock:
            if len(_pages) > 64:
                _pages.clear()
            _pages[key] = (cmp, payload, text)
        return dict(payload), text


def _page(root: str | os.PathLike[str], home: Path, experiment: str | None, df: Any, cmp: Any,
          query: str, sort: str | None, ascending: bool | None, limit: int, offset: int
          ) -> dict[str, Any]:
    from ..comparison.model import Filter

    if query.strip() or sort:
        cmp = copy.copy(cmp)  # the cached one stays in its default state for other requests
        if query.strip():
            cmp.flt = Filter(query, cmp.metric)
        if sort:
            cmp.sort_by, cmp.ascending = sort, ascending
        cmp.update()
    from ..comparison.payload import build_payload

    total = len(cmp.view)
    if offset:
        cmp = copy.copy(cmp)
        cmp.view = cmp.view.iloc[offset:]
    title = f"experiment {experiment}" if experiment else "all runs"
    payload = build_payload(cmp, limit=limit, title=title, experiment=experiment)
    if "notebook" in payload["data"]:  # server paths become the API paths the browser knows
        paths: dict[Any, str | None] = {}
        for p in payload["data"]["notebook"]:
            if p not in paths:
                paths[p] = api_path(root, p) if isinstance(p, str) else None
        payload["data"]["notebook"] = [paths[p] for p in payload["data"]["notebook"]]
    payload.update({
        "store": api_path(root, home),
        "sort": {"key": cmp.sort_by, "ascending": cmp.ascending if cmp.ascending is not None
                 else (cmp.default_ascending(cmp.sort_by) if cmp.sort_by else True)},
        "filter": query,
        "total": total,
        "all": len(df),
        "offset": offset,
        "limit": limit,
        "truncated": offset + limit < total,
        "problems": [str(p) for p in df.attrs.get("problems", [])],
    })
    return payload


def _empty_payload(experiment: str | None, problems: list[str] | None = None) -> dict[str, Any]:
    from ..comparison.payload import VERSION

    return {"version": VERSION, "n": 0, "experiment": experiment, "store": None, "columns": [],
            "data": {}, "nones": {}, "name_auto": [], "metric": None, "goal": None, "best": [],
            "constant": {}, "folded": {}, "title": "", "sort": {"key": None, "ascending": True},
            "filter": "", "total": 0, "all": 0, "offset": 0, "limit": 0, "truncated": False,
            "problems": [str(p) for p in problems or []]}


def _comparison(home: Path, experiment: str | None, df: Any, verdicts: dict[str, Any],
                metric: str | None, goal: str | None) -> Any:
    """The Comparison of a loaded frame (best run, varying parameters: a few hundred ms at
    10,000 runs), kept while the frame is the same object, i.e. the store did not change."""
    from ..comparison.model import Comparison

    key = (str(home), f"cmp:{experiment}:{metric}:{goal}")
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit.df[0] is df:
            return hit.df[1]
    with _single_flight(key):
        with _cache_lock:  # built by another request while this one waited
            hit = _cache.get(key)
            if hit is not None and hit.df[0] is df:
                return hit.df[1]
        from ..noise import load_all_noise

        cmp = Comparison(df, metric=metric, goal=goal, verdicts=verdicts,
                         noise=load_all_noise(home))
        with _cache_lock:
            _cache[key] = _Loaded("", (df, cmp), {})
        return cmp


# -- one run --------------------------------------------------------------------------------------
def run_detail(root: str | os.PathLike[str], path: str | None, run_id: str) -> dict[str, Any]:
    """Everything the details pane shows: `mlops-nb show --format json` plus the code, the
    data fingerprints, the session's environment and the stored verdict."""
    from ..comparison.identity import merged_params
    from ..comparison.model import data_fingerprints, flatten_environment, load_verdicts
    from ..records import run_view
    from ..store.reader import StoreReader

    home = _require_store(root, path)
    reader = StoreReader(home)
    cr = reader.resolve(run_id)
    view = run_view(cr)
    view["params"] = merged_params(view.get("params") or {})  # as the runs table shows them
    view["notebook"] = api_path(root, cr.notebook) if cr.notebook else None
    view["code_text"] = reader.blobs.get_text(cr.code) if cr.code else None
    view["data_fingerprints"] = data_fingerprints(view.get("data"))
    view["environment"] = flatten_environment(
        reader.session_info(cr.session).get("environment"))
    view["verdict"] = load_verdicts(home).get(cr.id)
    return jsonable(view)


def run_lineage(root: str | os.PathLike[str], path: str | None, run_id: str) -> dict[str, Any]:
    """The cell runs of a run's lineage slice and the run itself, in execution order, each
    with its notebook cell id and recorded code, so the front end can find the cells and tell
    which were edited since."""
    from ..store.reader import StoreReader

    home = _require_store(root, path)
    reader = StoreReader(home)
    run = reader.resolve(run_id)
    log = reader.session_log(run.session)
    by_id = {cr.id: cr for cr in log}
    ids = [*list(run.lineage if run.lineage is not None else run.deps), run.id]
    cells: list[dict[str, Any]] = []
    for rid in ids:
        cr = by_id.get(rid)
        if cr is None:
            cells.append({"id": rid, "missing": True})
            continue
        cells.append({
            "id": cr.id,
            "cell_id": cr.cell_id,
            "execution_count": cr.execution_count,
            "seq": cr.seq,
            "is_run": cr.id == run.id,
            "code": reader.blobs.get_text(cr.code) if cr.code else None,
            "defs": list(cr.defs),
        })
    return jsonable({"run": run.id, "session": run.session,
                     "notebook": api_path(root, run.notebook) if run.notebook else None,
                     "cells": cells})


def run_diff(root: str | os.PathLike[str], path: str | None, a: str, b: str) -> dict[str, Any]:
    """What differs between two runs (the view's "diff" action): the same `diff_runs` the
    widget answers with, its code diff as the view's `msg:custom` reply."""
    from ..comparison.model import diff_runs
    from ..store.reader import StoreReader

    reader = StoreReader(_require_store(root, path))
    ra, rb = reader.resolve(a), reader.resolve(b)
    d = diff_runs(reader, ra.id, rb.id, sessions={ra.id: ra.session, rb.id: rb.session})
    return jsonable({"type": "diff", "ids": [ra.id, rb.id], "code": d.code,
                     "params": d.params, "metrics": d.metrics})


def notebook_cells(root: str | os.PathLike[str], path: str) -> dict[str, Any]:
    """For each cell of notebook `path`, its last tracked cell run: what the cell badges show
    (metrics, or the error of a failed run). Reread only when the store changed."""

    home = store_for(root, path)
    if home is None:
        return {"notebook": path, "cells": {}}
    want = path.lstrip("/")
    token = store_token(home)
    key = (str(home), f"cells:{want}")
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit.token == token:
            return hit.df
    out = _notebook_cells(root, home, want)
    with _cache_lock:
        _cache[key] = _Loaded(token, out, {})
    return out


# (home, root, notebook) -> segment path -> (segment stamp, that segment's last run per cell)
_segment_cells: dict[tuple[str, str, str], dict[Path, tuple[tuple[int, ...], dict[str, Any]]]] = {}


def _notebook_cells(root: str | os.PathLike[str], home: Path, want: str) -> dict[str, Any]:
    """Each segment is parsed once per version: a store change (a kernel's flush) parses the
    segment it rewrote, not the other hundreds (2.5 s of CPU at 10,000 runs, competing with
    the panel's own reload after every new run)."""
    from ..errors import StoreCorrupt
    from ..store.reader import StoreReader

    key = (str(home), str(root), want)
    with _single_flight((str(home), f"cells:{want}")):
        with _cache_lock:
            if key not in _segment_cells and len(_segment_cells) > 16:
                _segment_cells.clear()
            per = _segment_cells.setdefault(key, {})
        reader = StoreReader(home)
        api: dict[str, str | None] = {}
        last: dict[str, Any] = {}
        segments = reader.segments()
        for seg in segments:
            stamp = (seg.stat.st_size, seg.stat.st_mtime_ns, seg.stat.st_ino)
            got = per.get(seg.path)
            if got is None or got[0] != stamp:
                try:
                    _, runs = reader.load_segment(seg)
                except StoreCorrupt:
                    runs = []
                got = per[seg.path] = (stamp, _last_per_cell(root, runs, want, api))
            for cid, cr in got[1].items():
                prev = last.get(cid)
                if prev is None or (cr.started_at, cr.seq) >= (prev.started_at, prev.seq):
                    last[cid] = cr
        for gone in set(per) - {seg.path for seg in segments}:
            del per[gone]
    cells = {
        cid: {"id": cr.id, "is_run": cr.is_run, "status": cr.status, "error": cr.error,
              "metrics": cr.metrics, "name": cr.name, "execution_count": cr.execution_count,
              "started_at": cr.started_at, "experiment": cr.experiment}
        for cid, cr in last.items()
    }
    return jsonable({"notebook": want, "cells": cells})


def _last_per_cell(root: str | os.PathLike[str], runs: list[Any], want: str,
                   api: dict[str, str | None]) -> dict[str, Any]:
    last: dict[str, Any] = {}
    for cr in runs:
        if not cr.cell_id or not cr.notebook:
            continue
        if cr.notebook not in api:
            api[cr.notebook] = api_path(root, cr.notebook)
        if api[cr.notebook] != want:
            continue
        prev = last.get(cr.cell_id)
        if prev is None or (cr.started_at, cr.seq) >= (prev.started_at, prev.seq):
            last[cr.cell_id] = cr
    return last


def _require_store(root: str | os.PathLike[str], path: str | None) -> Path:
    home = store_for(root, path)
    if home is None:
        raise StoreNotFound("no .mlops_nb/ store for this folder yet: `%track on` in a notebook "
                            "records runs")
    return home


# -- actions --------------------------------------------------------------------------------------
def export(root: str | os.PathLike[str], path: str | None, run_id: str,
           output: str | None = None, force: bool = False) -> dict[str, Any]:
    """Write the run's export folder (default `exports/<run id prefix>` beside the notebook,
    which must stay inside the root) and return the API paths of its files."""
    from ..exporting import export_run
    from ..store.reader import StoreReader

    home = _require_store(root, path)
    cr = StoreReader(home).resolve(run_id)
    if output:
        out = resolve_inside(root, output)
    else:
        base = resolve_inside(root, path)
        base = base if base.is_dir() else base.parent
        out = base / "exports" / cr.id[:12]
        resolve_inside(root, api_path(root, out))  # refuses a symlinked exports/ leading out
    written = export_run(cr.id, out, home=home, force=force)
    rel = api_path(root, written)
    return {"run": cr.id, "folder": rel, "train_py": f"{rel}/train.py" if rel else None}


def report_html(root: str | os.PathLike[str], path: str | None, experiment: str | None,
                metric: str | None = None, goal: str | None = None) -> str:
    """The self-contained HTML comparison report (`mlops-nb compare -o`), as text."""
    from ..comparison.model import Comparison
    from ..comparison.report import render_report

    home = _require_store(root, path)
    df, verdicts = load_frame(home, experiment)
    if metric is not None and not metric.startswith("metrics."):
        metric = f"metrics.{metric}"
    cmp = Comparison(df, metric=metric, goal=goal, verdicts=verdicts)
    title = f"mlops-nb runs · {experiment}" if experiment else "mlops-nb runs"
    return render_report(cmp, title=title, experiment=experiment, store=api_path(root, home))
