"""Threads mlops-nb itself runs inside the user's kernel: the session writer, the comparison
widget's verification and noise workers.

What they open is the tool's own business: the blob packs the writer scans, the export a
verification re-runs. A cell running meanwhile did not read those files, so the file-read
watcher (`capture/io_watch.py`) leaves them out of its record. A thread-local flag set by the
thread itself, not a set of thread ids: an id is reused once its thread ends, and a user's
thread given it later would go unwatched.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

_LOCAL = threading.local()
_F = TypeVar("_F", bound=Callable[..., Any])


def own(target: _F) -> _F:
    """`target`, marking the thread that runs it as mlops-nb's own while it runs (so called
    on the kernel's thread by mistake, it would not hide that thread's reads afterwards)."""
    @functools.wraps(target)
    def run(*args: Any, **kwargs: Any) -> Any:
        before = is_own()
        _LOCAL.own = True
        try:
            return target(*args, **kwargs)
        finally:
            _LOCAL.own = before

    return run  # type: ignore[return-value]


def is_own() -> bool:
    return getattr(_LOCAL, "own", False)
