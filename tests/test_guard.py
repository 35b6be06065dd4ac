"""The capture time budget: interrupts busy loops and blocking calls, on and off the main
thread, and leaves signal handlers as it found them."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from mlops_nb.capture.guard import CaptureTimeout, capture_budget, time_budget


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
