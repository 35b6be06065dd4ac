"""The runs table as HTML, shared by the widget and the report.

Every name and value from a run is text: it goes through `esc()` on its way into markup, so a
parameter named `<img src=x onerror=alert(1)>` shows as those characters and runs nothing. In
element content it also goes through `bdi()`: a name holding a right-to-left override
(U+202E) is isolated in a `<bdi>` element and cannot reverse the rest of the line. Attributes
cannot isolate, so there bidi controls are shown as `\u202e`.
"""

from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING, Any

from .model import VERDICT, Comparison, column_title, format_value, numeric

if TYPE_CHECKING:
    import pandas as pd

BEST_BG = "#fff3c4"
SELECTED_BG = "#dbeafe"

STYLE = """
.mnb-table{border-collapse:collapse;font:12px/1.35 system-ui,-apple-system,'Segoe UI',sans-serif}
.mnb-table th{background:#f3f4f6;text-align:left;padding:4px 8px;border-bottom:2px solid #d1d5db;
 white-space:nowrap;position:sticky;top:0}
.mnb-table td{padding:3px 8px;border-bottom:1px solid #e5e7eb;white-space:nowrap;max-width:22em;
 overflow:hidden;text-overflow:ellipsis}
.mnb-table td.num{text-align:right;font-variant-numeric:tabular-nums}
.mnb-table tr.best td{background:#fff3c4;font-weight:600}
.mnb-table tr.selected td{background:#dbeafe}
.mnb-table code{font-size:11px}
.mnb-muted{color:#6b7280}
"""


# Bidi embeddings, overrides, isolates and marks: invisible, and they reorder what follows.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def esc(value: Any) -> str:
    """Any value as HTML text safe inside attributes: quotes escaped, bidi controls shown as
    escapes (an attribute has no way to isolate them)."""
    return html.escape(_BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value)), quote=True)


def bdi(value: Any) -> str:
    """Any value as element content: escaped and isolated in `<bdi>`, so its direction stays
    its own and never leaks into the text around it."""
    return f"<bdi>{html.escape(str(value), quote=True)}</bdi>"


def is_numeric_column(df: pd.DataFrame, col: str) -> bool:
    if col in ("duration_s",) or col.startswith("metrics."):
        return True
    if col not in df.columns:
        return False
    return df[col].dtype.kind in "iuf"


def sort_key(value: Any) -> str:
    """The `data-v` attribute the report's script sorts numeric columns on ("" = missing)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.12g}" if math.isfinite(value) else ""
    return ""


def header_html(cmp: Comparison, columns: list[str], *, sort_by: str | None = None,
                ascending: bool | None = None, sortable: bool = False) -> str:
    cells = ['<th class="mnb-muted">#</th>']
    for i, col in enumerate(columns, start=1):
        arrow = ""
        if col == sort_by:
            arrow = " ▲" if ascending else " ▼"
        title = bdi(column_title(col) + arrow)
        tip = esc(col)
        if sortable:
            cells.append(f'<th data-col="{i}" title="{tip}: click to sort">{title}</th>')
        else:
            cells.append(f'<th title="{tip}">{title}</th>')
    return "<tr>" + "".join(cells) + "</tr>"


def rows_html(cmp: Comparison, frame: pd.DataFrame, columns: list[str], *, start: int = 0,
              selected: tuple[str, ...] | list[str] = (), sort_values: bool = False) -> str:
    """`<tr>` rows for `frame` (already sorted and paged)."""
    best = set(cmp.best)
    sel = set(selected)
    numeric_cols = {c for c in columns if is_numeric_column(cmp.df, c)}
    out: list[str] = []
    records = frame.to_dict(orient="records")
    for n, row in enumerate(records, start=start + 1):
        rid = str(row["id"])
        classes = []
        if rid in best:
            classes.append("best")
        if rid in sel:
            classes.append("selected")
        cls = f' class="{" ".join(classes)}"' if classes else ""
        mark = "★ " if rid in best else ""
        cells = [f'<td class="mnb-muted" data-v="{n}">{mark}{n}</td>' if sort_values
                 else f'<td class="mnb-muted">{mark}{n}</td>']
        for col in columns:
            value = row.get(col)
            text = cmp.verdict_text(rid) if col == VERDICT else format_value(value, col)
            attrs = ' class="num"' if col in numeric_cols else ""
            if col == "id":
                title = f' title="{esc(rid)}"'
                text_html = f"<code>{bdi(text)}</code>"
            else:
                title = f' title="{esc(text)}"' if len(text) > 20 else ""
                text_html = bdi(text)
            if sort_values and col in numeric_cols:
                # The report's script sorts numbers by this; text columns sort by their text.
                attrs += f' data-v="{sort_key(value)}"'
            cells.append(f"<td{attrs}{title}>{text_html}</td>")
        out.append(f'<tr data-id="{esc(rid)}"{cls}>' + "".join(cells) + "</tr>")
    return "".join(out)


def constants_html(cmp: Comparison, limit: int = 40) -> str:
    """The "same for all" line: parameters every run shares, folded out of the table."""
    const = cmp.split.constant
    if not const:
        return ""
    n = len(cmp.df)
    items = []
    for k, v in list(const.items())[:limit]:
        where = cmp.split.present.get(k, n)
        note = f" <span class='mnb-muted'>({where} of {n})</span>" if where < n else ""
        # One isolate for the pair; bidi controls inside it shown as escapes.
        items.append(f"<code><bdi>{esc(k.removeprefix('params.'))}={esc(format_value(v))}"
                     "</bdi></code>"
                     + note)
    more = f" … and {len(const) - limit} more" if len(const) > limit else ""
    return ('<div class="mnb-muted" style="margin:4px 0">same for all runs: '
            + ", ".join(items) + more + "</div>")


def metric_summary(cmp: Comparison) -> str:
    if cmp.metric is None:
        return "no metrics"
    vals = numeric(cmp.view[cmp.metric]) if len(cmp.view) else None
    name = bdi(cmp.metric.removeprefix("metrics."))
    word = "lower" if cmp.goal == "min" else "higher"
    if vals is None or not vals.notna().any():
        return f"metric <b>{name}</b> ({word} is better)"
    return (f"metric <b>{name}</b> ({word} is better): "
            f"{bdi(format_value(float(vals.min())))} … {bdi(format_value(float(vals.max())))}")
