"""A time budget for capture steps that call into the user's objects.

Capture runs on the kernel's main thread after the user's code finished, and it has to touch
user objects (`get_params()`, a column's `__str__`, a `--metric` value's `__repr__`). Any of them
can hang. The user's objects cannot be moved to another thread safely, so the step stays on
the main thread and a timer interrupts it instead:

- on the main thread, a signal: `signal.setitimer` (SIGALRM) when nobody else uses it, else a
  watchdog thread sending SIGUSR2/SIGUSR1 with `pthread_kill`. A signal interrupts even a
  blocking `time.sleep` (the handler raises once the call returns EINTR);
- elsewhere (another thread, Windows), the watchdog raises the exception in the capturing
  thread with `PyThreadState_SetAsyncExc`, which interrupts pure-Python loops only.

The exception is a `BaseException`, so a hostile `except Exception:` inside the user's method
cannot swallow it; the recorder catches it, skips that step and notes a warning on the run.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from .. import config

try:  # the C functions under `signal`: its wrappers turn every handler into an enum, which
    import _signal as _handlers  # was a third of arming a budget, once per cell
except ImportError:  # pragma: no cover - another interpreter
    _handlers = signal  # type: ignore[assignment]


class CaptureTimeout(BaseException):
    """A capture step ran out of its time budget (a BaseException: user code must not catch
    it as an ordinary error)."""


class ObjectTimeout(CaptureTimeout):
    """One object (a huge frame, a hanging `__str__` in a column, a pathological figure) ran
    out of its own budget inside a step: that object is skipped, the step goes on."""


def object_budget() -> float:
    """MLOPS_NB_OBJECT_BUDGET (seconds, 0 disables): how long fingerprinting one object or
    rendering one figure may take before that object alone is skipped (with a warning on the
    run). Hashing is ~8 GB/s on numbers, so the default leaves room for data merely big."""
    return float(config.read(config.OBJECT_BUDGET))


def capture_budget() -> float:
    """MLOPS_NB_CAPTURE_BUDGET (seconds, 0 disables): how long the capture of one cell may
    call into the user's objects before the step it is in is skipped. Fingerprinting a large
    frame is part of it, so the default leaves room for data that is merely big."""
    return float(config.read(config.CAPTURE_BUDGET))


class time_budget:
    """Raise `exc` in this thread if the block runs longer than `seconds`.

    Budgets nest (a step's, and inside it one object's): the outer holds SIGALRM, an inner
    one borrows another signal from the watchdog, and each raises its own exception type.

    A class, not a generator-based context manager: it is armed once per recorded cell, on
    the kernel's thread, where the generator machinery, a closure and a `getitimer` call made
    arming it a sixth of the recorder's time after the cell (measured in a running shell).
    """

    __slots__ = ("_fired", "_previous", "_sig", "_watch", "exc", "seconds")

    def __init__(self, seconds: float | None = None,
                 exc: type[CaptureTimeout] = CaptureTimeout) -> None:
        self.seconds = seconds
        self.exc = exc
        self._sig = 0
        self._fired = False
        self._watch: Any = None

    def __enter__(self) -> None:
        seconds = self.seconds
        if seconds is None:
            seconds = self.seconds = capture_budget()
        if seconds <= 0:
            return
        sig = _free_signal()
        if sig == signal.SIGALRM:
            self._previous = _handlers.signal(sig, self._handler)
            earlier = signal.setitimer(signal.ITIMER_REAL, seconds)
            if earlier == (0.0, 0.0):
                self._sig = sig
                return
            # Someone's alarm, with the default action, was armed (`_free_signal` cannot see
            # that without a system call of its own): give it back, borrow another signal.
            signal.setitimer(signal.ITIMER_REAL, *earlier)
            _handlers.signal(sig, self._previous)
            sig = _free_signal(alarm=False)
        if sig is not None:  # SIGALRM is someone else's (pytest-timeout, a user's alarm)
            self._previous = _handlers.signal(sig, self._handler)
            self._sig = sig
        # a thread signals `sig` when the time is up, or without one raises `exc` in this one
        self._watch = _watchdog(seconds, sig, self.exc)
        self._watch.__enter__()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if not self._fired:
            self._fired = True
            raise self.exc(f"took longer than {self.seconds:g} s")

    def __exit__(self, *exc_info: object) -> None:
        sig, watch = self._sig, self._watch
        try:
            if watch is not None:
                self._watch = None
                watch.__exit__(None, None, None)
            elif sig == signal.SIGALRM:
                signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            if sig:
                self._sig = 0
                _handlers.signal(sig, self._previous)


def _free_signal(alarm: bool = True) -> int | None:
    """A signal this (main) thread may borrow: a signal interrupts a blocking call, which an
    asynchronous exception cannot. None off the main thread or where there is none.
    SIGALRM (`alarm`) may still have a timer armed: `time_budget` finds that out."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if alarm and hasattr(signal, "setitimer") and _unclaimed(signal.SIGALRM):
        return signal.SIGALRM
    if hasattr(signal, "pthread_kill"):
        for name in ("SIGUSR2", "SIGUSR1"):
            sig = getattr(signal, name, None)
            if sig is not None and _unclaimed(sig):
                return int(sig)
    return None


def _unclaimed(sig: int) -> bool:
    return _handlers.getsignal(sig) in (signal.SIG_DFL, signal.SIG_IGN, None)


class _Watchdog:
    """One daemon thread for every budget: arming it is a lock and a notify, not a new thread
    per capture step (that cost about a millisecond per cell). Nested budgets are separate
    jobs; the earliest deadline fires first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # serial -> (thread, deadline, signal or None, exception raised without a signal)
        self._jobs: dict[int, tuple[int, float, int | None, type[BaseException]]] = {}
        self._fired: set[int] = set()
        self._serial = 0
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, sig: int | None,
            exc: type[BaseException] = CaptureTimeout) -> int:
        with self._cond:
            self._serial += 1
            self._jobs[self._serial] = (threading.get_ident(), time.monotonic() + seconds,
                                        sig, exc)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="mlops-nb-capture-watchdog")
                self._thread.start()
            self._cond.notify()
            return self._serial

    def disarm(self, serial: int) -> bool:
        """Stop watching; True if the budget had already fired."""
        with self._cond:
            self._jobs.pop(serial, None)
            fired = serial in self._fired
            self._fired.discard(serial)
            return fired

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._jobs:
                    self._cond.wait()
                    continue
                serial = min(self._jobs, key=lambda s: self._jobs[s][1])
                target, deadline, sig, exc = self._jobs[serial]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                del self._jobs[serial]
                self._fired.add(serial)
                if sig is not None:
                    signal.pthread_kill(target, sig)
                else:
                    _raise_in(target, exc)


_WATCHDOG = _Watchdog()


@contextmanager
def _watchdog(seconds: float, sig: int | None,
              exc: type[BaseException] = CaptureTimeout) -> Iterator[None]:
    """After `seconds`, the watchdog signals this thread with `sig` (its handler raises) or,
    without one, raises `exc` in it asynchronously."""
    serial = _WATCHDOG.arm(seconds, sig, exc)
    try:
        yield
    finally:
        if _WATCHDOG.disarm(serial) and sig is None:
            # Raised but perhaps not delivered when the block ended by itself: withdraw it.
            _raise_in(threading.get_ident(), None)


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    import ctypes  # rarely needed (off the main thread): not at `%load_ext`

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None)
