"""Global RNG states, so an export can replay even unseeded randomness bit for bit.

Checked before every tracked cell, so the check compares a cheap digest, not the state: for
numpy's global generator the 2.5 KB of its Mersenne Twister read in place (a microsecond,
where `get_state()` copies and converts it in tens), for `random` its state tuple. Serialising
to JSON happens only when a state moved.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

# numpy's `mt19937_state`: 624 uint32 words and an int position.
_MT_STATE_BYTES = 624 * 4 + 4


class RngWatcher:
    def __init__(self) -> None:
        self._last_random: Any = None
        self._last_numpy: Any = None
        self._numpy_source: Any = None  # the RandomState whose raw state we read in place
        self._numpy_addr = 0
        self._numpy_raw: bytes | None = None
        self._numpy_gauss = True  # the last state held a cached gauss (or is unknown)

    def changed_states(self) -> dict[str, bytes]:
        """{'random'|'numpy': JSON bytes} for each global RNG whose state moved since last call."""
        out: dict[str, bytes] = {}
        state = random.getstate()
        if state != self._last_random:
            self._last_random = state
            version, internal, gauss = state
            out["random"] = b"[%d, %s, %s]" % (version, _int_list(internal),
                                              json.dumps(gauss).encode())
        np = sys.modules.get("numpy")
        if np is not None:
            payload = self._numpy_changed(np)
            if payload is not None:
                out["numpy"] = payload
        return out

    def _numpy_changed(self, np: Any) -> bytes | None:
        try:
            source = np.random.mtrand._rand
        except AttributeError:
            return None
        raw = self._raw(source)
        # The twister's words and position decide the stream, except a gauss cached by the
        # legacy normal sampler: using it moves nothing in the twister, so while one is
        # cached the full state is read.
        if raw is not None and raw == self._numpy_raw and not self._numpy_gauss:
            return None
        try:
            nstate = source.get_state(legacy=True)
        except (AttributeError, TypeError, ValueError):
            return None
        if not isinstance(nstate, tuple):
            return None
        self._numpy_raw = raw
        self._numpy_gauss = bool(nstate[3])
        if _same_numpy_state(nstate, self._last_numpy):
            return None
        self._last_numpy = nstate
        name, keys, pos, has_gauss, cached = nstate
        return b"[%s, %s, %d, %d, %s]" % (json.dumps(name).encode(), _int_list(keys.tolist()),
                                          int(pos), int(has_gauss),
                                          json.dumps(float(cached)).encode())

    def _raw(self, source: Any) -> bytes | None:
        """The twister's state bytes, read in place; None where that is not possible."""
        import ctypes

        if source is not self._numpy_source:
            self._numpy_source, self._numpy_addr = source, 0
            try:
                bitgen = source._bit_generator
                if type(bitgen).__name__ == "MT19937":
                    addr = int(bitgen.ctypes.state_address)
                    words = ctypes.string_at(addr, _MT_STATE_BYTES)
                    state = bitgen.state["state"]  # check the layout once
                    if words[:-4] == state["key"].tobytes() and \
                            int.from_bytes(words[-4:], sys.byteorder, signed=True) == \
                            int(state["pos"]):
                        self._numpy_addr = addr
            except Exception:
                self._numpy_addr = 0
        if not self._numpy_addr:
            return None
        return ctypes.string_at(self._numpy_addr, _MT_STATE_BYTES)


def _int_list(values: Any) -> bytes:
    """`json.dumps(list(values)).encode()` for ints, byte for byte (so a state's blob keeps its
    hash), in a tenth of the time: this runs before every cell after which an RNG moved."""
    import msgspec

    return msgspec.json.encode(values).replace(b",", b", ")


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
