"""The HTML report: generated from a real store, parsed back with html.parser."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlops_nb.cli import EXIT_BAD_INPUT, EXIT_OK, main
from mlops_nb.comparison import write_report
from mlops_nb.comparison.model import Comparison
from mlops_nb.comparison.payload import payload_rows
from mlops_nb.comparison.report import render_report

HOSTILE = "<img src=x onerror=alert(1)>"
SVGNS = "http://www.w3.org/2000/svg"  # a namespace name in the view script, never fetched


class Parsed(HTMLParser):
    """Tags, attributes, table rows (as cell texts) and text of a document."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []  # rows of the runs table's body
        self.header: list[str] = []
        self.text: list[str] = []
        self._in_runs = self._in_body = self._in_head = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._script = False
        self.payload_text = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table" and a.get("id") == "mnb-runs":
            self._in_runs = True
        elif self._in_runs and tag == "tbody":
            self._in_body = True
        elif self._in_runs and tag == "thead":
            self._in_head = True
        elif self._in_runs and tag == "tr":
            self._row = []
        elif self._in_runs and tag in ("td", "th"):
            self._cell = []
        elif tag == "script":
            self._script = True
            self._json = a.get("type") == "application/json"

    def handle_endtag(self, tag):
        if tag == "table" and self._in_runs:
            self._in_runs = False
        elif tag == "tbody":
            self._in_body = False
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._in_body:
                self.rows.append(self._row)
            elif self._in_head:
                self.header = self._row
            self._row = None
        elif tag == "script":
            self._script = False

    def handle_data(self, data):
        if self._script and getattr(self, "_json", False):
            self.payload_text += data
        if self._cell is not None:
            self._cell.append(data)
        if not self._script:
            self.text.append(data)

    @property
    def payload(self) -> dict:
        return json.loads(self.payload_text)

    @property
    def header(self) -> list[str]:
        """Labels of the columns the view shows by default."""
        return [c["label"] for c in self.payload["columns"] if not c.get("hidden")]

    @header.setter
    def header(self, value) -> None:
        pass

    @property
    def rows(self) -> list[dict]:
        return payload_rows(self.payload)

    @rows.setter
    def rows(self, value) -> None:
        pass

    def images(self) -> list[bytes]:
        out = []
        for tag, a in self.tags:
            if tag == "img":
                src = a.get("src") or ""
                assert src.startswith("data:image/png;base64,"), src[:60]
                out.append(base64.b64decode(src.split(",", 1)[1]))
        return out


def make_runs(tracked) -> None:
    tracked.run("import numpy as np\nX = np.linspace(0.0, 1.0, 50)\nseed = 0")
    for depth, lr in ((2, 0.1), (4, 0.01), (8, 0.001), (4, 0.1)):
        tracked.run(f"max_depth = {depth}\nlr = {lr}")
        tracked.run("f1 = float(np.round(0.7 + 0.01 * max_depth - lr, 4))")
    tracked.flush()


def no_network(doc: Parsed) -> None:
    for tag, attrs in doc.tags:
        assert tag not in ("link", "iframe", "object", "embed", "base"), tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)  # no inline event handlers
            if name in ("src", "href", "srcset", "action", "data", "poster") and value:
                assert value.startswith("data:"), (tag, name, value[:60])
        if tag == "script":
            assert "src" not in attrs


def test_report_from_a_store(tracked, tmp_path):
    make_runs(tracked)
    path = write_report(tmp_path / "out" / "report.html", metric="f1")
    assert path == (tmp_path / "out" / "report.html").resolve()
    text = path.read_text("utf-8")
    doc = Parsed(text)
    assert len(doc.rows) == 4
    assert doc.header[:3] == ["id", "name", "f1"]
    assert "max_depth" in doc.header and "lr" in doc.header and "seed" not in doc.header
    f1 = [r["metrics"]["f1"] for r in doc.rows]
    assert f1 == sorted(f1, reverse=True) == [0.779, 0.73, 0.64, 0.62]
    assert doc.payload["best"] == [doc.rows[0]["id"]]
    assert doc.payload["constant"] == {"seed": 0}
    assert doc.rows[0]["name"] == "run · max_depth=8 · lr=0.001"  # no model: what differs
    body = "".join(doc.text)  # inline <bdi> splits text nodes
    assert "Best run by f1" in body
    images = doc.images()
    assert len(images) == 4  # printable: f1 vs max_depth, f1 vs lr, over time, parallel
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    no_network(doc)
    assert "http://" not in text.replace(SVGNS, "") and "https://" not in text
    assert "Content-Security-Policy" in text
    scripts = [a for t, a in doc.tags if t == "script"]
    assert [a.get("type") for a in scripts] == ["application/json", "module"]


def test_hostile_names_are_data_never_markup(tracked, tmp_path):
    tracked.run(f"import mlops_nb as mnb\nmnb.log_param({HOSTILE!r}, '<b>1</b>')\n"
                "mnb.log_metric('f1', 0.5)")
    tracked.run(f"mnb.log_param({HOSTILE!r}, '</td></tr><script>alert(2)</script>')\n"
                "mnb.log_metric('f1', 0.6)")
    tracked.run("%%track --name '\"><svg onload=alert(3)>' --metric f1\nf1 = 0.7")
    tracked.flush()
    text = write_report(tmp_path / "r.html", metric="f1").read_text("utf-8")
    doc = Parsed(text)
    assert len(doc.rows) == 3
    assert HOSTILE in doc.header
    cells = [str(v) for r in doc.rows for v in [r["name"], *r["params"].values()]]
    assert "</td></tr><script>alert(2)</script>" in cells
    assert any('"><svg onload=alert(3)>' in c for c in cells)
    assert "<b>1</b>" in cells
    assert HOSTILE not in text and "<script>alert(2)" not in text
    assert [t for t, _ in doc.tags if t in ("svg", "img") and _.get("onerror") is not None] == []
    assert [t for t, _ in doc.tags].count("script") == 2  # the payload and ours, no src
    assert all(a.get("src", "").startswith("data:") for t, a in doc.tags if t == "img")
    no_network(doc)


def test_report_of_an_empty_comparison(monkeypatch):
    import pandas as pd

    text = render_report(Comparison(pd.DataFrame({"id": [], "started_at": []})))
    doc = Parsed(text)
    assert doc.rows == [] and doc.images() == []
    assert doc.payload["n"] == 0


def test_cli_compare_writes_the_report_and_prints_its_path(tracked, tmp_path, capsys):
    make_runs(tracked)
    out = tmp_path / "report.html"
    home = str(tracked.tracker.home)
    assert main(["--home", home, "compare", "--metric", "f1", "--min", "-o", str(out)]) == EXIT_OK
    assert capsys.readouterr().out.strip() == str(out.resolve())
    doc = Parsed(out.read_text("utf-8"))
    f1 = [r["metrics"]["f1"] for r in doc.rows]
    assert f1 == sorted(f1)  # --min: lower is better, best first
    assert main(["--home", home, "compare", "-e", "test", "-o", str(out)]) == EXIT_OK
    assert len(Parsed(out.read_text("utf-8")).rows) == 4
    assert main(["--home", home, "compare", "--metric", "nope", "-o", str(out)]) == \
        EXIT_BAD_INPUT
    assert "no run has metric 'nope'" in capsys.readouterr().err


def test_cli_compare_on_an_empty_store(store_home, tmp_path, capsys):
    store_home.mkdir()
    out = tmp_path / "empty.html"
    assert main(["--home", str(store_home), "compare", "-o", str(out)]) == EXIT_OK
    assert "no runs to compare" in capsys.readouterr().err
    assert Path(out).exists()


@pytest.mark.parametrize("n", [3])
def test_report_table_is_capped(tracked, tmp_path, monkeypatch, n):
    import mlops_nb.comparison.report as report

    make_runs(tracked)
    monkeypatch.setattr(report, "MAX_ROWS", n)
    doc = Parsed(write_report(tmp_path / "r.html", metric="f1").read_text("utf-8"))
    assert len(doc.rows) == n and doc.payload["total"] == 4 and doc.payload["truncated"]
    assert "the table holds the first 3 of 4 runs" in " ".join(doc.text)
