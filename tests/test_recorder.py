"""The recorder in a real IPython shell: what each cell run records."""

from __future__ import annotations

import json

import pytest

import mlops_nb as mnb
from mlops_nb.lineage import lineage_ids
from mlops_nb.records import MODE_BACKFILLED, MODE_EXPLICIT
from mlops_nb.store.reader import StoreReader


def log_of(sh) -> list:
    sh.flush()
    return StoreReader(sh.tracker.home).session_log(sh.tracker.session)


def test_every_cell_run_is_recorded_with_code_and_status(tracked):
    tracked.run("a = 1")
    tracked.ip.run_cell("b = a +", store_history=True)  # syntax error
    tracked.ip.run_cell("raise ValueError('nope')", store_history=True)
    tracked.run("%time c = a + 1")
    log = log_of(tracked)
    assert [cr.execution_count for cr in log] == [3, 4, 5, 6]
    ok, syntax, value_error, timed = log
    assert ok.status == "ok" and ok.defs == ["a"] and ok.duration_s >= 0
    assert syntax.status == "error" and syntax.error["type"] == "SyntaxError"
    assert value_error.error == {"type": "ValueError", "message": "nope"}
    blobs = StoreReader(tracked.tracker.home).blobs
    assert blobs.get_text(timed.code) == "%time c = a + 1"
    assert "run_line_magic('time'" in blobs.get_text(timed.python)
    assert timed.magics == ["time"] and "c" in timed.defs and "a" in timed.uses
    assert timed.deps == [ok.id]


def test_cell_id_and_notebook_from_the_frontend(shell, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/project/churn model.ipynb")
    shell.run("%load_ext mlops_nb")
    shell.run("%track on")
    shell.ip.run_cell("x = 1", store_history=True, cell_id="cell-abc")
    (cr,) = log_of(shell)
    assert cr.cell_id == "cell-abc"
    assert cr.notebook == "/work/project/churn model.ipynb"
    assert cr.experiment == "churn model"


def test_track_on_mid_session_backfills_history(shell):
    shell.run("%load_ext mlops_nb")
    shell.run("import math")
    shell.run("depth = 4")
    shell.run("%track on --experiment late")
    shell.run("score = math.sqrt(depth)")
    log = log_of(shell)
    assert [cr.mode for cr in log] == [MODE_BACKFILLED, MODE_BACKFILLED, "auto"]
    run = log[-1]
    assert run.metrics == {"score": 2.0}
    assert lineage_ids(log, run) == [log[0].id, log[1].id]
    assert run.effective_params == {"depth": 4}


def test_track_off_gap_is_backfilled_when_tracking_resumes(tracked):
    tracked.run("x = 1")
    tracked.run("%track off")
    tracked.run("x = 2")
    tracked.run("%track on")
    tracked.run("loss = x / 10")
    log = log_of(tracked)
    assert [cr.mode for cr in log] == ["auto", MODE_BACKFILLED, "auto"]
    assert log[-1].deps == [log[1].id]
    assert log[-1].effective_params == {"x": 2}


def test_explicit_cell_magic_without_track_on(shell, capsys):
    shell.run("%load_ext mlops_nb")
    shell.run("alpha = 0.5")
    result = shell.run("%%track --name ridge --metric f1\nf1 = alpha * 2\nloss = 1.0\nf1 + 1")
    assert result.result == 2.0  # the trailing expression is displayed as the cell's value
    shell.run("untracked_score = 3")
    log = log_of(shell)
    assert [cr.mode for cr in log] == [MODE_BACKFILLED, MODE_EXPLICIT]
    cr = log[1]
    assert cr.name == "ridge"
    assert cr.metrics == {"f1": 1.0}  # explicit mode: only --metric names and log_metric
    assert cr.effective_params == {"alpha": 0.5, "loss": 1.0}
    assert cr.defs == ["f1", "loss"] and cr.uses == ["alpha"]


def test_explicit_cell_errors_propagate_and_are_recorded(shell):
    shell.run("%load_ext mlops_nb")
    result = shell.ip.run_cell("%%track\nvalue = 1\n1 / 0", store_history=True)
    assert not result.success and isinstance(result.error_in_exec, ZeroDivisionError)
    (cr,) = log_of(shell)
    assert cr.status == "error" and cr.error["type"] == "ZeroDivisionError"
    assert shell.ns["value"] == 1


def test_auto_metrics_by_name_and_kind(tracked):
    tracked.run(
        "import numpy as np\n"
        "accuracy = np.float64(0.75)\nval_loss = 0.5\nr2_score = 1\nn_estimators = 100\n"
        "f1 = 'high'\nflag_accuracy = True\nscores = [0.1, 0.2]"
    )
    (cr,) = log_of(tracked)
    assert cr.metrics == {"accuracy": 0.75, "val_loss": 0.5, "r2_score": 1}
    assert isinstance(cr.metrics["accuracy"], float)
    assert cr.params["n_estimators"] == 100 and "val_loss" not in cr.params


def test_non_finite_metric_is_kept_with_a_warning(tracked):
    tracked.run("import math\nloss = math.nan\nmae = math.inf")
    (cr,) = log_of(tracked)
    assert set(cr.metrics) == {"loss", "mae"}
    assert any("not finite" in w for w in cr.warnings)


def test_log_metric_and_param_with_steps(tracked):
    tracked.run(
        "import mlops_nb as mnb\n"
        "for epoch, l in enumerate([0.9, 0.5, 0.2]):\n    mnb.log_metric('loss', l)\n"
        "mnb.log_params({'epochs': 3, 'opt': {'name': 'sgd'}})\n"
        "mnb.log_metrics({'acc': 0.8})"
    )
    cr = log_of(tracked)[-1]
    assert cr.metrics == {"loss": 0.2, "acc": 0.8}
    assert cr.metric_steps == {"loss": [0.9, 0.5, 0.2]}
    assert cr.params["epochs"] == 3 and cr.params["opt"] == {"name": "sgd"}


def test_log_metric_outside_a_tracked_cell_warns(shell):
    shell.run("%load_ext mlops_nb")
    with pytest.warns(UserWarning, match="outside a tracked cell"):
        assert mnb.log_metric("f1", 0.5) == 0.5


def test_fitted_estimator_hyperparameters(tracked):
    tracked.run("from sklearn.linear_model import LogisticRegression\nimport numpy as np")
    tracked.run("X = np.arange(20.0).reshape(10, 2)\ny = np.array([0, 1] * 5)")
    tracked.run("unfitted = LogisticRegression(C=3.0)")
    tracked.run("clf = LogisticRegression(C=0.25, max_iter=50).fit(X, y)\nacc = clf.score(X, y)")
    log = log_of(tracked)
    assert log[-2].estimators == {}
    cr = log[-1]
    est = cr.estimators["clf"]
    assert est["class"].endswith("LogisticRegression")
    assert est["params"]["C"] == 0.25 and est["params"]["max_iter"] == 50
    assert cr.params["clf.C"] == 0.25
    assert cr.effective_params["clf.C"] == 0.25


def test_data_fingerprints_of_what_the_cell_touched(tracked):
    tracked.run("import pandas as pd\nimport numpy as np")
    tracked.run("df = pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})\nbig = np.zeros(5)")
    tracked.run("copy = df.copy()")
    tracked.run("df.loc[0, 'a'] = 99")
    tracked.run("n = len(big)")
    log = log_of(tracked)
    made, copied, changed, used_big = log[1:]
    assert made.data["df"]["type"] == "DataFrame" and made.data["df"]["shape"] == [3, 2]
    assert made.data["df"]["dtypes"]["a"] == "int64"
    assert copied.data["copy"]["hash"] == copied.data["df"]["hash"] == made.data["df"]["hash"]
    assert changed.data["df"]["hash"] != made.data["df"]["hash"]
    assert set(used_big.data) == {"big"}  # only what the cell touched, not the namespace


def test_files_read_are_fingerprinted(tracked, store_home):
    (store_home.parent / "train.csv").write_text("a,b\n1,2\n")
    tracked.run("import pandas as pd\ndf = pd.read_csv('train.csv')")
    cr = log_of(tracked)[-1]
    fp = cr.data["file:train.csv"]
    assert fp["type"] == "file" and fp["size"] == 8 and len(fp["hash"]) == 32


def test_the_store_s_own_files_are_no_cell_s_data(shell, tmp_path, monkeypatch):
    """A store outside any `.mlops_nb/` folder (MLOPS_NB_HOME) holding other sessions' blob
    packs: the writer thread scans them at its first write, while a later cell runs. Those
    reads, and a cell's own reads of the store (`mnb.runs()`), are not the run's data: they
    made `retrain` ask for `--data` for every pack, and an export check them."""
    from mlops_nb.store.blobs import BlobStore, blob_hash
    from mlops_nb.store.layout import BLOBS_DIR

    home = tmp_path / "runs-store"
    monkeypatch.setenv("MLOPS_NB_HOME", str(home))
    earlier = BlobStore(home / BLOBS_DIR, pack_prefix="20260101T000000-earlier")
    assert earlier.put_many({blob_hash(b"a blob"): b"a blob"}) == {}
    earlier.close_pack()
    assert list((home / BLOBS_DIR).rglob("*.pack"))
    (tmp_path / "train.csv").write_text("a\n1\n")
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --experiment t")  # records the cell before it (back-fill)
    # which is written (the packs scanned) while this cell sleeps
    shell.run("import time\ntext = open('train.csv').read()\ntime.sleep(0.5)")
    shell.run("import mlops_nb as mnb\nn = len(mnb.runs())\ntext = open('train.csv').read()")
    shell.flush()
    log = StoreReader(home).session_log(shell.tracker.session)
    read = [[r["rel"] for r in cr.reads] for cr in log]
    assert read[-2:] == [["train.csv"], ["train.csv"]], read
    assert all(paths in ([], ["train.csv"]) for paths in read), read


def test_files_opened_by_mlops_nb_s_own_threads_are_not_the_cell_s(tracked, store_home):
    """The comparison widget verifies a run on a thread while the user's next cell runs:
    what that thread opens (the export, its data) is not that cell's input. A thread the cell
    starts itself (a loader, a pool) is the cell's work, and its reads are."""
    (store_home.parent / "train.csv").write_text("a\n1\n")
    body = ("import threading\nfrom mlops_nb.own_threads import own\n"
            "def read():\n    open('train.csv').read()\n"
            "t = threading.Thread(target={}(read))\nt.start()\nt.join()")
    tracked.run(body.format("own"))
    tracked.run(body.format(""))
    # marked only while it runs: called on the kernel's thread, its reads stay hidden, not
    # the cell's own after it
    tracked.run("from mlops_nb.own_threads import own\nown(read)()\nopen('train.csv').read()")
    mine, users, after = log_of(tracked)[-3:]
    assert mine.reads == []
    assert [r["rel"] for r in users.reads] == ["train.csv"]
    assert [r["rel"] for r in after.reads] == ["train.csv"]


def test_figures_are_stored_as_png(tracked):
    tracked.run("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt")
    tracked.run("fig, ax = plt.subplots()\nax.plot([1, 2, 3])")
    tracked.run("x = 1")
    log = log_of(tracked)
    assert len(log[-2].figures) == 1 and log[-1].figures == []
    png = StoreReader(tracked.tracker.home).blobs.get(log[-2].figures[0])
    assert png.startswith(b"\x89PNG")


def test_a_live_plot_cleared_each_epoch_is_its_last_frame(tracked):
    """A training loop redrawing its plot each epoch (`clear_output(wait=True)` then
    `plt.show()`) leaves one figure in the cell's output: the run keeps that one, not a PNG
    per epoch. A loop that shows several figures without clearing keeps them all."""
    from mlops_nb.capture.figures import png_bytes

    tracked.run("import matplotlib\n"  # `%matplotlib inline`, which a plain shell refuses
                "matplotlib.use('module://matplotlib_inline.backend_inline')\n"
                "from IPython.core.pylabtools import select_figure_formats\n"
                "select_figure_formats(get_ipython(), {'png'})\n"
                "import matplotlib.pyplot as plt\nfrom IPython.display import clear_output\n"
                "plt.close('all')")  # another test's figure, else shown by the next cell
    sent: list = []
    pub = tracked.ip.display_pub
    theirs = pub.publish

    def publish(data, *args, **kwargs):  # what the frontend is sent, after the recorder
        sent.append(data.get("image/png"))
        return theirs(data, *args, **kwargs)

    pub.publish = publish
    tracked.run("losses = []\nfor epoch in range(5):\n    losses.append(1 / (epoch + 1))\n"
                "    clear_output(wait=True)\n    plt.figure()\n    plt.plot(losses)\n"
                "    plt.show()\nfinal_loss = losses[-1]")
    tracked.run("for k in range(3):\n    plt.figure()\n    plt.plot([k, k + 1])\n"
                "    plt.show()\nshown = 3")
    live, shown = log_of(tracked)[-2:]
    assert len(sent) == 8 and len(set(sent)) == 8
    blobs = StoreReader(tracked.tracker.home).blobs
    assert [blobs.get(b) for b in live.figures] == [png_bytes(sent[4])]
    assert [blobs.get(b) for b in shown.figures] == [png_bytes(p) for p in sent[5:]]


def test_rng_state_recorded_only_when_changed(tracked):
    tracked.run("import random\nrandom.seed(1)")
    tracked.run("a = random.random()")
    tracked.run("b = 1")
    tracked.run("c = 2")
    log = log_of(tracked)
    # before cell 1: initial state (first seen); before cell 2: seeded; before 3: advanced
    assert log[1].rng is not None and "random" in log[1].rng
    assert log[2].rng is not None
    assert log[3].rng is None
    payload = StoreReader(tracked.tracker.home).blobs.get(log[1].rng["random"])
    import random as _random

    from mlops_nb.capture.rng import restore_random

    restore_random(payload)
    _random.seed(1)
    expected = _random.random()
    restore_random(payload)
    assert _random.random() == expected


def test_environment_lists_imported_packages(tracked):
    tracked.run("import numpy")
    tracked.run("x = 1")
    tracked.flush()
    info = StoreReader(tracked.tracker.home).session_info(tracked.tracker.session)
    env = info["environment"]
    assert env["python"].count(".") == 2
    packages = info["packages"]
    assert "numpy" in packages and packages["numpy"].count(".") >= 1


def test_runs_api_and_get_run(tracked):
    tracked.run("depth = 3")
    tracked.run("score = depth * 0.1")
    df = mnb.runs()
    assert len(df) == 1 and df.loc[0, "params.depth"] == 3
    run = mnb.get_run(df.loc[0, "id"][:8])
    assert run["params"] == {"depth": 3}
    assert run["metrics"] == {"score": pytest.approx(0.3)}
    assert len(run["lineage"]) == 1
    json.dumps(run)  # the public view is JSON


def test_control_cells_are_not_recorded(tracked):
    tracked.run("%track status")
    tracked.run("x = 1")
    assert [cr.defs for cr in log_of(tracked)] == [["x"]]


def test_user_run_cell_inside_a_cell_is_part_of_it(tracked):
    tracked.run("get_ipython().run_cell('inner = 1')\nouter = 2")
    log = log_of(tracked)
    assert len(log) == 1 and log[0].defs == ["outer"]
    assert tracked.ns["inner"] == 1


def test_method_calls_on_modules_do_not_chain_lineage_even_when_backfilled(shell):
    shell.run("%load_ext mlops_nb")
    shell.run("import math\nimport random")
    shell.run("random.seed(3)")
    shell.run("%track on")
    shell.run("random.seed(4)")
    shell.run("root = math.sqrt(4.0)")
    log = log_of(shell)
    assert log[1].mutations == [] and log[2].mutations == []
    assert log[3].deps == [log[0].id]


def test_status_reports_what_is_on_disk(tracked, capsys):
    tracked.run("a = 1")
    tracked.run("b = 2")
    capsys.readouterr()
    tracked.run("%track status")
    out = capsys.readouterr().out
    assert "tracking: on" in out and "experiment: test" in out
    assert "cell runs recorded: 2; written: 2" in out


def test_runs_on_the_same_data_share_the_data_digest(tracked):
    tracked.run("import numpy as np\nX = np.arange(10.0)")
    tracked.run("w = 2\npred = X * w\nloss = float(pred.sum())")
    tracked.run("w = 3\npred = X * w\nloss = float(pred.sum())")
    tracked.run("X = np.arange(11.0)")
    tracked.run("w = 3\npred = X * w\nloss = float(pred.sum())")
    df = mnb.runs()
    assert df["data"].iloc[0] == df["data"].iloc[1] != df["data"].iloc[2]


@pytest.mark.parametrize("line, bad", [
    ("%track on --stable", "--stable"),
    ("%track on --name x", "--name"),
    ("%track off --experiment x", "--experiment"),
    ("%track runs --force", "--force"),
    ("%track reproduce --best", "--best"),
    ("%track launch", "launch"),
])
def test_each_action_takes_only_its_own_options(shell, line, bad):
    from IPython.core.error import UsageError

    shell.run("%load_ext mlops_nb")
    with pytest.raises(UsageError, match=bad):
        shell.ip.run_line_magic("track", line.removeprefix("%track "))
    assert not shell.tracker.auto  # nothing half-done: `on` with a bad option did not start


def test_track_cell_rejects_actions_and_line_options(shell, capsys):
    from IPython.core.error import UsageError

    shell.run("%load_ext mlops_nb")
    shell.ip.run_cell_magic("track", "on", "x = 1")
    assert "use the line magic for `on`" in capsys.readouterr().err
    assert "x" not in shell.ns
    with pytest.raises(UsageError, match="--save-models"):
        shell.ip.run_cell_magic("track", "--save-models", "x = 1")
    assert shell.ip.run_cell_magic("track", "-n r -m y -e 'churn model'", "y = 2\ny") == 2
    shell.run("%%track -n r -m y -e 'churn model'\ny = 3")
    shell.flush()
    [run] = StoreReader(shell.tracker.home).session_log(shell.tracker.session)
    assert (run.name, run.experiment, run.metrics) == ("r", "churn model", {"y": 3})
    assert shell.tracker.experiment != "churn model"  # the cell's own (`%track?`)
    capsys.readouterr()
    shell.run("%%track -n typo -m f1_scroe\nf1_score = 0.5")  # said in the cell, not only
    assert "--metric f1_scroe: no such variable after the cell ran" in capsys.readouterr().err


# -- cost bounds (issue 14, issue 8) -------------------------------------------------------------
def test_rng_check_sees_a_consumed_cached_gauss(tracked):
    """numpy's legacy normal sampler caches a value: using it moves nothing in the twister,
    so a check of the twister's words alone would miss that the stream moved."""
    tracked.run("import numpy as np\nnp.random.seed(3)\na = np.random.normal()")
    tracked.run("b = np.random.normal()")  # the cached gauss: the twister does not move
    tracked.run("c = 1")
    tracked.run("d = 2")
    log = log_of(tracked)
    blobs = StoreReader(tracked.tracker.home).blobs
    by_code = {blobs.get_text(cr.code): cr for cr in log}
    before_b = json.loads(blobs.get_text(by_code["b = np.random.normal()"].rng["numpy"]))
    before_c = json.loads(blobs.get_text(by_code["c = 1"].rng["numpy"]))
    assert before_b[1] == before_c[1] and before_b[2] == before_c[2]  # same twister words
    assert (before_b[3], before_c[3]) == (1, 0)  # the cached gauss was used in between
    assert "numpy" not in (by_code["d = 2"].rng or {})  # nothing moved: nothing stored


def test_rng_watcher_reports_each_move_once():
    import random

    import numpy as np

    from mlops_nb.capture.rng import RngWatcher

    w = RngWatcher()
    assert set(w.changed_states()) >= {"random", "numpy"}
    assert w.changed_states() == {}
    np.random.rand()
    assert set(w.changed_states()) == {"numpy"}
    random.random()
    assert set(w.changed_states()) == {"random"}
    state = np.random.get_state()
    np.random.rand(5)
    np.random.set_state(state)  # back where it was: not a move
    assert w.changed_states() == {}


def test_one_slow_object_is_skipped_and_the_rest_recorded(tracked, monkeypatch):
    """An object column whose values hang when hashed costs that object only, once."""
    import time

    monkeypatch.setenv("MLOPS_NB_OBJECT_BUDGET", "0.3")
    tracked.run(
        "import time\nimport numpy as np\n"
        "class Slow:\n"
        "    def __repr__(self):\n"
        "        time.sleep(30)\n"
        "        return 'slow'\n"
        "    __str__ = __repr__\n")
    t0 = time.perf_counter()
    tracked.run("bad = np.array([Slow(), Slow()], dtype=object)\ngood = np.arange(10)\n"
                "score = 0.5")
    assert time.perf_counter() - t0 < 5
    t0 = time.perf_counter()
    tracked.run("score2 = float(len(bad)) + good.sum()")  # unchanged: not tried again
    assert time.perf_counter() - t0 < 1
    first, second = log_of(tracked)[-2:]
    assert "good" in first.data and "bad" not in first.data
    assert any(w.startswith("bad not fingerprinted") and "MLOPS_NB_OBJECT_BUDGET" in w
               for w in first.warnings)
    assert not any("data capture skipped" in w for w in first.warnings)
    assert first.metrics == {"score": 0.5}
    assert any(w.startswith("bad not fingerprinted") for w in second.warnings)


def test_a_figure_that_hangs_when_rendered_is_skipped(tracked, monkeypatch):
    import time

    monkeypatch.setenv("MLOPS_NB_OBJECT_BUDGET", "3")
    tracked.run(
        "import io, time\nimport matplotlib\nmatplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\nfrom matplotlib.artist import Artist\n"
        "class Hang(Artist):\n"
        "    def draw(self, renderer):\n"
        "        time.sleep(30)\n"
        "warm = plt.figure()\nwarm.savefig(io.BytesIO(), format='png')\nplt.close(warm)\n")
    t0 = time.perf_counter()
    result = tracked.run("fig, ax = plt.subplots()\nax.plot([1, 2])\nfig.add_artist(Hang())\n"
                         "fig2, ax2 = plt.subplots()\nax2.plot([3, 1])\n'shown'")
    assert time.perf_counter() - t0 < 15  # not the 30 s the figure would take
    assert result.result == "shown"  # the cell's own output is untouched
    cr = log_of(tracked)[-1]
    assert len(cr.figures) == 1, cr.warnings  # the other figure is kept
    assert any("a figure was not stored" in w for w in cr.warnings)
    tracked.run("plt.close('all')")


def test_no_per_run_state_is_kept_in_the_kernel_beyond_the_lineage_index(tracked,
                                                                         monkeypatch):
    """Recording N more cells grows what the tracker holds only by the lineage index's entry
    per run (3 objects: the entry, its deps, its id); every cache is bounded."""
    import ast
    import gc
    import types

    from mlops_nb.store import blobs

    monkeypatch.setattr(blobs, "RECENT_BLOBS", 16)  # reached within the warm-up

    # Code (and the globals behind it) is not per-run state; nor are the AST's shared
    # singletons (`ast.Load()`), to which tracebacks' source inspection attaches parents.
    code = (types.ModuleType, types.FunctionType, types.MethodType,
            types.BuiltinFunctionType, ast.expr_context, ast.operator, ast.boolop,
            ast.unaryop, ast.cmpop)

    def held() -> int:
        gc.collect()
        t = tracked.tracker
        seen: set[int] = {id(t.shell), id(t.shell.user_ns),
                          id(getattr(t.shell, "display_pub", None))}
        stack = [t]
        while stack:
            obj = stack.pop()
            if id(obj) in seen or isinstance(obj, (type, *code)) or \
                    type(obj).__name__ == "_Segment":  # a segment: see below
                continue
            seen.add(id(obj))
            stack.extend(gc.get_referents(obj))
        return len(seen)

    for i in range(60):  # more distinct cells than the analysis cache keeps
        tracked.run(f"v{i % 5} = {i}")
    tracked.flush()
    before = held()
    for i in range(100):
        tracked.run(f"v{i % 5} = {i} + 1")
    tracked.flush()
    per_run = (held() - before) / 100
    assert per_run <= 3.5, per_run
    writer = tracked.tracker.writer
    assert len(writer.blobs._recent) <= 16
    # The segment being written holds its records until it rolls over: bounded by its size,
    # and each as the JSON written, not as a record's dicts and lists, which the kernel's
    # garbage collector would walk again and again (storage.AtomicJSONStorage).
    from mlops_nb.store.storage import Written

    assert all(seg.count <= writer.segment_size for seg in writer._open)
    for seg in writer._open:
        docs = [d for table in seg.db.storage.read().values() for d in table.values()]
        assert docs and all(type(d) is Written for d in docs)


def test_track_on_says_when_the_store_belongs_to_a_parent_folder(
        shell, store_home, monkeypatch, capsys) -> None:
    """A stray `.mlops_nb/` above the project captures every notebook below it: say so once."""
    store_home.mkdir()
    sub = store_home.parent / "project" / "notebooks"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    shell.run("%load_ext mlops_nb")
    shell.run("%track on")
    out = capsys.readouterr().out
    assert f"tracking every cell into {store_home.resolve()}" in out
    assert "parent folder" in out and "MLOPS_NB_HOME" in out


def test_track_on_is_quiet_about_a_store_beside_the_notebook(shell, store_home, capsys) -> None:
    shell.run("%load_ext mlops_nb")
    shell.run("%track on")
    out = capsys.readouterr().out
    assert "tracking every cell into" in out
    assert "parent folder" not in out

@pytest.mark.parametrize(("raw", "control"), [
    ("", True), ("# a comment\n\n", True), ("%track on", True),
    ("%load_ext mlops_nb\n%track on --experiment e\n# go", True),
    ("%track on\nx = 1", False), ("x = 1\n%track on", False), ("%load_ext autoreload", False),
    ("%%track\nx = 1", False), ("%reload_ext mlops_nb", True), ("%unload_ext other", False),
    ("\n\n   x = 1\n%track on", False), ("\u2028%track on\u2028", True), ("  \u3000 \n", True),
    ("\t%track on\r\n# c\r\n", True), ("%%time\n%track on", False), ("#\n%track on\nx", False),
])
def test_control_cells_are_only_mlops_nb_magics(raw, control):
    from mlops_nb.capture.backfill import is_control_cell

    assert is_control_cell(raw) is control


def test_records_are_completed_off_the_kernel_thread_and_the_log_is_whole_when_read(
        tracked, monkeypatch):
    """Redaction and lineage run on the writer thread (capture/deferred.py); reading the
    session log from the kernel thread finishes whatever the writer has not reached."""
    import threading

    from mlops_nb.capture import recorder

    threads: list[str] = []
    real = recorder.redact_cell_run

    def redact(cr, blobs, **kw):
        threads.append(threading.current_thread().name)
        return real(cr, blobs, **kw)

    monkeypatch.setattr(recorder, "redact_cell_run", redact)
    for code in ("a = 1", "b = a + 1", "c = b * 2"):
        tracked.run(code)
    tracked.flush()
    assert threads and all(name.startswith("mlops-nb-writer") for name in threads)
    log = tracked.tracker.log
    assert len(log) == 3 and log.entries[2].deps == (1,) and log.entries[1].deps == (0,)

    # Without a flush, the kernel thread's read completes the records itself.
    tracked.run("d = c - 1")
    assert tracked.tracker.log.entries[-1].deps == (2,)


def test_a_record_whose_secrets_cannot_be_checked_keeps_its_place_and_nothing_else(
        tracked, monkeypatch):
    from mlops_nb.capture import recorder

    real = recorder.redact_cell_run

    def redact(cr, blobs, **kw):
        if any(b"boom" in data for data in blobs.values()):
            raise RuntimeError("redaction bug")
        return real(cr, blobs, **kw)

    monkeypatch.setattr(recorder, "redact_cell_run", redact)
    tracked.run("a = 1")
    tracked.run("b = a + 1  # boom\ndepth = 4")
    tracked.run("c = b + 1")
    log = log_of(tracked)
    assert [cr.defs for cr in log] == [["a"], ["b", "depth"], ["c"]]
    withheld = log[1]
    assert withheld.params == {} and withheld.warnings and "secrets" in withheld.warnings[0]
    text = StoreReader(tracked.tracker.home).blobs.get(withheld.code).decode()
    assert "boom" not in text and "not stored" in text
    assert log[2].deps == [withheld.id]  # the lineage stays whole


def test_the_session_log_is_the_same_whichever_thread_completes_each_record(tracked):
    """Reads of the session log from the kernel thread race the writer for the same steps:
    whoever gets there first, each record is completed once, in order, and what is stored
    agrees with the kernel's log."""
    tracked.run("a = 0")
    for i in range(1, 150):
        tracked.run(f"lr = {i / 1000!r}\na = a + 1" if i % 3 else "b = a * 2\nacc = b / 1000")
        if i % 7 == 0:
            assert len(tracked.tracker.log) == i + 1  # settled here, mid-stream
    log = tracked.tracker.log
    stored = log_of(tracked)
    assert [cr.seq for cr in stored] == list(range(150))
    ids = [e.id for e in log.entries]
    assert [cr.id for cr in stored] == ids
    for cr, entry in zip(stored, log.entries, strict=True):
        assert cr.deps == [ids[d] for d in entry.deps]
    last = [cr for cr in stored if cr.metrics][-1]  # cell 147: a = 98 (147 - 49 increments)
    assert last.metrics == {"acc": 0.196} and last.effective_params["lr"] == 0.146


def test_the_cells_parse_is_analysed_once_and_freed_with_the_cell(tracked, monkeypatch):
    """The recorder analyses IPython's own parse of the cell as it is made and keeps none of
    it: the tree is freed when the cell ends, as untracked, even while the writer thread is
    still busy with the record (a tree held until then outlives the next cell's garbage
    collections). The record is the same as ever."""
    import ast
    import threading
    import weakref

    from mlops_nb.capture import recorder

    trees: list[weakref.ref] = []
    compiler = tracked.ip.compile
    inner = compiler.ast_parse

    def parse(*args, **kwargs):
        tree = inner(*args, **kwargs)
        if isinstance(tree, ast.Module):
            trees.append(weakref.ref(tree))
        return tree

    compiler.ast_parse = parse
    parses = []
    real_analyze = recorder.analyze
    monkeypatch.setattr(recorder, "analyze", lambda code: parses.append(type(code)) or
                        real_analyze(code))
    release = threading.Event()
    finish = tracked.tracker._finish
    monkeypatch.setattr(tracked.tracker, "_finish",
                        lambda *a, **k: release.wait(10) and finish(*a, **k))
    try:
        tracked.run("alpha = 0.5\nscores = [alpha * k for k in range(3)]\naccuracy = 0.9")
        assert trees and trees[-1]() is None  # freed, though the record is not written yet
    finally:
        release.set()
        compiler.ast_parse = inner
    assert parses == [ast.Module]  # IPython's parse, analysed once: not parsed again
    tracked.flush()
    last = log_of(tracked)[-1]
    assert last.params == {"alpha": 0.5} and last.metrics == {"accuracy": 0.9}
    assert "alpha" in last.defs and "scores" in last.defs


def test_a_failing_analysis_at_parse_time_never_reaches_the_cell(tracked, monkeypatch):
    """The cell is analysed inside IPython's compile step: a failure there must not fail the
    user's cell; the record is built from the cell's text afterwards, as before."""
    from mlops_nb.capture import recorder

    real = recorder.analyze
    calls = []

    def flaky(code):
        calls.append(type(code).__name__)
        if not isinstance(code, str):
            raise RuntimeError("analysis bug")
        return real(code)

    monkeypatch.setattr(recorder, "analyze", flaky)
    tracked.run("beta = 3\nloss = 0.25")
    assert tracked.ns["loss"] == 0.25
    assert calls == ["Module", "str"]  # at parse time, then from the text after the cell
    last = log_of(tracked)[-1]
    assert last.params == {"beta": 3} and last.metrics == {"loss": 0.25}
