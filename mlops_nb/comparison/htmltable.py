"""Run text into HTML, for the widget's snapshot and the report (the table itself is
`static/runs_view.js`, one view for all three surfaces).

Every name and value from a run is text: it goes through `esc()` on its way into markup, so a
parameter named `<img src=x onerror=alert(1)>` shows as those characters and runs nothing. In
element content it also goes through `bdi()`: a name holding a right-to-left override
(U+202E) is isolated in a `<bdi>` element and cannot reverse the rest of the line. Attributes
cannot isolate, so there bidi controls are shown as `\u202e`.
"""

from __future__ import annotations

import html
import re
from typing import Any

from .model import Comparison, format_value, numeric

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
