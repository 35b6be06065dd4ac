"""The capture time budget: interrupts busy loops and blocking calls, on and off the main
thread, and leaves signal handlers as it found them."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from mlops_nb.capture.guard import CaptureTimeout, capture_budget, time_budget
from mlops_nb.store.reader import StoreReader


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.parametrize("work", [_spin, time.sleep], ids=["busy-loop", "blocking-sleep"])
def test_budget_interrupts_the_main_thread(work):
    before = {s: signal.getsignal(s) for s in (signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2)}
    t0 = time.perf_counter()
    with pytest.raises(CaptureTimeout), time_budget(0.2):
        work(10)
    assert time.perf_counter() - t0 < 3
    assert {s: signal.getsignal(s) for s in before} == before


def test_budget_interrupts_a_busy_loop_off_the_main_thread():
    outcome: list[str] = []

    def run() -> None:
        try:
            with time_budget(0.2):
                _spin(10)
            outcome.append("finished")
        except CaptureTimeout:
            outcome.append("timeout")

    t0 = time.perf_counter()
    worker = threading.Thread(target=run)
    worker.start()
    worker.join(15)
    assert outcome == ["timeout"] and time.perf_counter() - t0 < 5


def test_a_block_within_budget_is_untouched_and_nothing_fires_later():
    with time_budget(0.3):
        value = sum(range(1000))
    assert value == 499500
    time.sleep(0.5)  # a late timer would raise here


def test_user_code_cannot_swallow_the_timeout():
    def stubborn() -> None:
        try:
            _spin(10)
        except Exception:  # what a hostile method might do
            _spin(10)

    t0 = time.perf_counter()
    with pytest.raises(CaptureTimeout), time_budget(0.2):
        stubborn()
    assert time.perf_counter() - t0 < 3


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv("MLOPS_NB_CAPTURE_BUDGET", "1.5")
    assert capture_budget() == 1.5
    for bad in ("soon", "-1", "1e9"):
        monkeypatch.setenv("MLOPS_NB_CAPTURE_BUDGET", bad)
        assert capture_budget() == 5.0
    monkeypatch.setenv("MLOPS_NB_CAPTURE_BUDGET", "0")
    with time_budget():  # 0 disables the budget
        time.sleep(0.05)


@pytest.fixture
def alarm_unclaimed():
    """SIGALRM as a plain kernel has it (pytest-timeout's handler and timer set aside)."""
    handler = signal.signal(signal.SIGALRM, signal.SIG_DFL)
    timer = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, handler)
        if timer != (0.0, 0.0):
            signal.setitimer(signal.ITIMER_REAL, *timer)


def test_an_alarm_already_armed_is_left_running_and_the_budget_still_fires(alarm_unclaimed):
    """A timer someone armed on SIGALRM with the default action (it would end the process):
    the budget borrows another signal and gives the timer back as it found it."""
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    with pytest.raises(CaptureTimeout), time_budget(0.2):
        time.sleep(2)
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 95.0 < remaining <= 100.0
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL


def test_budgets_nest_and_each_raises_its_own_exception(alarm_unclaimed):
    from mlops_nb.capture.guard import ObjectTimeout

    before = {s: signal.getsignal(s) for s in (signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2)}
    with time_budget(5.0):
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 4.0  # the outer one holds SIGALRM
        with pytest.raises(ObjectTimeout), time_budget(0.2, ObjectTimeout):
            time.sleep(2)
        time.sleep(0.01)  # the inner one, withdrawn, fires nothing here
    assert {s: signal.getsignal(s) for s in before} == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize(("setup", "cell", "armed"), [
    ("", "lr = 0.1\nitems = [lr, 'a', None]\nacc = sum([0.5, lr])", False),
    ("", "import math\nroot = math.sqrt(2)\ndef f(x):\n    return x\nacc = 0.5", False),
    ("import numpy as np", "X = np.zeros(3)\nacc = 0.5", True),  # data: fingerprinted
    ("class M:\n    pass\nm = M()", "m.x = 1\nacc = 0.5", True),  # the user's object
    ("def train():\n    return 0.5", "acc = train()", True),  # what it mutated is read
    ("", "def train():\n    return 0.5\nacc = train()", True),  # the cell's own, too
    ("p = 'data.csv'\nopen(p, 'w').close()", "t = open('data.csv').read()\nacc = 0.5", True),
    ("import numpy as np\nacc = np.float64(0.5)", "acc += 0.1", True),  # not a plain number
])
def test_the_capture_budget_is_armed_only_when_a_step_can_meet_user_code(
        tracked, monkeypatch, tmp_path, setup, cell, armed):
    """Four system calls a cell are saved when every name the capture steps look at holds a
    plain value, no file was read and no notebook function was called: nothing they do can
    hang then. Anything else is still read inside the budget."""
    from mlops_nb.capture import build

    monkeypatch.chdir(tmp_path)
    tracked.run(setup)
    entered: list[bool] = []
    real = build.time_budget

    class Counting(real):  # type: ignore[misc, valid-type]
        def __enter__(self) -> None:
            entered.append(True)
            return super().__enter__()

    monkeypatch.setattr(build, "time_budget", Counting)
    tracked.run(cell)
    assert bool(entered) is armed
    tracked.flush()
    run = StoreReader(tracked.tracker.home).session_log(tracked.tracker.session)[-1]
    assert run.id == tracked.tracker.last_id and "acc" in run.metrics  # read either way
    # the data step ran where there is data: an array, a file read
    assert bool(run.data) is ("np.zeros" in cell or "open(" in cell)
