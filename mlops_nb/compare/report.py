"""The comparison as one self-contained HTML file, for people who do not open Jupyter.

Same model and table markup as the widget; plots inlined as base64 PNG; a few lines of inline
script sort the table by a header click, filter it and page it. No network resource of any kind
(no CDN script, font or stylesheet), so it opens offline, from a CI artifact or an e-mail.
Every run-supplied name and value is escaped text; the embedded script reads only the DOM.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path
from typing import Any

from ..store.storage import atomic_write_bytes
from . import plots
from .htmltable import STYLE, bdi, constants_html, esc, header_html, metric_summary, rows_html
from .model import Comparison, format_value, load_comparison, short

REPORT_STYLE = STYLE + """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#111}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.best-card{border:1px solid #f3d27a;background:#fffbeb;padding:10px 14px;border-radius:6px;
 max-width:900px}
.best-card td{padding:1px 12px 1px 0;vertical-align:top}
.plots img{max-width:100%;border:1px solid #e5e7eb;margin:6px 0}
#mnb-controls{margin:6px 0} #mnb-controls input{padding:3px 6px;width:260px}
.mnb-table th[data-col]{cursor:pointer}
.mnb-scroll{max-height:70vh;overflow:auto;border:1px solid #e5e7eb}
"""

MAX_ROWS = 20_000  # rows written into the report's table (about 0.5 kB each)

# Sort by header click (numbers numerically, by the data-v attribute), filter by text, page.
SCRIPT = """
(function(){
  var table=document.getElementById('mnb-runs'); if(!table) return;
  var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
  var pageSize=200, page=0, shown=rows, sortCol=-1, asc=true;
  var info=document.getElementById('mnb-page'), q=document.getElementById('mnb-q');
  function key(r,c){var cell=r.cells[c], v=cell.getAttribute('data-v');
    if(v===null){v=cell.textContent; return [v===''?2:1,v];}
    var n=parseFloat(v); return (v!==''&&!isNaN(n))?[0,n]:[2,''];}
  function cmp(a,b){if(a[0]!==b[0])return a[0]-b[0]; if(a[1]<b[1])return asc?-1:1;
    if(a[1]>b[1])return asc?1:-1; return 0;}
  function draw(){
    var pages=Math.max(1,Math.ceil(shown.length/pageSize)); page=Math.min(page,pages-1);
    var frag=document.createDocumentFragment();
    shown.slice(page*pageSize,(page+1)*pageSize).forEach(function(r){frag.appendChild(r);});
    body.textContent=''; body.appendChild(frag);
    info.textContent=shown.length+' of '+rows.length+' runs \\u00b7 page '+(page+1)+' of '+pages;
  }
  function filter(){
    var words=q.value.toLowerCase().split(/\\s+/).filter(Boolean);
    shown=rows.filter(function(r){var t=r.textContent.toLowerCase();
      return words.every(function(w){return t.indexOf(w)>=0;});});
    page=0; draw();
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th){
    var c=th.getAttribute('data-col'); if(c===null) return; c=parseInt(c,10);
    th.addEventListener('click',function(){
      asc=(sortCol===c)?!asc:true; sortCol=c;
      rows.sort(function(a,b){var ka=key(a,c),kb=key(b,c);
        if(ka[0]===2||kb[0]===2) return ka[0]-kb[0]; return cmp(ka,kb);});
      filter();
    });
  });
  q.addEventListener('input',filter);
  document.getElementById('mnb-prev').addEventListener('click',function(){
    if(page>0){page--;draw();}});
  document.getElementById('mnb-next').addEventListener('click',function(){page++;draw();});
  draw();
})();
"""


def render_report(cmp: Comparison, *, title: str = "mlops-nb runs",
                  experiment: str | None = None, store: str | None = None) -> str:
    """The report's HTML text."""
    columns = cmp.columns
    view = cmp.view
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    exp = f" · experiment <b>{bdi(experiment)}</b>" if experiment else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing from the network, ever: the policy makes a browser refuse it too.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>{esc(title)}</title><style>{REPORT_STYLE}</style></head><body>",
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
    parts.append(constants_html(cmp))
    if len(view) > MAX_ROWS:
        parts.append(f"<p class='mnb-muted'>the table holds the first {MAX_ROWS:,} of "
                     f"{len(view):,} runs, best first; every run: <code>mlops-nb runs "
                     "--format csv</code></p>")
        view = view.iloc[:MAX_ROWS]
    if len(view):
        parts.append(
            "<div id='mnb-controls'><input id='mnb-q' type='search' "
            "placeholder='filter rows: rf depth=3' aria-label='filter rows'> "
            "<button id='mnb-prev' type='button'>◀ prev</button> "
            "<span id='mnb-page' class='mnb-muted'></span> "
            "<button id='mnb-next' type='button'>next ▶</button> "
            "<span class='mnb-muted'>click a column header to sort</span></div>"
            "<div class='mnb-scroll'><table id='mnb-runs' class='mnb-table'><thead>"
            + header_html(cmp, columns, sortable=True)
            + "</thead><tbody>"
            + rows_html(cmp, view, columns, sort_values=True)
            + "</tbody></table></div>"
        )
    else:
        parts.append("<p>no runs to compare</p>")
    parts.append("<h2>Plots</h2><div class='plots'>")
    for name, png in report_plots(cmp):
        b64 = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{b64}'>"
                     f"</figure>")
    parts.append("</div>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def report_plots(cmp: Comparison) -> list[tuple[str, bytes]]:
    """(title, PNG) of the report's plots: metric vs each of the first varying parameters,
    metric over time, parallel coordinates."""
    if cmp.metric is None or not len(cmp.view):
        return []
    out: list[tuple[str, bytes]] = []
    common = {"metric": cmp.metric, "goal": cmp.goal or "max", "best": cmp.best,
              "params": cmp.split.varying}
    for param in cmp.split.varying[:3]:
        log_x = plots.wants_log(cmp.view[param])
        out.append((f"{short(cmp.metric)} vs {short(param)}",
                    plots.render("scatter", cmp.view, param=param, log_x=log_x, **common)))
    out.append((f"{short(cmp.metric)} over time",
                plots.render("time", cmp.view, param=None, **common)))
    if cmp.split.varying:
        out.append(("parallel coordinates",
                    plots.render("parallel", cmp.view, param=None, **common)))
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
    atomic_write_bytes(out, text.encode("utf-8"))  # mode follows the umask, like any file
    return out
