"""The comparison widget over a real store, driven from Python like a user would drive it."""

from __future__ import annotations

import base64
import importlib
import sys
from pathlib import Path

import pytest
from PIL import Image

import mlops_nb as mnb
from mlops_nb.compare.widget import EXPORT_MISSING, VERIFY_MISSING, CompareWidget

HOSTILE = "<img src=x onerror=alert(1)>"
SETTINGS = [(2, 0.1, "rf"), (4, 0.01, "rf"), (8, 0.001, "gbm"), (4, 0.1, "gbm"), (16, 0.05, "rf")]


def _available(module: str, name: str) -> bool:
    """True when `from module import name` works (issue 3 may not have landed yet)."""
    try:
        return hasattr(importlib.import_module(module), name)
    except Exception:
        return False


def make_runs(tracked) -> list[str]:
    """Five runs through a real shell: max_depth, lr and model vary, seed is constant."""
    tracked.run("import numpy as np\nX = np.linspace(0.0, 1.0, 50)\nseed = 0")
    for depth, lr, model in SETTINGS:
        tracked.run(f"max_depth = {depth}\nlr = {lr}\nmodel = {model!r}")
        tracked.run("accuracy = float(np.round(0.7 + 0.01 * max_depth - lr, 4))\n"
                    "val_loss = float(np.round(1 - accuracy + seed, 4))")
    tracked.flush()
    return list(mnb.runs()["id"])


@pytest.fixture
def widget(tracked) -> CompareWidget:
    make_runs(tracked)
    return mnb.compare(metric="accuracy")


def test_opens_over_the_store_best_first(widget):
    assert isinstance(widget, CompareWidget)
    assert len(widget.view) == 5
    assert list(widget.view["metrics.accuracy"]) == [0.81, 0.779, 0.73, 0.64, 0.62]
    best = widget.cmp.best
    assert len(best) == 1 and widget.view["id"].iloc[0] == best[0]
    table = widget.table.value
    assert table.count("<tr data-id=") == 5
    assert f'<tr data-id="{best[0]}" class="best">' in table
    assert "same for all runs" in widget.constants.value and "seed=0" in widget.constants.value
    assert repr(widget) == f"<mlops-nb comparison: 5 runs; best by accuracy: {best[0][:12]} (0.81)>"
    assert widget.metric_box.value == "metrics.accuracy" and widget.goal_box.value == "max"
    assert widget.sort_box.value == "metrics.accuracy" and widget.order_box.value is False
    assert [label for label, _ in widget.sort_box.options][:4] == \
        ["id", "name", "accuracy", "val_loss"]


def test_sort_by_changing_the_boxes(widget):
    widget.sort_box.value = "params.max_depth"  # a parameter: ascending by default
    assert list(widget.view["params.max_depth"]) == [2, 4, 4, 8, 16]
    widget.order_box.value = False
    assert list(widget.view["params.max_depth"]) == [16, 8, 4, 4, 2]
    assert "max_depth ▼" in widget.table.value
    widget.sort("started_at", ascending=True)
    assert list(widget.view["params.max_depth"]) == [2, 4, 8, 4, 16]


def test_filter_by_query_and_metric_range(widget):
    widget.query_box.value = "model=gbm"
    assert len(widget.view) == 2
    widget.query_box.value = "rf max_depth>2"
    assert sorted(widget.view["params.max_depth"]) == [4, 16]
    assert "2 of 5" in widget.count_label.value
    widget.query_box.value = ""
    widget.low_box.value = "0.7"
    widget.high_box.value = "0.8"
    assert list(widget.view["metrics.accuracy"]) == [0.779, 0.73]
    widget.low_box.value = "abc"
    assert "not a number" in widget.message.value
    assert len(widget.view) == 2  # a bad bound leaves the previous filter in place
    widget.low_box.value = ""
    widget.high_box.value = ""
    widget.query_box.value = "no-such-run"
    assert "no run matches" in widget.table.value


def test_switching_metric_flips_best_and_goal(widget):
    widget.metric_box.value = "metrics.val_loss"
    assert widget.cmp.goal == "min" and widget.goal_box.value == "min"
    assert widget.view["metrics.val_loss"].iloc[0] == 0.19
    widget.goal_box.value = "max"
    assert widget.view["metrics.val_loss"].iloc[0] == 0.38


def test_select_two_rows_shows_their_diff(widget):
    first, second = widget.page_ids[:2]
    widget.selector.value = (first, second)
    assert widget.selection == [first, second]
    assert widget.diff is not None
    names = {name for name, _, _ in widget.diff.params}
    assert {"max_depth", "lr"} <= names <= {"max_depth", "lr", "model"}
    assert "max_depth" in widget.diff_view.value
    assert "-max_depth = 16" in widget.diff_view.value or \
        "+max_depth = 16" in widget.diff_view.value
    assert widget.tabs.selected_index == 2
    assert widget.table.value.count("selected") >= 2
    widget.selector.value = (first,)
    assert widget.diff is None and "select exactly two" in widget.diff_view.value


def test_selection_survives_paging(tracked):
    ids = make_runs(tracked)
    w = mnb.compare(metric="accuracy", page_size=2)
    assert len(w.page_ids) == 2 and w.prev_button.disabled
    w.selector.value = (w.page_ids[0],)
    w.next_button.click()
    assert w.page_number == 1 and "rows 3–4 of 5" in w.page_label.value
    w.selector.value = (w.page_ids[1],)
    assert len(w.selection) == 2 and w.diff is not None
    w.next_button.click()
    assert w.page_number == 2 and w.next_button.disabled and len(w.page_ids) == 1
    w.select(ids[0][:10], ids[1][:10])  # by unique prefix, on any page
    assert w.selection == ids[:2]


def test_refresh_picks_up_new_runs(tracked):
    make_runs(tracked)
    w = mnb.compare(metric="accuracy")
    w.query_box.value = "model=rf"
    assert len(w.view) == 3
    tracked.run("max_depth = 30\nlr = 0.0\nmodel = 'rf'")
    tracked.run("accuracy = float(0.7 + 0.01 * max_depth - lr)")
    tracked.flush()
    w.refresh_button.click()
    assert len(w.cmp.df) == 6 and len(w.view) == 4  # the filter is kept
    assert w.cmp.best == [w.view["id"].iloc[0]]


def test_track_compare_magic_returns_the_widget(tracked):
    make_runs(tracked)
    result = tracked.run("%track compare --metric val_loss --max")
    w = result.result
    assert isinstance(w, CompareWidget)
    assert w.cmp.metric == "metrics.val_loss" and w.cmp.goal == "max"
    assert tracked.run("%track compare -e test --metric nope").result is None


def test_hostile_names_and_values_render_as_text(tracked):
    tracked.run(f"import mlops_nb as mnb\nmnb.log_param({HOSTILE!r}, '<b>bold</b>')\n"
                "mnb.log_metric('f1', 0.5)")
    tracked.run(f"mnb.log_param({HOSTILE!r}, '<script>alert(2)</script>')\n"
                "mnb.log_metric('f1', 0.6)")
    tracked.run("%%track --name '<i>x</i>' --metric f1\nf1 = 0.7")
    tracked.flush()
    w = mnb.compare(metric="f1")
    html = w.title.value + w.constants.value + w.table.value
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&lt;i&gt;x&lt;/i&gt;" in html
    assert "<img" not in html and "<script" not in html and "<i>" not in html
    ids = list(w.view["id"])
    w.select(ids[1], ids[2])
    assert "&lt;img src=x onerror=alert(1)&gt;" in w.diff_view.value
    assert "<img" not in w.diff_view.value and "<script" not in w.diff_view.value
    assert HOSTILE in [label for label, _ in w.plot_param.options]
    png = w.render_plot()  # '$' and '<' in labels are drawn, not parsed
    assert png.startswith(b"\x89PNG")


def test_plots_render_into_the_output_widget(widget, tmp_path):
    """Save every plot as a PNG under the test's artifacts folder (look at them)."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    widget.tabs.selected_index = 1  # opening the Plots tab draws the first plot
    assert widget.plot_png is not None
    shots = {}
    for kind, log in (("scatter", False), ("scatter", True), ("time", False),
                      ("parallel", False)):
        widget.plot_log.value = log
        widget.plot_kind.value = kind
        shots[f"{kind}{'-log' if log else ''}"] = widget.plot_png
    widget.plot_param.value = "params.model"
    widget.plot_kind.value = "scatter"
    shots["scatter-categorical"] = widget.plot_png
    for name, png in shots.items():
        out = widget.plot_out.outputs[0]["data"]["image/png"] if name == "scatter-categorical" \
            else None
        if out is not None:
            assert base64.b64decode(out) == png
        path = artifacts / f"compare-{name}.png"
        path.write_bytes(png)
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width >= 600 and im.height >= 300
            colors = im.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colors is None or len(colors) > 20  # drawn, not blank
    print(f"plots saved in {artifacts}")


# -- buttons ---------------------------------------------------------------------------------------
def _missing(monkeypatch, module: str) -> None:
    """Make `import module` fail as it does on an install without it."""
    monkeypatch.setitem(sys.modules, module, None)


def test_export_buttons_say_clearly_when_export_is_not_available(widget, monkeypatch):
    _missing(monkeypatch, "mlops_nb.export")
    widget.export_best_button.click()
    assert "export not available yet" in widget.message.value
    assert EXPORT_MISSING.split(":")[0] in widget.message.value
    widget.select(*widget.page_ids[:1])
    widget.export_selected_button.click()
    assert "export not available yet" in widget.message.value
    assert widget.exported == {}


def test_verify_says_clearly_when_reproduce_is_not_available(widget, monkeypatch):
    _missing(monkeypatch, "mlops_nb.reproduce")
    widget.verify_button.click()
    assert "verify not available yet" in widget.message.value
    assert VERIFY_MISSING.split(":")[0] in widget.message.value
    assert widget.verify_thread is None and not widget.verify_button.disabled
    assert "verdict" not in widget.cmp.columns


def test_export_selected_without_selection_asks_for_one(widget):
    assert widget.export_selected() == []
    assert "select one or more runs" in widget.message.value


@pytest.mark.skipif(not _available("mlops_nb.export", "export_run"),
                    reason="mlops_nb.export (issue 3) is not in this tree yet")
def test_export_best_writes_the_export_directory(widget, tmp_path):
    widget.export_dir.value = str(tmp_path / "exports")
    widget.export_best_button.click()
    best = widget.cmp.best[0]
    path = widget.exported[best]
    assert Path(path).is_dir() and any(Path(path).iterdir())
    assert Path(path).name in widget.message.value
    widget.export_best_button.click()  # again: the export is there, say so, keep it
    assert "could not export" in widget.message.value
    widget.export_force.value = True
    widget.export_best_button.click()
    assert widget.exported[best] == path and "exported" in widget.message.value
    second = widget.page_ids[1]
    widget.select(second)
    widget.export_selected_button.click()
    assert widget.exported[second].is_dir()


@pytest.mark.slow
@pytest.mark.skipif(not _available("mlops_nb.reproduce", "reproduce"),
                    reason="mlops_nb.reproduce (issue 3) is not in this tree yet")
def test_verify_runs_in_the_background_and_shows_the_verdict(widget, tracked):
    thread = widget.verify()
    assert thread is not None and widget.verify_button.disabled
    assert widget.progress.layout.visibility == "visible"
    tracked.run("still_responsive = 1 + 1")  # the kernel runs cells meanwhile
    assert tracked.ns["still_responsive"] == 2
    thread.join(240)
    assert not thread.is_alive()
    best = widget.cmp.best[0]
    assert best in widget.cmp.verdicts
    assert "verdict" in widget.cmp.columns
    assert widget.cmp.verdict_text(best) in widget.table.value
    assert not widget.verify_button.disabled
    assert widget.progress.value == 1 and widget.progress.bar_style in ("success", "danger")
    assert best in mnb.compare(metric="accuracy").cmp.verdicts  # stored, seen by a new widget
