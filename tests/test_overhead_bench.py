"""The recorder clock of `benchmarks.overhead phases`: what it counts as the recorder's CPU."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from benchmarks import overhead
from mlops_nb.capture import autolog


def test_the_clock_counts_hooks_and_autolog_inside_the_cells_calls_once(tracked, monkeypatch):
    """With a clock that ticks once per reading, the count is the number of clocked calls:
    the four hooks of each cell, plus one per fit or score the cell makes itself (autolog's
    work after the wrapped method returned; `score` calls `predict` and a metric inside,
    which autolog itself leaves alone), and a clocked call made inside another is counted
    once, with the outer one."""
    tracked.run("from sklearn.linear_model import LogisticRegression\n"
                "from sklearn.metrics import accuracy_score\n"
                "X = [[0.0], [1.0], [2.0], [3.0]]\ny = [0, 0, 1, 1]")
    ticks = itertools.count()
    monkeypatch.setattr(overhead, "time", SimpleNamespace(thread_time=lambda: next(ticks)))
    for name in overhead._HookClock.AUTOLOG:  # the clock wraps them in the module: undone
        monkeypatch.setattr(autolog, name, getattr(autolog, name))
    clock = overhead._HookClock(tracked.tracker)
    clock.take()
    tracked.run("a = 1")
    assert clock.take() == 4
    tracked.run("clf = LogisticRegression().fit(X, y)\nacc = clf.score(X, y)")
    assert clock.take() == 4 + 2
    tracked.run("acc = accuracy_score(y, clf.predict(X))")
    assert clock.take() == 4 + 2
    inner = clock._timed(lambda: None)
    outer = clock._timed(lambda: inner())
    outer()
    assert clock.take() == 1  # the inner call read no clock of its own


def test_the_context_switch_count_sees_the_kernel_thread_give_up_the_cpu():
    """`phases` counts the kernel thread's context switches per cell (a count where times
    drift): a thread that sleeps gives up the CPU, voluntarily, each time."""
    import resource
    import time

    import pytest

    if not hasattr(resource, "RUSAGE_THREAD"):
        pytest.skip("no per-thread usage on this system")
    before = overhead._switches()
    for _ in range(3):
        time.sleep(0.002)
    after = overhead._switches()
    assert after[0] - before[0] >= 3
