"""The comparison widget (anywidget) over a real store, driven from Python and through the
messages its front end sends, like a user clicking would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlops_nb as mnb
from mlops_nb.comparison.query import QueryError
from mlops_nb.comparison.widget import (
    CompareWidget,
    remembered_metric,
    slug,
    snapshot_html,
)
from mlops_nb.errors import MlopsNbError

HOSTILE = "<img src=x onerror=alert(1)>"
SETTINGS = [(2, 0.1, "rf"), (4, 0.01, "rf"), (8, 0.001, "gbm"), (4, 0.1, "gbm"), (16, 0.05, "rf")]


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
    p = widget.payload
    assert p["n"] == 5 and len(widget.view) == 5
    assert p["data"]["metrics.accuracy"] == [0.81, 0.779, 0.73, 0.64, 0.62]
    assert p["best"] == [p["data"]["id"][0]] == widget.cmp.best
    assert p["constant"] == {"seed": 0}
    labels = [c["label"] for c in p["columns"] if not c.get("hidden")]
    assert labels[:4] == ["id", "name", "accuracy", "val_loss"]
    assert {"max_depth", "lr", "model"} <= set(labels) and "seed" not in labels
    best = widget.cmp.row(widget.cmp.best[0])
    assert repr(widget) == (f"<mlops-nb comparison: 5 runs; best by accuracy: {best['name']} "
                            f"[{best['id'][:8]}] (0.81)>")
    json.dumps(p, allow_nan=False)  # what the comm sends must be strict JSON
    assert widget._esm.endswith("export default { render };\n") or "render" in str(widget._esm)


def test_default_names_say_what_differs(widget):
    names = widget.payload["data"]["name"]
    assert all(n.startswith("run · ") for n in names)
    assert "run · max_depth=16 · lr=0.05 · model=rf" in names
    assert len(set(names)) == 5 and all(widget.payload["name_auto"])


def test_sort_and_filter_like_the_view(widget):
    widget.sort_by("max_depth")  # a parameter: ascending by default
    assert list(widget.view["params.max_depth"]) == [2, 4, 4, 8, 16]
    widget.sort_by("max_depth", ascending=False)
    assert list(widget.view["params.max_depth"]) == [16, 8, 4, 4, 2]
    assert widget.sort == {"key": "params.max_depth", "ascending": False}
    widget.sort_by("when", ascending=True)
    assert list(widget.view["params.max_depth"]) == [2, 4, 8, 4, 16]
    widget.set_filter("model=gbm")
    assert len(widget.view) == 2
    widget.set_filter("model=rf max_depth>2")
    assert sorted(widget.view["params.max_depth"]) == [4, 16]
    widget.set_filter("accuracy=0.7..0.8")
    assert sorted(widget.view["metrics.accuracy"]) == [0.73, 0.779]
    with pytest.raises(QueryError, match="unknown column 'max_dept'; closest: max_depth"):
        widget.set_filter("max_dept>2")
    assert widget.filter == "accuracy=0.7..0.8"  # a bad query leaves the last good one


def test_choosing_a_metric_in_the_view_is_remembered(widget):
    widget._on_msg(widget, {"action": "select_metric", "metric": "metrics.val_loss",
                            "goal": "min"}, [])
    assert widget.cmp.goal == "min" and widget.cmp.metric == "metrics.val_loss"
    assert remembered_metric(widget.home, None) == ("val_loss", "min")


def test_ticking_two_runs_sends_their_diff(widget):
    sent = []
    widget.send = lambda content, buffers=None: sent.append(content)
    first, second = widget.payload["data"]["id"][:2]
    widget.selected = [first, second]
    widget._on_msg(widget, {"action": "diff", "ids": [first, second]}, [])
    assert widget.diff is not None
    names = {name for name, _, _ in widget.diff.params}
    assert {"max_depth", "lr"} <= names
    assert sent[-1]["type"] == "diff" and sent[-1]["ids"] == [first, second]
    assert "max_depth = 16" in sent[-1]["code"]
    widget.selected = [first]
    assert widget.diff is None


def test_select_by_prefix(tracked):
    ids = make_runs(tracked)
    w = mnb.compare(metric="accuracy")
    w.select(ids[0][:10], ids[1][:10])
    assert w.selected == ids[:2]
    with pytest.raises(MlopsNbError, match="no run in this comparison"):
        w.select("ffffffffffffff")


def test_refresh_picks_up_new_runs(tracked):
    make_runs(tracked)
    w = mnb.compare(metric="accuracy")
    w.set_filter("model=rf")
    assert len(w.view) == 3
    tracked.run("max_depth = 30\nlr = 0.0\nmodel = 'rf'")
    tracked.run("accuracy = float(0.7 + 0.01 * max_depth - lr)")
    tracked.flush()
    w.refresh()
    assert len(w.cmp.df) == 6 and len(w.view) == 4  # the filter is kept
    assert w.cmp.best == [w.view["id"].iloc[0]] == w.payload["best"]


def test_track_compare_magic_returns_the_widget(tracked):
    make_runs(tracked)
    result = tracked.run("%track compare --metric val_loss --max  # the widget")
    w = result.result
    assert isinstance(w, CompareWidget)
    assert w.cmp.metric == "metrics.val_loss" and w.cmp.goal == "max"
    assert tracked.run("%track compare -e test --metric nope").result is None


def test_display_carries_a_static_snapshot(widget):
    bundle = widget._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    html = data["text/html"]
    assert "mlops-nb: 5 runs" in html and "best by accuracy" in html
    assert html.count("<tr") == 6 and "<script" not in html
    best = widget.cmp.row(widget.cmp.best[0])
    assert best["name"] in html


def test_hostile_names_and_values_are_text(tracked):
    tracked.run(f"import mlops_nb as mnb\nmnb.log_param({HOSTILE!r}, '<b>bold</b>')\n"
                "mnb.log_metric('f1', 0.5)")
    tracked.run(f"mnb.log_param({HOSTILE!r}, '<script>alert(2)</script>')\n"
                "mnb.log_metric('f1', 0.6)")
    tracked.run("%%track --name '<i>x</i>' --metric f1\nf1 = 0.7")
    tracked.flush()
    w = mnb.compare(metric="f1")
    p = w.payload
    assert HOSTILE in [c["label"] for c in p["columns"]]
    assert "<script>alert(2)</script>" in p["data"]["params." + HOSTILE]
    assert any("<i>x</i>" in n for n in p["data"]["name"])
    snap = snapshot_html(w.cmp)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in snap and "&lt;i&gt;x&lt;/i&gt;" in snap
    assert "<img" not in snap and "<script" not in snap and "<i>" not in snap


def test_export_folder_is_named_after_the_run(widget):
    best = widget.cmp.best[0]
    folder = widget.export_folder(best)
    assert folder.name == f"run-max_depth-16-lr-0.05-model-rf-{best[:8]}"
    assert slug("RandomForest · max_depth=8") == "RandomForest-max_depth-8"
    assert slug("../../etc") == "etc" and slug("") == "run"


# -- buttons ---------------------------------------------------------------------------------------
def test_export_selected_without_selection_asks_for_one(widget):
    assert widget.export_selected() == []
    assert "tick one or more runs" in widget.status


def test_export_offers_overwrite_in_widget_words(widget, tmp_path):
    sent = []
    widget.send = lambda content, buffers=None: sent.append(content)
    widget.export_dir = tmp_path / "exports"
    best = widget.cmp.best[0]
    widget._on_msg(widget, {"action": "export", "ids": [best]}, [])
    path = widget.exported[best]
    assert Path(path).is_dir() and (Path(path) / "train.py").is_file()
    assert Path(path).name.endswith(best[:8]) and str(path) in widget.status
    widget.exported.clear()
    widget._on_msg(widget, {"action": "export", "ids": [best]}, [])  # again: ask, keep it
    assert best not in widget.exported
    assert f"already holds the export of run {widget.cmp.row(best)['name']} [{best[:8]}]" \
        in widget.status
    assert "--force" not in widget.status and "Overwrite" in widget.status
    assert sent[-1]["type"] == "confirm" and sent[-1]["ids"] == [best]
    widget._on_msg(widget, {"action": "export", "ids": [best], "overwrite": True}, [])
    assert widget.exported[best] == path and "exported" in widget.status


@pytest.mark.slow
def test_verify_runs_in_the_background_and_ends_with_the_verdict(widget, tracked):
    thread = widget.verify()
    assert thread is not None
    tracked.run("still_responsive = 1 + 1")  # the kernel runs cells meanwhile
    assert tracked.ns["still_responsive"] == 2
    thread.join(240)
    assert not thread.is_alive()
    best = widget.cmp.best[0]
    assert best in widget.cmp.verdicts
    assert widget.status.startswith("verified 1 run: ")
    assert widget.status.endswith(widget.cmp.verdict_text(best))
    assert "verdict" in [c["key"] for c in widget.payload["columns"]]
    assert best in mnb.compare(metric="accuracy").cmp.verdicts  # stored, seen by a new widget


@pytest.mark.slow
def test_verify_after_export_checks_the_exported_folder_not_the_selection(widget, tmp_path):
    widget.export_dir = tmp_path / "exports"
    best = widget.cmp.best[0]
    other = next(r for r in widget.payload["data"]["id"] if r != best)
    widget._on_msg(widget, {"action": "export", "ids": [best]}, [])
    folder = widget.exported[best]
    widget.select(other)  # ticking another row afterwards does not change what Verify checks
    thread = widget.verify([best])
    thread.join(240)
    verdict = widget.cmp.verdicts[best]
    assert verdict["run_id"] == best and verdict["export_dir"] == str(folder.resolve())
    assert widget.status.startswith("verified 1 run: ")
    # The folder now holds another run's export: Verify checks the run itself, never that one.
    import shutil

    shutil.rmtree(folder)
    shutil.copytree(widget.export([other])[0], folder)
    widget.verify([best]).join(240)
    verdict = widget.cmp.verdicts[best]
    assert verdict["run_id"] == best and verdict["export_dir"] is None  # a fresh export


def test_noise_button_needs_one_run_and_sane_seeds(widget):
    ids = widget.payload["data"]["id"]
    widget.select(ids[0], ids[1])
    widget._on_msg(widget, {"action": "noise", "ids": ids[:2], "seeds": 3}, [])
    assert widget.noise_thread is None and "single run" in widget.status
    assert widget.measure_noise([ids[0]], seeds=1) is None and "2 and 50" in widget.status
    assert widget.measure_noise([ids[0]], seeds=True) is None


@pytest.mark.slow
def test_noise_button_marks_runs_tied_within_noise(tracked):
    """Unseeded scores: the runs within the best run's spread over fresh RNG states are shown
    as tied in the table; a far-off run never is."""
    tracked.run("import numpy as np")
    for k in range(3):
        tracked.run(f"k = {k}\nscore = float(0.6 + np.random.default_rng().uniform(0, 0.2))")
    tracked.run("k = 9\nscore = 0.1")
    tracked.flush()
    w = mnb.compare(metric="score", goal="max")
    best = w.cmp.best[0]
    w._on_msg(w, {"action": "noise", "ids": [], "seeds": 3}, [])
    w.noise_thread.join(300)
    assert w.status.startswith(f"noise of {w._label(best)} over 3 seeds: score spread "), \
        w.status
    spread = w.cmp.noise[best]["metrics"]["score"]["spread"]
    assert spread > 0
    data = w.payload["data"]
    values = dict(zip(data["id"], data["metrics.score"], strict=True))
    expected = {r for r, v in values.items() if r != best and abs(v - values[best]) <= spread}
    # No run may land within the spread (the draws are random): then there is no verdict column.
    verdicts = dict(zip(data["id"], data.get("verdict") or [None] * len(data["id"]), strict=True))
    tied = {r for r, v in verdicts.items() if v and "tied with best within noise" in v}
    assert tied == expected == w.cmp.tied
    far = next(r for r, v in values.items() if v == 0.1)
    assert far not in tied
    assert f"{len(tied)} run{'s' if len(tied) != 1 else ''} tied" in w.status


def test_payload_text_is_strict_json_even_with_a_lone_surrogate():
    from mlops_nb.comparison.widget import _dumps

    value = {"data": {"name": ["rf · lr=0.1", None, "é"], "f1": [0.5, 1e-05, 3]}}
    assert json.loads(_dumps(value)) == value
    odd = {"data": {"notebook": ["caf\udcff.ipynb"]}}  # os.fsdecode of a non-UTF-8 name
    assert json.loads(_dumps(odd)) == odd


def test_a_parameter_named_like_a_column_says_it_is_one(tracked):
    """A loop's `name` (`for name, model in models.items():`) and a `model` string beside a
    fitted model's class: the view had two headers reading "name" and two reading "model"."""
    tracked.run("from sklearn.linear_model import LinearRegression\nimport numpy as np\n"
                "X = np.arange(8.0).reshape(-1, 1)\ny = 2 * X[:, 0]")
    for i, label in enumerate(("first", "second")):
        tracked.run(f"name = {label!r}\nmodel = 'lin'\nm = LinearRegression().fit(X, y)\n"
                    f"r2 = m.score(X, y) - {i} / 10")
    tracked.flush()
    p = mnb.compare(metric="r2").payload
    labels = [c["label"] for c in p["columns"]]
    assert labels.count("name") == 1 and labels.count("model") == 1
    assert {"params.name", "params.model"} <= set(labels)
    assert len(labels) == len(set(labels))
