"""The validation report: its verdict, its JSON, its text and its notebook display.

The notebook display is a plain HTML table with a small inline SVG per column (reference bars
vs new bars on the same bins or categories): no JavaScript, no matplotlib, so it renders in a
saved notebook, on GitHub and in VS Code alike, and every name is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..jsonvalues import json_ready
from .drift import ColumnDrift, Thresholds
from .schema import Finding


@dataclass
class ValidationReport:
    run_id: str
    data_key: str
    rows: int
    reference_rows: int
    thresholds: Thresholds
    findings: list[Finding] = field(default_factory=list)
    drift: list[ColumnDrift] = field(default_factory=list)
    sampled: bool = False

    @property
    def schema_errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def drifted(self) -> list[str]:
        return [d.column for d in self.drift if d.drifted]

    @property
    def ok(self) -> bool:
        """Clean: no schema finding and no drifted column."""
        return not self.problems and not self.drifted

    @property
    def problems(self) -> list[Finding]:
        """Errors and warnings (notes do not make the data unclean)."""
        return [f for f in self.findings if f.severity != "note"]

    def to_dict(self) -> dict[str, Any]:
        return json_ready({
            "run_id": self.run_id, "data": self.data_key, "rows": self.rows,
            "reference_rows": self.reference_rows, "ok": self.ok,
            "schema_errors": len(self.schema_errors), "drifted": self.drifted,
            "thresholds": asdict(self.thresholds),
            "findings": [asdict(f) for f in self.findings],
            "drift": [{k: v for k, v in asdict(d).items()
                       if k not in ("labels", "reference", "new")} for d in self.drift],
        })

    def summary(self) -> str:
        head = ("clean" if self.ok else
                f"{len(self.schema_errors)} schema error(s), "
                f"{len(self.problems) - len(self.schema_errors)} warning(s), "
                f"{len(self.drifted)} drifted column(s)")
        lines = [f"validate {self.data_key} ({self.rows} rows) against run {self.run_id[:12]} "
                 f"({self.reference_rows} rows): {head}"]
        lines += [f"  {f.severity}: {f.message}"
                  + (f" e.g. {', '.join(f.examples)}" if f.examples else "")
                  for f in self.findings]
        th = self.thresholds
        lines.append(f"  drift (alpha={th.alpha:g}, psi>={th.psi:g}):")
        for d in self.drift:
            if d.test is None:
                lines.append(f"    {d.column:24} -    {d.note}")
                continue
            lines.append(f"    {d.column:24} {d.test:6} statistic={_num(d.statistic)} "
                         f"p={_num(d.p_value)} psi={_num(d.psi)}"
                         + ("  DRIFT" if d.drifted else "")
                         + (f"  ({d.note})" if d.note else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        esc = html.escape
        verdict = ("<b style='color:#1a7f37'>clean</b>" if self.ok else
                   f"<b style='color:#cf222e'>{len(self.schema_errors)} schema error(s), "
                   f"{len(self.problems) - len(self.schema_errors)} warning(s), "
                   f"{len(self.drifted)} drifted column(s)</b>")
        th = self.thresholds
        parts = [f"<div class='mlops-nb-validate'><p>Validation of <code>{esc(self.data_key)}"
                 f"</code> ({self.rows} rows) against run <code>{esc(self.run_id[:12])}</code> "
                 f"({self.reference_rows} rows): {verdict}</p>"]
        if self.findings:
            parts.append("<ul>" + "".join(
                f"<li><b>{esc(f.severity)}</b>: {esc(f.message)}"
                + (f" <small>e.g. {esc(', '.join(f.examples))}</small>" if f.examples else "")
                + "</li>" for f in self.findings) + "</ul>")
        parts.append("<table><thead><tr><th>column</th><th>test</th><th>statistic</th>"
                     f"<th>p-value (&lt; {th.alpha:g})</th><th>PSI (&ge; {th.psi:g})</th>"
                     "<th>drift</th><th>reference <span style='color:#8c959f'>&#9632;</span> "
                     "vs new <span style='color:#0969da'>&#9632;</span></th></tr></thead><tbody>")
        for d in self.drift:
            mark = ("<b style='color:#cf222e'>drift</b>" if d.drifted
                    else esc(d.note or "") if d.test is None else "")
            parts.append(
                f"<tr><td>{esc(d.column)}</td><td>{esc(d.test or '-')}</td>"
                f"<td>{_num(d.statistic)}</td><td>{_num(d.p_value)}</td><td>{_num(d.psi)}</td>"
                f"<td>{mark}</td><td>{_bars_svg(d)}</td></tr>")
        parts.append("</tbody></table></div>")
        return "".join(parts)


def _num(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.3g}"


def _bars_svg(d: ColumnDrift, width: int = 160, height: int = 36) -> str:
    """Paired bars per bin/category: grey the reference, blue the new data."""
    if not d.reference:
        return ""
    k = len(d.reference)
    top = max([*d.reference, *d.new, 1e-9])
    slot = width / k
    bar = max(1.0, slot / 2 - 0.5)
    rects = []
    new = d.new + [0.0] * (k - len(d.new))
    for i, (r, n) in enumerate(zip(d.reference, new[:k], strict=True)):
        x = i * slot
        label = html.escape(d.labels[i] if i < len(d.labels) else "")
        for j, (v, color) in enumerate(((r, "#8c959f"), (n, "#0969da"))):
            h = height * v / top
            rects.append(f"<rect x='{x + j * bar:.1f}' y='{height - h:.1f}' width='{bar:.1f}' "
                         f"height='{h:.1f}' fill='{color}'><title>{label}: "
                         f"{'reference' if j == 0 else 'new'} {v:.1%}</title></rect>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"role='img' aria-label='distribution of {html.escape(d.column)}'>"
            + "".join(rects) + "</svg>")


