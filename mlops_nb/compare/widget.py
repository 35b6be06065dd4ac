"""The comparison widget: a thin ipywidgets view over `model.Comparison`.

Stock widgets only (no custom frontend code): the table is one HTML widget holding the current
page, so 10,000 runs cost one page of markup; selection is a SelectMultiple over that page; plots
are PNGs drawn with matplotlib's Agg canvas into an Output widget. Everything the user can do is
also a method (`sort`, `filter`, `select`, `export_best`, `verify`...), which is how tests and
scripts drive it.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..errors import MlopsNbError
from . import plots
from .htmltable import (
    STYLE,
    constants_html,
    esc,
    header_html,
    metric_summary,
    rows_html,
)
from .model import (
    PARAM,
    Comparison,
    RunDiff,
    column_title,
    diff_runs,
    format_value,
    load_comparison,
    load_verdicts,
    metric_columns,
    short,
)

PAGE_SIZE = 50
EXPORT_MISSING = ("export not available yet: this mlops-nb has no exporter "
                  "(mlops_nb.export); upgrade mlops-nb to export runs")
VERIFY_MISSING = ("verify not available yet: this mlops-nb has no reproducer "
                  "(mlops_nb.reproduce); upgrade mlops-nb to verify runs")


class CompareWidget(widgets.VBox):
    """Runs table, plots, diff of two runs, export and verify buttons."""

    def __init__(self, experiment: str | None = None, *, metric: str | None = None,
                 goal: str | None = None, home: str | os.PathLike[str] | None = None,
                 page_size: int = PAGE_SIZE, export_dir: str | os.PathLike[str] = "exports",
                 source: str = "local", tracking_uri: str | None = None) -> None:
        self.experiment = experiment
        self.page_size = page_size
        self.source = {"source": source, "tracking_uri": tracking_uri}  # local or MLflow
        self.cmp, self.home = load_comparison(experiment, metric=metric, goal=goal, home=home,
                                              **self.source)
        self.page_number = 0
        self.selection: list[str] = []
        self.diff: RunDiff | None = None
        self.plot_png: bytes | None = None
        self.verify_thread: threading.Thread | None = None
        self.exported: dict[str, Path] = {}
        self._quiet = False
        self._plot_stale = True

        w = widgets
        self.title = w.HTML()
        self.constants = w.HTML()
        self.metric_box = w.Dropdown(description="metric", layout=w.Layout(width="220px"))
        self.goal_box = w.ToggleButtons(options=[("higher is better", "max"),
                                                 ("lower is better", "min")],
                                        style={"button_width": "110px"})
        self.sort_box = w.Dropdown(description="sort by", layout=w.Layout(width="240px"))
        self.order_box = w.ToggleButtons(options=[("▲ ascending", True), ("▼ descending", False)],
                                         style={"button_width": "100px"})
        self.refresh_button = w.Button(description="Refresh", icon="refresh",
                                       tooltip="reload the runs from the store",
                                       layout=w.Layout(width="100px"))
        self.query_box = w.Text(placeholder="filter: rf  max_depth=3  lr<0.01",
                                description="filter", continuous_update=False,
                                layout=w.Layout(width="340px"))
        self.low_box = w.Text(placeholder="min", description="metric ≥",
                              continuous_update=False, layout=w.Layout(width="170px"))
        self.high_box = w.Text(placeholder="max", description="≤", continuous_update=False,
                               layout=w.Layout(width="130px"),
                               style={"description_width": "20px"})
        self.count_label = w.HTML()
        self.table = w.HTML(layout=w.Layout(overflow="auto", max_height="460px"))
        self.prev_button = w.Button(description="◀ prev", layout=w.Layout(width="80px"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="80px"))
        self.page_label = w.HTML()
        self.selector = w.SelectMultiple(description="select", rows=8,
                                         layout=w.Layout(width="100%"))
        self.export_best_button = w.Button(description="Export best", icon="download",
                                           button_style="primary")
        self.export_selected_button = w.Button(description="Export selected", icon="download")
        self.verify_button = w.Button(description="Verify", icon="check",
                                      tooltip="re-run the selected runs (or the best) in a "
                                              "fresh process and compare their metrics")
        self.export_dir = w.Text(value=str(export_dir), description="export to",
                                 layout=w.Layout(width="300px"))
        self.export_force = w.Checkbox(description="overwrite", indent=False,
                                       layout=w.Layout(width="100px"))
        self.progress = w.IntProgress(value=0, min=0, max=1, description="verifying",
                                      bar_style="info", layout=w.Layout(visibility="hidden"))
        self.message = w.HTML()
        self.diff_view = w.HTML()
        self.plot_kind = w.ToggleButtons(options=[(v, k) for k, v in plots.PLOTS.items()],
                                         style={"button_width": "160px"})
        self.plot_param = w.Dropdown(description="parameter", layout=w.Layout(width="260px"))
        self.plot_log = w.Checkbox(description="log x axis", indent=False)
        self.plot_out = w.Output(layout=w.Layout(min_height="120px"))

        self.runs_tab = w.VBox([
            w.HBox([self.query_box, self.low_box, self.high_box, self.count_label]),
            self.table,
            w.HBox([self.prev_button, self.page_label, self.next_button]),
            self.selector,
            w.HBox([self.export_best_button, self.export_selected_button, self.verify_button,
                    self.export_dir, self.export_force]),
            self.progress,
            self.message,
        ])
        self.plots_tab = w.VBox([w.HBox([self.plot_kind]),
                                 w.HBox([self.plot_param, self.plot_log]), self.plot_out])
        self.diff_tab = w.VBox([self.diff_view])
        self.tabs = w.Tab(children=[self.runs_tab, self.plots_tab, self.diff_tab],
                          titles=("Runs", "Plots", "Diff"))
        super().__init__([
            self.title,
            w.HBox([self.metric_box, self.goal_box, self.refresh_button]),
            w.HBox([self.sort_box, self.order_box]),
            self.constants,
            self.tabs,
        ])
        self._sync_controls()
        self._render_table()
        self._connect()

    def __repr__(self) -> str:
        """Short text where the widget cannot be drawn (a terminal, nbconvert, a log)."""
        cmp = self.cmp
        text = f"<mlops-nb comparison: {len(cmp.df):,} runs"
        if cmp.metric and cmp.best:
            value = format_value(cmp.row(cmp.best[0]).get(cmp.metric))
            text += f"; best by {short(cmp.metric)}: {cmp.best[0][:12]} ({value})"
        return text + ">"

    # -- public actions (what the buttons and boxes call) ----------------------------------------
    @property
    def view(self) -> Any:
        """The runs shown, filtered and sorted (a DataFrame)."""
        return self.cmp.view

    @property
    def page_ids(self) -> list[str]:
        return [str(i) for i in self.cmp.page(self.page_number, self.page_size)["id"]]

    def sort(self, column: str, ascending: bool | None = None) -> None:
        """Sort by any column (`f1`, `max_depth`, `metrics.f1`, `started_at`...)."""
        self.cmp.set_sort(self._column(column), ascending)
        self.page_number = 0
        self._sync_controls()
        self._render_table()

    def filter(self, query: str = "", low: float | None = None,
               high: float | None = None) -> None:
        """Keep runs matching the query (see `model.filter_mask`) within the metric range."""
        self.cmp.set_filter(query, low, high)
        self.page_number = 0
        self._sync_controls()
        self._render_table()

    def set_metric(self, metric: str, goal: str | None = None) -> None:
        self.cmp.set_metric(metric, goal)
        self.cmp.set_sort(self.cmp.metric) if self.cmp.metric else None
        self.page_number = 0
        self._sync_controls()
        self._render_table()

    def go_to_page(self, number: int) -> None:
        self.page_number = min(max(number, 0), self.cmp.pages(self.page_size) - 1)
        self._sync_controls()
        self._render_table()

    def select(self, *run_ids: str) -> None:
        """Select runs by id or unique prefix (any page); two selected runs are diffed."""
        self.selection = [self._run_id(r) for r in run_ids]
        self._selection_changed()

    def refresh(self) -> None:
        """Reload the runs from the store, keeping sort, filter, metric and selection."""
        old = self.cmp
        cmp, self.home = load_comparison(self.experiment, metric=old.metric, goal=old.goal,
                                         home=self.home, **self.source)
        cmp.verdicts = {**cmp.verdicts, **old.verdicts}
        if old.sort_by in cmp.df.columns or old.sort_by is None:
            cmp.sort_by, cmp.ascending = old.sort_by, old.ascending
        cmp.flt = old.flt
        cmp.update()
        self.cmp = cmp
        known = set(cmp.df["id"]) if len(cmp.df) else set()
        self.selection = [r for r in self.selection if r in known]
        self.page_number = min(self.page_number, cmp.pages(self.page_size) - 1)
        self._plot_stale = True
        self._sync_controls()
        self._render_table()
        if self.tabs.selected_index == 1:
            self.render_plot()

    def render_plot(self) -> bytes:
        """Draw the chosen plot of the runs in view into the Output widget; returns the PNG."""
        cmp = self.cmp
        param = self.plot_param.value
        try:
            png = plots.render(self.plot_kind.value, cmp.view, metric=cmp.metric, param=param,
                               params=cmp.split.varying, goal=cmp.goal or "max",
                               best=cmp.best, log_x=bool(self.plot_log.value))
        except Exception as exc:  # a plot must never break the widget
            png = plots._empty(f"could not draw this plot: {exc}")
        self.plot_png = png
        self._plot_stale = False
        self.plot_out.outputs = ({
            "output_type": "display_data",
            "data": {"image/png": base64.b64encode(png).decode("ascii"),
                     "text/plain": f"<{plots.PLOTS.get(self.plot_kind.value)} plot>"},
            "metadata": {},
        },)
        return png

    def export_best(self) -> list[Path]:
        """Export the best run (`mlops_nb.export.export_run`) and show where it went."""
        if not self.cmp.best:
            self._say("no best run: no run has a value for the chosen metric", error=True)
            return []
        return self._export(self.cmp.best[:1])

    def export_selected(self) -> list[Path]:
        if not self.selection:
            self._say("select one or more runs to export first", error=True)
            return []
        return self._export(self.selection)

    def verify(self, run_ids: list[str] | None = None) -> threading.Thread | None:
        """Reproduce runs (the selected ones, else the best) on a background thread.

        Returns the thread (already started) so a script can `join()` it; the kernel stays free
        meanwhile. The verdict shows in the table's verdict column when done.
        """
        if self.verify_thread is not None and self.verify_thread.is_alive():
            self._say("a verification is already running", error=True)
            return self.verify_thread
        try:
            from ..reproduce import reproduce  # type: ignore[import-not-found]
        except ImportError:
            self._say(VERIFY_MISSING, error=True)
            return None
        except Exception as exc:  # a broken install must not break the widget
            self._say(f"{VERIFY_MISSING} ({exc!r})", error=True)
            return None
        ids = [self._run_id(r) for r in run_ids] if run_ids else (
            list(self.selection) or self.cmp.best[:1])
        if not ids:
            self._say("select a run to verify (or choose a metric so there is a best run)",
                      error=True)
            return None
        self.progress.max = len(ids)
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.progress.layout.visibility = "visible"
        self.verify_button.disabled = True
        thread = threading.Thread(target=self._verify_worker, args=(ids, reproduce),
                                  name="mlops-nb-verify", daemon=True)
        self.verify_thread = thread
        thread.start()
        return thread

    # -- internals ------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.metric_box.observe(self._on_metric, "value")
        self.goal_box.observe(self._on_metric, "value")
        self.sort_box.observe(self._on_sort, "value")
        self.order_box.observe(self._on_sort, "value")
        self.query_box.observe(self._on_filter, "value")
        self.low_box.observe(self._on_filter, "value")
        self.high_box.observe(self._on_filter, "value")
        self.prev_button.on_click(lambda _: self.go_to_page(self.page_number - 1))
        self.next_button.on_click(lambda _: self.go_to_page(self.page_number + 1))
        self.refresh_button.on_click(lambda _: self._guard(self.refresh))
        self.selector.observe(self._on_select, "value")
        self.export_best_button.on_click(lambda _: self._guard(self.export_best))
        self.export_selected_button.on_click(lambda _: self._guard(self.export_selected))
        self.verify_button.on_click(lambda _: self._guard(self.verify))
        self.tabs.observe(self._on_tab, "selected_index")
        for box in (self.plot_kind, self.plot_param, self.plot_log):
            box.observe(self._on_plot, "value")

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except MlopsNbError as exc:
            self._say(str(exc), error=True)
        return None

    def _on_metric(self, _change: Any) -> None:
        if self._quiet or self.metric_box.value is None:
            return
        goal = self.goal_box.value if _change["owner"] is self.goal_box else None
        self._guard(lambda: self.set_metric(self.metric_box.value, goal))
        self._replot()

    def _on_sort(self, change: Any) -> None:
        if self._quiet or self.sort_box.value is None:
            return
        asc = self.order_box.value if change["owner"] is self.order_box else None
        self._guard(lambda: self.sort(self.sort_box.value, asc))

    def _on_filter(self, _change: Any) -> None:
        if self._quiet:
            return
        try:
            low = _number(self.low_box.value, "minimum")
            high = _number(self.high_box.value, "maximum")
            self.filter(self.query_box.value, low, high)
        except MlopsNbError as exc:
            self._say(str(exc), error=True)
            return
        self._say("")
        self._replot()

    def _on_select(self, change: Any) -> None:
        if self._quiet:
            return
        on_page = set(self.page_ids)
        kept = [r for r in self.selection if r not in on_page]
        self.selection = kept + [r for r in change["new"] if r not in kept]
        self._selection_changed(update_selector=False)

    def _on_tab(self, change: Any) -> None:
        if change["new"] == 1 and self._plot_stale:
            self.render_plot()

    def _on_plot(self, change: Any) -> None:
        if self._quiet:
            return
        if change["owner"] is self.plot_param and change["new"] in self.cmp.df.columns:
            # A parameter spanning decades (a learning rate) starts on a log axis.
            self._quiet = True
            try:
                self.plot_log.value = plots.wants_log(self.cmp.view[change["new"]])
            finally:
                self._quiet = False
        self.render_plot()

    def _replot(self) -> None:
        self._plot_stale = True
        if self.tabs.selected_index == 1:
            self.render_plot()

    def _selection_changed(self, update_selector: bool = True) -> None:
        if update_selector:
            self._quiet = True
            try:
                on_page = set(self.page_ids)
                self.selector.value = tuple(r for r in self.selection if r in on_page)
            finally:
                self._quiet = False
        self._render_table(options=False)
        if len(self.selection) == 2:
            a, b = self.selection
            try:
                self.diff = diff_runs(self._reader(), a, b, sessions=self._sessions(a, b))
            except MlopsNbError as exc:
                self.diff = None
                self.diff_view.value = f"<p>could not diff: {esc(exc)}</p>"
                return
            self.diff_view.value = diff_html(self.diff)
            self.tabs.selected_index = 2
        else:
            self.diff = None
            n = len(self.selection)
            self.diff_view.value = ("<p class='mnb-muted'>select exactly two runs to see what "
                                    f"differs ({n} selected)</p>")

    def _sessions(self, *ids: str) -> dict[str, str]:
        df = self.cmp.df
        rows = df[df["id"].isin(ids)]
        return dict(zip(rows["id"], rows["session"], strict=True))

    def _reader(self) -> Any:
        from ..store.reader import StoreReader

        return StoreReader(self.home)

    def _column(self, name: str) -> str:
        cols = self.cmp.df.columns
        for cand in (name, "metrics." + name, PARAM + name):
            if cand in cols:
                return cand
        if name in ("when",):
            return "started_at"
        raise MlopsNbError(f"no column {name!r} to sort by")

    def _run_id(self, prefix: str) -> str:
        ids = self.cmp.df["id"]
        hits = ids[ids.str.startswith(prefix.strip().lower())]
        if len(hits) != 1:
            what = "no run" if not len(hits) else f"{len(hits)} runs"
            raise MlopsNbError(f"{what} in this comparison match {prefix!r}")
        return str(hits.iloc[0])

    def _sync_controls(self) -> None:
        """Push the model's state into the boxes without re-triggering their handlers."""
        cmp = self.cmp
        self._quiet = True
        try:
            metrics = metric_columns(cmp.df)
            self.metric_box.options = [(short(m), m) for m in metrics]
            self.metric_box.value = cmp.metric if cmp.metric in metrics else None
            self.goal_box.value = cmp.goal or "max"
            sortable = cmp.columns
            self.sort_box.options = [(column_title(c), c) for c in sortable if c != "verdict"]
            self.sort_box.value = cmp.sort_by if cmp.sort_by in sortable else None
            if cmp.sort_by is not None:
                asc = cmp.ascending if cmp.ascending is not None else \
                    cmp.default_ascending(cmp.sort_by)
                self.order_box.value = asc
            params = cmp.split.varying or [c for c in cmp.df.columns if c.startswith(PARAM)]
            old = self.plot_param.value
            self.plot_param.options = [(short(p), p) for p in params]
            self.plot_param.value = old if old in params else (params[0] if params else None)
        finally:
            self._quiet = False

    def _render_table(self, options: bool = True) -> None:
        cmp = self.cmp
        page = cmp.page(self.page_number, self.page_size)
        columns = cmp.columns
        exp = f" · experiment <b>{esc(self.experiment)}</b>" if self.experiment else ""
        self.title.value = (f"<style>{STYLE}</style><div style='font-size:14px'>"
                            f"<b>{len(cmp.df):,}</b> runs{exp} · {metric_summary(cmp)}</div>")
        self.constants.value = constants_html(cmp)
        start = self.page_number * self.page_size
        if not len(cmp.df):
            body = ("<p>no runs yet: <code>%track on</code> in a notebook, then cells that "
                    "compute a metric, record them</p>")
        elif not len(cmp.view):
            body = "<p>no run matches the filter</p>"
        else:
            body = (f'<table class="mnb-table"><thead>'
                    f"{header_html(cmp, columns, sort_by=cmp.sort_by, ascending=self._asc())}"
                    f"</thead><tbody>"
                    f"{rows_html(cmp, page, columns, start=start, selected=self.selection)}"
                    f"</tbody></table>")
        self.table.value = body
        shown = len(cmp.view)
        self.count_label.value = (f"<span class='mnb-muted'>{shown:,} of {len(cmp.df):,} "
                                  "runs</span>")
        end = min(start + self.page_size, shown)
        self.page_label.value = (f"<span style='padding:0 8px'>rows {start + 1 if shown else 0:,}"
                                 f"–{end:,} of {shown:,} · page {self.page_number + 1} of "
                                 f"{cmp.pages(self.page_size)}</span>")
        self.prev_button.disabled = self.page_number == 0
        self.next_button.disabled = self.page_number >= cmp.pages(self.page_size) - 1
        if options:
            self._quiet = True
            try:
                self.selector.options = [(self._option_label(r, start + i + 1), r["id"])
                                         for i, r in enumerate(page.to_dict("records"))]
                on_page = set(self.selector.options[i][1] for i in
                              range(len(self.selector.options)))
                self.selector.value = tuple(r for r in self.selection if r in on_page)
            finally:
                self._quiet = False

    def _asc(self) -> bool | None:
        cmp = self.cmp
        if cmp.sort_by is None:
            return None
        return cmp.ascending if cmp.ascending is not None else cmp.default_ascending(cmp.sort_by)

    def _option_label(self, row: dict[str, Any], n: int) -> str:
        """Plain text (SelectMultiple shows labels as text): rank, id, name, metric, params."""
        cmp = self.cmp
        parts = [f"{n:>4}", str(row["id"])[:8]]
        if row.get("name"):
            parts.append(str(row["name"]))
        if cmp.metric:
            parts.append(f"{short(cmp.metric)}={format_value(row.get(cmp.metric))}")
        for p in cmp.split.varying[:4]:
            parts.append(f"{short(p)}={format_value(row.get(p))}")
        if row["id"] in cmp.best:
            parts.append("★ best")
        return "  ".join(parts)

    def _say(self, text: str, *, error: bool = False, html: str | None = None) -> None:
        color = "#b91c1c" if error else "#065f46"
        body = html if html is not None else esc(text)
        self.message.value = f"<div style='color:{color}'>{body}</div>" if body else ""

    def _export(self, ids: list[str]) -> list[Path]:
        try:
            from ..export import export_run  # type: ignore[import-not-found]
        except ImportError:
            self._say(EXPORT_MISSING, error=True)
            return []
        except Exception as exc:  # a broken install must not break the widget
            self._say(f"{EXPORT_MISSING} ({exc!r})", error=True)
            return []
        out: list[Path] = []
        base = Path(self.export_dir.value or "exports")
        for rid in ids:
            try:
                path = export_run(rid, base / f"run-{rid[:12]}", home=self.home,
                                  force=bool(self.export_force.value))
            except MlopsNbError as exc:
                self._say(f"could not export {rid[:12]}: {exc}", error=True)
                return out
            self.exported[rid] = Path(path)
            out.append(Path(path))
        lines = "<br>".join(f"exported <code>{esc(r[:12])}</code> to <code>{esc(p)}</code>"
                            for r, p in zip(ids, out, strict=False))
        self._say("", html=lines)
        return out

    def _verify_worker(self, ids: list[str], reproduce: Any) -> None:
        results: list[str] = []
        try:
            for i, rid in enumerate(ids):
                self.progress.description = f"verifying {i + 1}/{len(ids)}"
                done = threading.Event()
                box: dict[str, Any] = {}

                def run(rid: str = rid, box: dict[str, Any] = box,
                        done: threading.Event = done) -> None:
                    try:
                        box["verdict"] = reproduce(rid, home=self.home)
                    except BaseException as exc:
                        box["error"] = exc
                    finally:
                        done.set()

                threading.Thread(target=run, daemon=True).start()
                t0 = time.monotonic()
                while not done.wait(0.5):
                    self._say(f"verifying {rid[:12]}… {time.monotonic() - t0:.0f} s")
                if "error" in box:
                    results.append(f"{rid[:12]}: could not verify: {box['error']}")
                    self.progress.bar_style = "danger"
                else:
                    verdict = box["verdict"]
                    self.cmp.verdicts[rid] = _verdict_dict(verdict)
                    results.append(f"{rid[:12]}: {self.cmp.verdict_text(rid)}")
                self.progress.value = i + 1
            stored = load_verdicts(self.home)
            for rid in ids:
                if rid in stored and rid not in self.cmp.verdicts:
                    self.cmp.verdicts[rid] = stored[rid]
            if self.progress.bar_style != "danger":
                self.progress.bar_style = "success"
            self._say("verified: " + "; ".join(results))
        except Exception as exc:  # the worker must always finish and re-enable the button
            self._say(f"verify failed: {exc}", error=True)
        finally:
            self.verify_button.disabled = False
            self._sync_controls()
            self._render_table(options=False)


def _verdict_dict(verdict: Any) -> dict[str, Any]:
    if hasattr(verdict, "to_dict"):
        return dict(verdict.to_dict())
    return {"level": getattr(verdict, "level", str(verdict)), "ok": getattr(verdict, "ok", None)}


def _number(text: str, what: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise MlopsNbError(f"the metric {what} {text!r} is not a number") from None


def diff_html(d: RunDiff) -> str:
    """The diff of two runs as escaped HTML: tables of what differs, then the code diff."""
    parts = [f"<style>{STYLE}</style>",
             f"<h4 style='margin:4px 0'>run <code>{esc(d.a[:12])}</code> vs "
             f"<code>{esc(d.b[:12])}</code></h4>"]

    def table(title: str, rows: list[tuple[str, Any, Any]], same: int | None) -> None:
        note = f" <span class='mnb-muted'>({same} the same)</span>" if same else ""
        if not rows:
            parts.append(f"<p><b>{esc(title)}</b>: identical{note}</p>")
            return
        body = "".join(f"<tr><td>{esc(k)}</td><td>{esc(format_value(a))}</td>"
                       f"<td>{esc(format_value(b))}</td></tr>" for k, a, b in rows)
        parts.append(f"<p><b>{esc(title)}</b>{note}</p><table class='mnb-table'><thead><tr>"
                     f"<th></th><th>{esc(d.a[:8])}</th><th>{esc(d.b[:8])}</th></tr></thead>"
                     f"<tbody>{body}</tbody></table>")

    table("metrics", d.metrics, None)
    table("parameters", d.params, d.same_params)
    table("data", d.data, d.same_data)
    table("environment", d.environment, d.same_environment)
    if d.code:
        lines = []
        for line in d.code.splitlines():
            color = ("#065f46" if line.startswith("+") else "#b91c1c" if line.startswith("-")
                     else "#6b7280" if line.startswith("@@") else "#111")
            lines.append(f"<span style='color:{color}'>{esc(line)}</span>")
        parts.append("<p><b>code</b> (lineage slices, unified diff)</p>"
                     "<pre style='font-size:11px;background:#f9fafb;padding:6px;"
                     "max-height:360px;overflow:auto'>" + "\n".join(lines) + "</pre>")
    else:
        parts.append("<p><b>code</b>: identical lineage</p>")
    return "".join(parts)


def compare(experiment: str | None = None, *, metric: str | None = None,
            goal: str | None = None, home: str | os.PathLike[str] | None = None,
            **options: Any) -> CompareWidget:
    return CompareWidget(experiment, metric=metric, goal=goal, home=home, **options)


__all__ = ["CompareWidget", "Comparison", "compare", "diff_html"]
