"""The comparison widget: the runs view (`static/runs_view.js`) as an anywidget over
`model.Comparison`.

The browser gets compact JSON (`payload.py`) and does the sorting, filtering, grouping and
plotting itself, so 100,000 runs cost one message, not a redraw per click. Python keeps the
model: the same sort and filter (`sort()`, `filter()`, `view`), the selection, export and
verify, and answers the view's actions. anywidget needs no JupyterLab extension, so it also
works in Notebook 7 and VS Code. Its display carries a static HTML snapshot (best run and the
table) that survives in the saved notebook where the live widget cannot.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..errors import MlopsNbError
from ..own_threads import own
from .htmltable import esc
from .model import (
    PARAM,
    Comparison,
    RunDiff,
    diff_runs,
    format_value,
    load_comparison,
    load_verdicts,
    short,
)
from .payload import build_payload

STATIC = Path(__file__).resolve().parent.parent / "static"
SNAPSHOT_ROWS = 50


class CompareWidget(anywidget.AnyWidget):
    """Runs table with frozen id/name/metric columns, linked plots, diff, export and verify."""

    _esm = STATIC / "runs_view.js"
    _css = STATIC / "runs_view.css"
    # Sent as one JSON text: ipywidgets would otherwise walk every value looking for binary
    # buffers, which costs more than encoding 100,000 runs.
    payload = traitlets.Dict().tag(sync=True, to_json=lambda v, w: w._payload_json(v))
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    sort = traitlets.Dict().tag(sync=True)
    filter = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(self, experiment: str | None = None, *, metric: str | None = None,
                 goal: str | None = None, home: str | os.PathLike[str] | None = None,
                 export_dir: str | os.PathLike[str] = "exports", source: str = "local",
                 tracking_uri: str | None = None, **_: Any) -> None:
        self.source = {"source": source, "tracking_uri": tracking_uri}  # local or MLflow
        cmp, store = load_comparison(experiment, metric=metric, goal=goal, home=home,
                                     **self.source)
        super().__init__()
        self.experiment = experiment
        self.cmp: Comparison = cmp
        self.home: Path = store
        self.export_dir = Path(export_dir)
        self.exported: dict[str, Path] = {}
        self.diff: RunDiff | None = None
        self.verify_thread: threading.Thread | None = None
        self.noise_thread: threading.Thread | None = None
        self.payload = build_payload(cmp, title=_title(experiment), experiment=experiment)
        self.on_msg(self._on_msg)
        self.observe(self._on_selected, "selected")

    def _payload_json(self, value: dict[str, Any]) -> str:
        """The payload's JSON text, made once per payload: opening the widget asks for the
        state twice (comm open, then the display), which at 100,000 runs is seconds."""
        cached = getattr(self, "_payload_cache", None)
        if cached is not None and cached[0] is value:
            return cached[1]
        text = _dumps(value)
        self._payload_cache = (value, text)
        return text

    def __repr__(self) -> str:
        """Short text where the widget cannot be drawn (a terminal, nbconvert, a log)."""
        cmp = self.cmp
        text = f"<mlops-nb comparison: {len(cmp.df):,} runs"
        if cmp.metric and cmp.best:
            row = cmp.row(cmp.best[0])
            text += (f"; best by {short(cmp.metric)}: {row['name']} "
                     f"[{cmp.best[0][:8]}] ({format_value(row.get(cmp.metric))})")
        return text + ">"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/html"] = snapshot_html(self.cmp, self.experiment)
        return bundle

    def _ipython_display_(self, **kwargs: Any) -> None:
        """The snapshot as an output of its own, then the live widget (which hides it).

        JupyterLab shows a widget's bundle through the widget renderer only, and a reopened
        notebook has no widget model: the separate snapshot output is what survives.
        """
        from IPython.display import HTML, display

        display(HTML(snapshot_html(self.cmp, self.experiment)))
        data = self._repr_mimebundle_()
        if isinstance(data, tuple):
            data = data[0]
        display(data, raw=True)

    # -- what a script (or a test) drives --------------------------------------------------------
    @property
    def view(self) -> Any:
        """The runs shown, with this widget's filter and sort, as a DataFrame."""
        cmp = self.cmp
        cmp.flt.query = self.filter
        key = self.sort.get("key") if self.sort else None
        if key and key in cmp.df.columns:
            cmp.sort_by, cmp.ascending = key, bool(self.sort.get("ascending"))
        else:
            cmp.sort_by, cmp.ascending = cmp.metric, None
        cmp.update()
        return cmp.view

    def sort_by(self, column: str, ascending: bool | None = None) -> None:
        """Sort by any column (`f1`, `max_depth`, `when`...), as a header click does."""
        key = self._column(column)
        if ascending is None:
            ascending = self.cmp.default_ascending(key)
        self.sort = {"key": key, "ascending": bool(ascending)}

    def set_filter(self, query: str) -> None:
        """Filter with the query language of `query.py`; a bad query raises QueryError."""
        from .payload import columns_spec
        from .query import compile_query

        compile_query(query, columns_spec(self.cmp))  # raises with the closest columns
        self.filter = query

    def select(self, *run_ids: str) -> None:
        """Tick runs by id or unique prefix; two ticked runs are diffed."""
        self.selected = [self._run_id(r) for r in run_ids]

    def set_metric(self, metric: str, goal: str | None = None) -> None:
        self.cmp.set_metric(metric, goal)
        remember_metric(self.home, self.experiment, self.cmp.metric, self.cmp.goal)
        self.payload = build_payload(self.cmp, title=_title(self.experiment),
                                     experiment=self.experiment)

    def refresh(self) -> None:
        """Reload the runs from the store, keeping metric, filter, sort and selection."""
        old = self.cmp
        cmp, self.home = load_comparison(self.experiment, metric=old.metric, goal=old.goal,
                                         home=self.home, **self.source)
        cmp.verdicts = {**cmp.verdicts, **old.verdicts}
        self.cmp = cmp
        known = set(cmp.df["id"]) if len(cmp.df) else set()
        self.selected = [r for r in self.selected if r in known]
        self.payload = build_payload(cmp, title=_title(self.experiment),
                                     experiment=self.experiment)

    def export_best(self, overwrite: bool = False) -> list[Path]:
        if not self.cmp.best:
            self._say("no best run: no run has a value for the chosen metric")
            return []
        return self.export(self.cmp.best[:1], overwrite=overwrite)

    def export_selected(self, overwrite: bool = False) -> list[Path]:
        if not self.selected:
            self._say("tick one or more runs to export first")
            return []
        return self.export(list(self.selected), overwrite=overwrite)

    def export_folder(self, run_id: str) -> Path:
        """`exports/<run name>-<short id>`: a folder a person recognises."""
        return self.export_dir / f"{slug(str(self.cmp.row(run_id)['name']))}-{run_id[:8]}"

    def export(self, ids: list[str], *, overwrite: bool = False) -> list[Path]:
        """Export runs into their folders; an existing export is replaced only when asked."""
        from ..exporting import export_run

        out: list[Path] = []
        for rid in ids:
            folder = self.export_folder(rid)
            if folder.exists() and any(folder.iterdir()) and not overwrite:
                there = describe_export(folder, self.cmp)
                text = f"{folder} already holds {there}."
                self._say(text + " Overwrite it, or keep it?")
                self.send({"type": "confirm", "action": "export", "ids": ids,
                           "text": text + " Overwrite it?"})
                return out
            try:
                path = export_run(rid, folder, home=self.home, force=overwrite)
            except MlopsNbError as exc:
                self._say(f"could not export {self._label(rid)}: {exc}")
                return out
            self.exported[rid] = Path(path)
            out.append(Path(path))
        self._say("; ".join(f"exported {self._label(r)} to {p}" for r, p in
                            zip(ids, out, strict=False)))
        return out

    def verify(self, run_ids: list[str] | None = None) -> threading.Thread | None:
        """Re-run runs (the ticked ones, else the best) in a fresh process, on a thread.

        The status line says what is being verified and ends with each verdict; the returned
        thread (already started) lets a script `join()` it.
        """
        if self.verify_thread is not None and self.verify_thread.is_alive():
            self._say("a verification is already running")
            return self.verify_thread
        from ..reproduction import reproduce

        ids = [self._run_id(r) for r in run_ids] if run_ids else (
            list(self.selected) or self.cmp.best[:1])
        if not ids:
            self._say("tick a run to verify (or choose a metric so there is a best run)")
            return None
        thread = threading.Thread(target=own(self._verify_worker), args=(ids, reproduce),
                                  name="mlops-nb-verify", daemon=True)
        self.verify_thread = thread
        thread.start()
        return thread

    def measure_noise(self, run_ids: list[str] | None = None, seeds: int = 5
                      ) -> threading.Thread | None:
        """`reproduce --seeds N` from the widget: re-run a run (the ticked one, else the best)
        with `seeds` fresh RNG states on a thread; the table then marks the runs whose gap to
        the best is within that spread as "tied with best within noise"."""
        if self.noise_thread is not None and self.noise_thread.is_alive():
            self._say("a noise estimate is already running")
            return self.noise_thread
        if not isinstance(seeds, int) or isinstance(seeds, bool) or not 2 <= seeds <= 50:
            self._say("the noise estimate needs between 2 and 50 seeds")
            return None
        ids = [self._run_id(r) for r in run_ids] if run_ids else (
            list(self.selected) or self.cmp.best[:1])
        if len(ids) != 1:
            self._say("tick one run to estimate its noise (or choose a metric so there is a "
                      "best run)" if not ids else "tick a single run to estimate its noise")
            return None
        thread = threading.Thread(target=own(self._noise_worker), args=(ids[0], seeds),
                                  name="mlops-nb-noise", daemon=True)
        self.noise_thread = thread
        thread.start()
        return thread

    def _noise_worker(self, rid: str, seeds: int) -> None:
        try:
            from ..noise import load_all_noise, measure_noise

            doc, error = self._with_progress(
                lambda: measure_noise(rid, seeds, home=self.home, progress=False),
                lambda t: f"noise of {self._label(rid)}: {seeds} seeded re-runs… {t:.0f} s")
            if error is not None:
                self._say(f"noise of {self._label(rid)}: could not measure: {error}")
                return
            self.cmp.noise = load_all_noise(self.home)
            self.cmp.update()
            self._say(self._noise_text(rid, doc))
            self.payload = build_payload(self.cmp, title=_title(self.experiment),
                                         experiment=self.experiment)
        except Exception as exc:  # the worker must always end with a verdict line
            self._say(f"noise estimate failed: {exc}")

    def _noise_text(self, rid: str, doc: dict[str, Any]) -> str:
        name = short(self.cmp.metric) if self.cmp.metric else None
        m = (doc.get("metrics") or {}).get(name) if name else None
        head = f"noise of {self._label(rid)} over {doc.get('seeds')} seeds"
        if not m:
            return head + (f": {name} was not measured" if name else "")
        tied = len(self.cmp.tied) if rid in self.cmp.best else len(
            (doc.get("ties") or {}).get(name) or [])
        return (f"{head}: {name} spread {format_value(m['spread'])} "
                f"(std {format_value(m['std'])}); {tied} run{'s' if tied != 1 else ''} tied "
                "with it within noise")

    # -- internals ------------------------------------------------------------------------------
    def _on_msg(self, _widget: Any, content: Any, _buffers: Any = None) -> None:
        if not isinstance(content, dict):
            return
        action = content.get("action")
        ids = [str(i) for i in content.get("ids") or []]
        try:
            if action == "export":
                self.export(ids or self.cmp.best[:1], overwrite=bool(content.get("overwrite")))
            elif action == "verify":
                self.verify(ids or None)
            elif action == "noise":
                seeds = content.get("seeds", 5)
                self.measure_noise(ids or None, seeds=seeds if isinstance(seeds, int) else 5)
            elif action == "diff" and len(ids) == 2:
                self._send_diff(ids)
            elif action == "select_metric" and content.get("metric"):
                self.cmp.set_metric(str(content["metric"]), content.get("goal"))
                remember_metric(self.home, self.experiment, self.cmp.metric, self.cmp.goal)
        except MlopsNbError as exc:
            self._say(str(exc))

    def _on_selected(self, change: Any) -> None:
        if len(change["new"]) != 2:
            self.diff = None

    def _send_diff(self, ids: list[str]) -> None:
        a, b = ids
        self.diff = diff_runs(self._reader(), a, b, sessions=self._sessions(a, b))
        self.send({"type": "diff", "ids": ids, "code": self.diff.code})

    def _sessions(self, *ids: str) -> dict[str, str]:
        df = self.cmp.df
        rows = df[df["id"].isin(ids)]
        return dict(zip(rows["id"], rows["session"], strict=True))

    def _reader(self) -> Any:
        from ..store.reader import StoreReader

        return StoreReader(self.home)

    def _column(self, name: str) -> str:
        from .payload import columns_spec
        from .query import resolve

        return str(resolve(name, columns_spec(self.cmp))["key"])

    def _run_id(self, prefix: str) -> str:
        ids = self.cmp.df["id"]
        hits = ids[ids.str.startswith(prefix.strip().lower())]
        if len(hits) != 1:
            what = "no run" if not len(hits) else f"{len(hits)} runs"
            raise MlopsNbError(f"{what} in this comparison match {prefix!r}")
        return str(hits.iloc[0])

    def _label(self, rid: str) -> str:
        try:
            return f"{self.cmp.row(rid)['name']} [{rid[:8]}]"
        except MlopsNbError:
            return rid[:8]

    def _say(self, text: str) -> None:
        self.status = text

    def _with_progress(self, work: Any, status: Any) -> tuple[Any, BaseException | None]:
        """`work()` in a thread while `status(seconds)` is said every half second: a re-run
        takes minutes, and the user should see it is alive. Returns (result, error)."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = work()
            except BaseException as exc:
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=own(run), daemon=True).start()
        t0 = time.monotonic()
        while not done.wait(0.5):
            self._say(status(time.monotonic() - t0))
        return box.get("value"), box.get("error")

    def _reproduce(self, reproduce: Any, rid: str) -> Any:
        """A run this widget exported is verified from that folder (what the user will ship);
        when the folder no longer holds it, from the store, never whatever the folder holds."""
        folder = self.exported.get(rid)
        if folder is not None and folder.is_dir():
            try:
                return reproduce(str(folder), home=self.home, run=rid)
            except MlopsNbError:
                self.exported.pop(rid, None)  # replaced since: verify the run itself
        return reproduce(rid, home=self.home)

    def _verify_worker(self, ids: list[str], reproduce: Any) -> None:
        results: list[str] = []
        try:
            for i, rid in enumerate(ids):
                verdict, error = self._with_progress(
                    lambda rid=rid: self._reproduce(reproduce, rid),
                    lambda t, rid=rid, i=i: f"verifying {self._label(rid)} ({i + 1} of "
                                            f"{len(ids)})… {t:.0f} s")
                if error is not None:
                    results.append(f"{self._label(rid)}: could not verify: {error}")
                else:
                    self.cmp.verdicts[rid] = _verdict_dict(verdict)
                    results.append(f"{self._label(rid)}: {self.cmp.verdict_text(rid)}")
            stored = load_verdicts(self.home)
            for rid in ids:
                if rid in stored and rid not in self.cmp.verdicts:
                    self.cmp.verdicts[rid] = stored[rid]
            self._say(f"verified {len(ids)} run{'s' if len(ids) > 1 else ''}: "
                      + "; ".join(results))
            self.payload = build_payload(self.cmp, title=_title(self.experiment),
                                         experiment=self.experiment)
        except Exception as exc:  # the worker must always end with a verdict line
            self._say(f"verify failed: {exc}")


def _dumps(value: Any) -> str:
    """Compact JSON text: msgspec's encoder (about 5x the standard library's at 100,000 runs),
    the standard library's where msgspec refuses (a lone surrogate from a non-UTF-8 file name,
    an integer beyond 64 bits)."""
    import json

    import msgspec

    try:
        return msgspec.json.encode(value).decode()
    except (UnicodeEncodeError, OverflowError, TypeError, ValueError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _title(experiment: str | None) -> str:
    return f"experiment {experiment}" if experiment else "all runs"


def slug(name: str, limit: int = 60) -> str:
    """A folder-name-safe form of a run name: `RandomForest · max_depth=8` ->
    `RandomForest-max_depth-8`."""
    text = re.sub(r"[^A-Za-z0-9._]+", "-", name).strip("-.")
    return (text[:limit].rstrip("-.") or "run")


def describe_export(folder: Path, cmp: Comparison | None = None) -> str:
    """What an export folder holds, in words: `the export of run <name> [id] from <date>`."""
    import json

    try:
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "files that are not an mlops-nb export"
    rid = str(run.get("run_id") or "")
    name = ""
    if cmp is not None and rid:
        try:
            name = f"{cmp.row(rid)['name']} "
        except MlopsNbError:
            name = ""
    when = ""
    with contextlib.suppress(OSError):
        when = " from " + time.strftime("%Y-%m-%d %H:%M",
                                        time.localtime((folder / "run.json").stat().st_mtime))
    return f"the export of run {name}[{rid[:8]}]{when}"


def remember_metric(home: Path | None, experiment: str | None, metric: str | None,
                    goal: str | None) -> None:
    """Keep the metric last chosen for an experiment, for `mlops-nb compare` without
    --metric."""
    if home is None or metric is None:
        return
    import json

    from ..store.storage import atomic_write_bytes

    path = Path(home) / "view.json"
    try:
        prefs = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(prefs, dict):
            prefs = {}
    except (OSError, ValueError):
        prefs = {}
    prefs.setdefault("metric", {})[experiment or ""] = {"metric": short(metric), "goal": goal}
    with contextlib.suppress(OSError):  # a read-only store still compares
        atomic_write_bytes(path, json.dumps(prefs, indent=1).encode())


def remembered_metric(home: Path | None, experiment: str | None) -> tuple[str, str] | None:
    import json

    if home is None:
        return None
    try:
        prefs = json.loads((Path(home) / "view.json").read_text(encoding="utf-8"))
        got = prefs["metric"][experiment or ""]
        return str(got["metric"]), str(got.get("goal") or "")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _verdict_dict(verdict: Any) -> dict[str, Any]:
    if hasattr(verdict, "to_dict"):
        return dict(verdict.to_dict())
    return {"level": getattr(verdict, "level", str(verdict)), "ok": getattr(verdict, "ok", None)}


def snapshot_html(cmp: Comparison, experiment: str | None = None,
                  rows: int = SNAPSHOT_ROWS) -> str:
    """The comparison as static HTML: the best run and the first rows of the table.

    Plain markup with inline styles only (no script), escaped text: what GitHub, nbviewer and
    a reopened notebook without a kernel show.
    """
    view = cmp.view
    columns = ["name"] + (["model"] if "model" in cmp.df.columns else [])
    metrics = [c for c in cmp.df.columns if c.startswith("metrics.")]
    if cmp.metric in metrics:
        metrics.remove(cmp.metric)
        metrics.insert(0, cmp.metric)
    columns += metrics[:4] + cmp.split.varying[:8] + ["started_at"]
    exp = f" · experiment {esc(experiment)}" if experiment else ""
    parts = ["<div class='mnb-snapshot' style='font:13px system-ui,sans-serif'>",
             f"<div><b>mlops-nb: {len(cmp.df):,} runs</b>{exp}"]
    if cmp.best and cmp.metric:
        row = cmp.row(cmp.best[0])
        parts.append(f" · best by {esc(short(cmp.metric))}: <b><bdi>{esc(row['name'])}</bdi></b> "
                     f"[{esc(cmp.best[0][:8])}] = {esc(format_value(row.get(cmp.metric)))}")
    parts.append("</div>")
    if cmp.split.constant:
        items = ", ".join(f"<bdi>{esc(short(k))}={esc(format_value(v) or 'None')}</bdi>"
                          for k, v in list(cmp.split.constant.items())[:12])
        parts.append(f"<div style='color:#6b7280'>same for all runs: {items}</div>")
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{esc(_title_of(c))}</th>"
                   for c in ["id", *columns])
    body = []
    best = set(cmp.best)
    from .numbers import number_format
    from .query import MISSING

    positions = cmp.df.index.get_indexer(view.index[:rows]).tolist()
    records = view.head(rows).to_dict("records")
    # One number format per column (over the rows shown), as the live view has.
    formats = {c: number_format([cmp.cells(c)[p] if c.startswith(PARAM) else r.get(c)
                                 for p, r in zip(positions, records, strict=True)])
               for c in columns if c.startswith((PARAM, "metrics."))}
    for pos, rec in zip(positions, records, strict=True):
        style = " style='background:#fff3c4;font-weight:600'" if rec["id"] in best else ""
        cells = [f"<td style='padding:2px 8px'><code>{esc(str(rec['id'])[:8])}</code></td>"]
        for c in columns:
            v = cmp.cells(c)[pos] if c.startswith(PARAM) else rec.get(c)
            fmt = formats.get(c)
            if c.startswith(PARAM) and (v is MISSING or v is None):
                text = "—" if v is MISSING else "None"
            elif fmt is not None and type(v) in (int, float) and v == v:
                text = fmt(v)
            else:
                text = format_value(v, c) if c in rec or c.startswith(PARAM) else ""
            cells.append(f"<td style='padding:2px 8px' dir='auto'><bdi>{esc(text)}</bdi></td>")
        body.append(f"<tr{style}>{''.join(cells)}</tr>")
    more = (f"<div style='color:#6b7280'>… {len(view) - rows:,} more runs in the live widget"
            "</div>" if len(view) > rows else "")
    parts.append(f"<table style='border-collapse:collapse'><thead><tr>{head}</tr></thead>"
                 f"<tbody>{''.join(body)}</tbody></table>{more}</div>")
    return "".join(parts)


def _title_of(col: str) -> str:
    return {"started_at": "when", "duration_s": "duration"}.get(col, short(col))


def compare(experiment: str | None = None, *, metric: str | None = None,
            goal: str | None = None, home: str | os.PathLike[str] | None = None,
            **options: Any) -> CompareWidget:
    return CompareWidget(experiment, metric=metric, goal=goal, home=home, **options)


__all__ = ["CompareWidget", "Comparison", "compare", "snapshot_html"]
