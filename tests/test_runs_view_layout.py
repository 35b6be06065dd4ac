"""Layout of the runs view in a real browser (Debian Chromium, playwright): the HTML report of a
sweep opened from file:// at a narrow and a wide size. Nothing drawn sits on something else:
the metric's name, the tick labels and the points of the plots keep apart (bounding boxes), and
a column of rates reads in one number format. Screenshots go to artifacts/ (gitignored)."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import playwright.sync_api  # noqa: F401  (a test dependency: a broken install must fail)
import pytest
from lab.browser import ARTIFACTS, chromium, need_chromium

pytestmark = pytest.mark.slow

RIDGE = "sklearn.linear_model._ridge.Ridge"

need_chromium(module_level=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """Twelve Ridge runs: `alpha` (and the estimator's copy `model.alpha`) and a learning rate
    from 5.91e-4 to 0.0123. The best run (0.8, a round tick at the very top) has the smallest
    alpha: its point is the top-left corner of "metric vs parameter", where the name was."""
    from mlops_nb.comparison import write_report
    from mlops_nb.records import CellRun
    from mlops_nb.store.writer import SessionWriter

    tmp = tmp_path_factory.mktemp("layout")
    writer = SessionWriter(tmp / ".mlops_nb", "s1")
    writer.update_session(session="s1", environment={})
    code = writer.blobs.put(b"x = 1\n")
    seq = 0
    for alpha in (0.1, 1.0, 10.0, 100.0):
        for lr in (5.91e-4, 0.00431678, 0.0123):
            est = {"alpha": alpha, "fit_intercept": True}
            writer.append(CellRun(
                id=uuid.uuid4().hex, session="s1", experiment="e", seq=seq,
                started_at=1_790_000_000.0 + 60 * seq, code=code, lineage=[],
                params={"alpha": alpha, "lr": lr, **{f"model.{k}": v for k, v in est.items()}},
                estimators={"model": {"class": RIDGE, "params": est}},
                metrics={"r2_validation_score": round(
                    0.8 - 0.075 * (math.log10(alpha) + 1) - (lr - 5.91e-4), 4)}))
            seq += 1
    writer.flush(30)
    writer.close()
    return write_report(tmp / "report.html", metric="r2_validation_score",
                        home=tmp / ".mlops_nb")


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _open(browser, report: Path, width: int):
    page = browser.new_context(offline=True, viewport={"width": width, "height": 900}).new_page()
    page.goto(report.as_uri())
    page.locator(".mnb-grid tbody tr[data-id]").first.wait_for(timeout=30_000)
    return page


def _boxes(page, selector: str) -> list[dict]:
    return [b for b in (el.bounding_box() for el in page.locator(selector).all()) if b]


def _overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".mnb-plot").screenshot(path=str(ARTIFACTS / name))


@pytest.mark.parametrize("width", [380, 1300])
def test_metric_name_clears_the_ticks_and_points(browser, report, width):
    page = _open(browser, report, width)
    _shot(page, f"layout-param-{width}.png")
    label = _boxes(page, ".mnb-plot .mnb-metric-label")
    assert len(label) == 1
    ticks = _boxes(page, ".mnb-plot .mnb-tick-label")
    points = _boxes(page, ".mnb-plot circle.mnb-pt")
    assert len(points) == 12 and ticks
    assert not [t for t in ticks if _overlap(label[0], t)]
    assert not [p for p in points if _overlap(label[0], p)]
    page.locator(".mnb-tab", has_text="over time").click()
    label = _boxes(page, ".mnb-plot .mnb-metric-label")
    points = _boxes(page, ".mnb-plot circle.mnb-pt")
    assert len(label) == 1 and len(points) == 12
    assert not [p for p in points if _overlap(label[0], p)]
    page.context.close()


def test_every_point_lies_between_the_axis_end_ticks(browser, report):
    """Each axis runs from a round number at or below the lowest value to one at or above the
    highest: no point sits below the lowest number labelled (the worst runs, 0.563, under a
    first tick of 0.6) or above the highest."""
    page = _open(browser, report, 1300)
    for tab in ("parameter", "over time"):
        page.locator(".mnb-tab", has_text=tab).click()
        got = page.evaluate("""() => {
          const svg = document.querySelector('.mnb-plot svg');
          const num = (e, a) => parseFloat(e.getAttribute(a));
          const ticks = [...svg.querySelectorAll('line.mnb-tick')];
          const ys = ticks.filter((t) => num(t, 'y1') === num(t, 'y2')).map((t) => num(t, 'y1'));
          const pts = [...svg.querySelectorAll('circle.mnb-pt')].map((c) => num(c, 'cy'));
          return { ys, pts };
        }""")
        assert len(got["pts"]) == 12 and len(got["ys"]) >= 3, (tab, got)
        top, bottom = min(got["ys"]), max(got["ys"])
        assert all(top - 0.5 <= y <= bottom + 0.5 for y in got["pts"]), (tab, got)
    page.context.close()


def test_narrow_parallel_axes_keep_tick_labels_off_other_axes(browser, report):
    page = _open(browser, report, 380)
    page.locator(".mnb-tab", has_text="parallel").click()
    _shot(page, "layout-parallel-380.png")
    axes = page.locator(".mnb-plot g.mnb-paxis").all()
    assert len(axes) >= 3
    lines = [a.locator("line.mnb-axis").bounding_box() for a in axes]
    labels = [[b for b in (el.bounding_box() for el in a.locator(".mnb-tick-label").all()) if b]
              for a in axes]
    for k, own in enumerate(labels):
        for j, line in enumerate(lines):
            if j != k:
                assert not [t for t in own if _overlap(t, line)], (k, j)
        for j, other in enumerate(labels):
            if j != k:
                assert not [(t, u) for t in own for u in other if _overlap(t, u)], (k, j)
    # where run lines cross a label, a halo of the background keeps it legible
    style = page.locator(".mnb-plot g.mnb-paxis .mnb-tick-label").first.evaluate(
        "e => [getComputedStyle(e).paintOrder, getComputedStyle(e).strokeWidth]")
    assert style[0].startswith("stroke") and float(style[1].rstrip("px")) > 0
    page.context.close()


def test_a_column_of_rates_reads_in_one_format(browser, report):
    page = _open(browser, report, 1300)
    texts = page.evaluate("""() => {
        const ths = [...document.querySelectorAll('.mnb-grid thead th')];
        const k = ths.findIndex(th => th.dataset.key === 'params.lr');
        return [...document.querySelectorAll('.mnb-grid tbody tr[data-id]')]
            .map(tr => tr.children[k].textContent);
    }""")
    assert sorted(set(texts)) == ["1.23000e-2", "4.31678e-3", "5.91000e-4"]
    page.context.close()
