"""A time budget for capture steps that call into the user's objects.

Capture runs on the kernel's main thread after the user's code finished, and it has to touch
user objects (`get_params()`, a column's `__str__`, a `--metric` value's `__repr__`). Any of them
can hang. The user's objects cannot be moved to another thread safely, so the step stays on
the main thread and a timer interrupts it instead:

- on the main thread, where Unix has SIGALRM, `signal.setitimer` interrupts even a blocking
  `time.sleep` (the handler raises between bytecodes once the call returns EINTR);
- elsewhere, a watchdog thread raises the exception in the capturing thread with
  `PyThreadState_SetAsyncExc`, which interrupts pure-Python loops.

The exception is a `BaseException`, so a hostile `except Exception:` inside the user's method
cannot swallow it; the recorder catches it, skips that step and notes a warning on the run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

ENV_BUDGET = "MLOPS_NB_CAPTURE_BUDGET"
DEFAULT_BUDGET = 5.0


class CaptureTimeout(BaseException):
    """A capture step ran out of its time budget (a BaseException: user code must not catch
    it as an ordinary error)."""


def capture_budget() -> float:
    """MLOPS_NB_CAPTURE_BUDGET (seconds, 0 disables): how long one capture step may call into
    the user's objects before it is skipped. Fingerprinting a large frame is in that step, so
    the default leaves room for data that is merely big."""
    try:
        value = float(os.environ.get(ENV_BUDGET, DEFAULT_BUDGET))
    except ValueError:
        return DEFAULT_BUDGET
    return value if 0 <= value <= 3600 else DEFAULT_BUDGET


@contextmanager
def time_budget(seconds: float | None = None) -> Iterator[None]:
    """Raise CaptureTimeout in this thread if the block runs longer than `seconds`."""
    seconds = capture_budget() if seconds is None else seconds
    if seconds <= 0:
        yield
        return
    if _can_use_alarm():
        with _alarm(seconds):
            yield
    else:
        with _watchdog(seconds):
            yield


def _can_use_alarm() -> bool:
    if not hasattr(signal, "setitimer"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    # Someone else's timer or SIGALRM handler is theirs: do not take it over.
    if signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0):
        return False
    return signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise CaptureTimeout(f"took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    target = threading.get_ident()
    done = threading.Event()
    lock = threading.Lock()
    state = {"armed": True}

    def watch() -> None:
        if done.wait(seconds):
            return
        with lock:
            if state["armed"]:
                _raise_in(target, CaptureTimeout)
                state["armed"] = False

    watcher = threading.Thread(target=watch, name="mlops-nb-capture-watchdog", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        with lock:
            pending = not state["armed"]
            state["armed"] = False
        done.set()
        if pending:
            # Raised but not yet delivered when the block ended by itself: withdraw it.
            _raise_in(target, None)


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None)
