"""Steps of a cell run's record that need none of the kernel's live state, run later.

Once the namespace has been read, what is left of a record (redacting secrets, moving large
values to blobs, adding it to the session's lineage index) is pure work on data already
captured. It runs on the writer thread, which is idle while the user reads a cell's output,
instead of on the cell's critical path. Order matters (the lineage index must see cell runs in
execution order), so the steps form one queue: whoever needs step k first (the writer about to
store record k, or the kernel thread about to read the session log) runs every step up to k,
exactly once, under one lock.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

Step = Callable[[], bool]


class DeferredSteps:
    """An ordered queue of steps; each runs once, on whichever thread reaches it first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[int, Step]] = deque()
        self._next = 0
        # Outcomes of steps run before their own caller asked (the kernel thread settled
        # them first): taken once by `run_upto(k)`.
        self._outcomes: dict[int, bool] = {}

    def add(self, step: Step) -> int:
        """Queue `step` (it returns whether its record may be stored); returns its number."""
        with self._lock:
            k = self._next
            self._next += 1
            self._queue.append((k, step))
        return k

    def run_upto(self, k: int) -> bool:
        """Run every queued step up to `k` in order; the outcome of step `k` (False if it
        failed, or was never queued)."""
        with self._lock:
            self._run_while(lambda n: n <= k)
            return self._outcomes.pop(k, False)

    def settle(self) -> None:
        """Run every queued step: after this the state the steps build is complete (until the
        next `add`). Outcomes stay for their records' own `run_upto`."""
        with self._lock:
            self._run_while(lambda n: True)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _run_while(self, wanted: Callable[[int], bool]) -> None:
        queue = self._queue
        while queue and wanted(queue[0][0]):
            n, step = queue.popleft()
            try:
                ok = bool(step())
            except Exception as exc:  # a step must never take the writer thread down
                log.warning("mlops-nb failed to finish a cell run's record: %r", exc)
                ok = False
            self._outcomes[n] = ok
