"""Global RNG states, so an export can replay even unseeded randomness bit for bit.

Checked before every tracked cell, so the comparison must be cheap (microseconds): we keep the
last state object and compare; serialising to JSON happens only when it changed.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any


class RngWatcher:
    def __init__(self) -> None:
        self._last_random: Any = None
        self._last_numpy: Any = None

    def changed_states(self) -> dict[str, bytes]:
        """{'random'|'numpy': JSON bytes} for each global RNG whose state moved since last call."""
        out: dict[str, bytes] = {}
        state = random.getstate()
        if state != self._last_random:
            self._last_random = state
            version, internal, gauss = state
            out["random"] = json.dumps([version, list(internal), gauss]).encode()
        np = sys.modules.get("numpy")
        if np is not None:
            try:
                nstate = np.random.get_state(legacy=True)
            except (AttributeError, TypeError, ValueError):
                nstate = None
            if isinstance(nstate, tuple) and not _same_numpy_state(nstate, self._last_numpy):
                self._last_numpy = nstate
                name, keys, pos, has_gauss, cached = nstate
                out["numpy"] = json.dumps(
                    [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]
                ).encode()
        return out


def _same_numpy_state(a: tuple[Any, ...], b: tuple[Any, ...] | None) -> bool:
    if b is None:
        return False
    return a[2:] == b[2:] and bool((a[1] == b[1]).all())


def restore_random(payload: bytes) -> None:
    version, internal, gauss = json.loads(payload)
    random.setstate((version, tuple(internal), gauss))


def restore_numpy(payload: bytes) -> None:
    import numpy as np

    name, keys, pos, has_gauss, cached = json.loads(payload)
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
