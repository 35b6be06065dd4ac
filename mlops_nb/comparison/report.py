"""The comparison as one self-contained HTML file, for people who do not open Jupyter.

The same runs view as the widget (`static/runs_view.js`, inlined) over the same JSON payload,
with a tiny in-page model: sort, filter with the same language, group, plots, diff of two
ticked runs. No network resource of any kind (no CDN script, font or stylesheet) and a CSP that
makes the browser refuse one, so it opens offline, from a CI artifact or an e-mail. Every
run-supplied name and value reaches the page as JSON data and is drawn as text.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from ..errors import MlopsNbError
from ..store.storage import atomic_write_bytes
from . import plots
from .htmltable import bdi, esc, metric_summary
from .model import Comparison, format_value, load_comparison, short
from .payload import build_payload

STATIC = Path(__file__).resolve().parent.parent / "static"
REPORT_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#111}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.mnb-muted{color:#6b7280}
.best-card{border:1px solid #f3d27a;background:#fffbeb;padding:10px 14px;border-radius:6px;
 max-width:900px}
.best-card td{padding:1px 12px 1px 0;vertical-align:top;overflow-wrap:anywhere}
.plots img{max-width:100%;border:1px solid #e5e7eb;margin:6px 0}
@media print{.mnb-view{display:none}}
"""

MAX_ROWS = 20_000  # runs written into the report's payload
PRINT_ROWS = 500  # best runs drawn in the static (printable) plots: matplotlib is slow

# Runs after the inlined module: same module scope, so `render` and `staticModel` are in reach.
BOOT = """
const mnbPayload = JSON.parse(document.getElementById("mnb-payload").textContent);
render({ model: staticModel(mnbPayload), el: document.getElementById("mnb-view") });
"""


def view_script() -> str:
    return (STATIC / "runs_view.js").read_text(encoding="utf-8")


def view_style() -> str:
    return (STATIC / "runs_view.css").read_text(encoding="utf-8")


def json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element: no `</script>` or comment opener can close it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_report(cmp: Comparison, *, title: str = "mlops-nb runs",
                  experiment: str | None = None, store: str | None = None,
                  static_plots: bool = True) -> str:
    """The report's HTML text."""
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    exp = f" · experiment <b>{bdi(experiment)}</b>" if experiment else ""
    payload = build_payload(cmp, limit=MAX_ROWS, title=title, experiment=experiment)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing from the network, ever: the policy makes a browser refuse it too.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>{esc(title)}</title><style>{REPORT_STYLE}{view_style()}</style></head><body>",
        f"<h1>{bdi(title)}</h1>",
        f"<div class='mnb-muted'>{len(cmp.df):,} runs{exp} · {metric_summary(cmp)} · "
        f"generated {esc(now)}" + (f" from <code>{bdi(store)}</code>" if store else "")
        + "</div>",
    ]
    problems = cmp.df.attrs.get("problems") or []
    if problems:
        parts.append("<p style='color:#b91c1c'>skipped unreadable store files: "
                     + "; ".join(bdi(p) for p in problems[:20]) + "</p>")
    parts.append(best_html(cmp))
    parts.append("<h2>Runs</h2>")
    if payload["truncated"]:
        parts.append(f"<p class='mnb-muted'>the table holds the first {MAX_ROWS:,} of "
                     f"{payload['total']:,} runs, best first; every run: <code>mlops-nb runs "
                     "--format csv</code></p>")
    parts.append("<div id='mnb-view'><noscript>the interactive table needs JavaScript</noscript>"
                 "</div>")
    parts.append(f'<script type="application/json" id="mnb-payload">'
                 f"{json_for_script(payload)}</script>")
    if static_plots:
        pngs = report_plots(cmp)
        if pngs:
            parts.append("<details class='plots'><summary>static plots (for printing)</summary>")
            for name, png in pngs:
                b64 = base64.b64encode(png).decode("ascii")
                parts.append(f"<figure><img alt='{esc(name)}' "
                             f"src='data:image/png;base64,{b64}'></figure>")
            parts.append("</details>")
    parts.append(f'<script type="module">{view_script()}\n{BOOT}</script></body></html>')
    return "\n".join(parts)


def report_plots(cmp: Comparison) -> list[tuple[str, bytes]]:
    """(title, PNG) of the report's printable plots (the best PRINT_ROWS runs): metric vs each
    of the first varying parameters, metric over time, parallel coordinates."""
    if cmp.metric is None or not len(cmp.view):
        return []
    view = cmp.view.head(PRINT_ROWS)  # best first: what a printed page can show
    out: list[tuple[str, bytes]] = []
    common = {"metric": cmp.metric, "goal": cmp.goal or "max", "best": cmp.best,
              "params": cmp.split.varying}
    for param in cmp.split.varying[:2]:
        log_x = plots.wants_log(view[param])
        out.append((f"{short(cmp.metric)} vs {short(param)}",
                    plots.render("scatter", view, param=param, log_x=log_x, **common)))
    out.append((f"{short(cmp.metric)} over time",
                plots.render("time", view, param=None, **common)))
    if cmp.split.varying:
        out.append(("parallel coordinates",
                    plots.render("parallel", view, param=None, **common)))
    return out


def best_html(cmp: Comparison) -> str:
    if not cmp.best:
        return "<h2>Best run</h2><p>no run has a value for the chosen metric</p>"
    row = cmp.row(cmp.best[0])
    ties = (f" <span class='mnb-muted'>(tied with {len(cmp.best) - 1} other run(s): "
            + ", ".join(f"<code>{bdi(r[:8])}</code>" for r in cmp.best[1:6]) + ")</span>"
            if len(cmp.best) > 1 else "")
    items: list[tuple[str, Any]] = [
        ("id", row["id"]), ("name", row.get("name")), ("notebook", row.get("notebook")),
        ("started", format_value(row.get("started_at"), "started_at")),
        ("duration", format_value(row.get("duration_s"), "duration_s")),
        ("data", row.get("data")),
    ]
    verdict = cmp.verdict_text(str(row["id"]))
    if verdict:
        items.append(("reproduced", verdict))
    metrics = [(short(c), row[c]) for c in cmp.df.columns
               if c.startswith("metrics.") and _present(row[c])]
    varying = set(cmp.split.varying)
    params = [(short(c), row[c]) for c in cmp.split.varying if _present(row[c])]
    others = [(short(c), row[c]) for c in cmp.df.columns
              if c.startswith("params.") and c not in varying and _present(row[c])]
    body = "".join(f"<tr><td class='mnb-muted'>{bdi(k)}</td><td>{bdi(format_value(v))}</td></tr>"
                   for k, v in items if _present(v))
    body += "".join(f"<tr><td class='mnb-muted'>metric {bdi(k)}</td>"
                    f"<td><b>{bdi(format_value(v))}</b></td></tr>" for k, v in metrics)
    body += "".join(f"<tr><td class='mnb-muted'>param {bdi(k)}</td>"
                    f"<td>{bdi(format_value(v))}</td></tr>" for k, v in params)
    more = ""
    if others:
        rows = "".join(f"<tr><td class='mnb-muted'>param {bdi(k)}</td>"
                       f"<td>{bdi(format_value(v))}</td></tr>" for k, v in others)
        more = (f"<details><summary class='mnb-muted'>{len(others)} more parameter(s), the "
                f"same in every run that sets them</summary><table>{rows}</table></details>")
    return (f"<h2>Best run by {bdi(short(cmp.metric or ''))}{ties}</h2>"
            f"<div class='best-card'><table>{body}</table>{more}</div>")


def _present(v: Any) -> bool:
    return format_value(v) != ""


def write_report(path: str | os.PathLike[str], experiment: str | None = None, *,
                 metric: str | None = None, goal: str | None = None,
                 home: str | os.PathLike[str] | None = None) -> Path:
    """Read the store, write the report to `path` atomically; returns the absolute path."""
    cmp, store = load_comparison(experiment, metric=metric, goal=goal, home=home)
    return save_report(path, cmp, experiment=experiment, store=store)


def save_report(path: str | os.PathLike[str], cmp: Comparison, *,
                experiment: str | None = None, store: Path | None = None) -> Path:
    title = f"mlops-nb: {experiment}" if experiment else "mlops-nb runs"
    text = render_report(cmp, title=title, experiment=experiment,
                         store=str(store) if store else None)
    out = Path(path).resolve()
    if out.is_dir():
        raise MlopsNbError(f"{out} is a folder: give the report's file name, e.g. "
                           f"{out / 'report.html'}")
    try:
        atomic_write_bytes(out, text.encode("utf-8"))  # mode follows the umask, like any file
    except OSError as exc:
        raise MlopsNbError(f"cannot write the report to {out}: "
                           f"{exc.strerror or type(exc).__name__}") from None
    return out
