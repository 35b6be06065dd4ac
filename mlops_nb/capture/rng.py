"""RNG states, so an export can replay even unseeded randomness bit for bit.

Global generators (`random`, numpy's, PyTorch's once torch is imported) are checked before
every tracked cell, so the check compares a cheap digest, not the state: the 2.5 KB of each
Mersenne Twister read in place (a microsecond, where `get_state()` and `random.getstate()`
copy and convert 625 words in tens), once a first read agreed with what those return; else
the state itself. Only a state that moved is copied, and the recorder serialises the copy to
JSON on its writer thread (`changed_lazily`).

Generator objects bound in the namespace (`rng = np.random.default_rng()`, `random.Random()`,
a `RandomState`) are checked only before a cell whose code names them: the cell's words are
matched against the namespace, so a cell naming no generator costs one pass over its text. Their
states are keyed `obj:NAME`; the export restores one into the object the name holds, right
before a cell that reads the name.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import sys
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from .values import not_plain

OBJ_PREFIX = "obj:"  # record key of a generator object: `obj:` + the name bound to it
# Every ASCII byte that cannot be in a name made a space, in a 256-byte table for the cell's
# UTF-8 bytes: `.split()` then gives its words (numbers too, which no generator is bound to).
# A quarter of `str.translate`'s time with a dict, three times faster than a regular
# expression, before every cell. Bytes from 128 up, the parts of non-ASCII characters (which
# can be in names), are kept as they are.
_APART = bytes(32 if b < 128 and not (chr(b).isalnum() or chr(b) == "_") else b
               for b in range(256))


def words(code: str) -> list[str]:
    """The cell's words: every run of letters, digits and underscores (names and numbers)."""
    return code.encode("utf-8", "surrogatepass").translate(_APART).decode(
        "utf-8", "surrogatepass").split()


# numpy's `mt19937_state`: 624 uint32 words and an int position.
_MT_STATE_BYTES = 624 * 4 + 4
# CPython's `RandomObject` (Modules/_randommodule.c): the object header, then an int index
# and the 624 uint32 words.
_RANDOM_HEADER = 2 * struct.calcsize("P")
_RANDOM_STATE_BYTES = 4 + 624 * 4
_UNKNOWN = object()


class RngWatcher:
    def __init__(self) -> None:
        self._last_random: Any = None
        self._last_numpy: Any = None
        self._numpy_source: Any = None  # the RandomState whose raw state we read in place
        self._numpy_view: Any = None  # its state's bytes, in place (`_view`)
        self._numpy_raw: bytes | None = None
        self._numpy_gauss = True  # the last state held a cached gauss (or is unknown)
        self._last_torch: bytes | None = None
        self._last_obj: dict[str, tuple[int, bytes]] = {}  # key -> (id of object, state)
        self._random_source: Any = None  # the `random.Random` the module's functions draw from
        self._random_view: Any = None
        self._random_raw: tuple[bytes, Any] | None = None  # its words, and gauss_next
        self._kinds: dict[type, str | None] = {}  # generator kind of each type seen

    def changed_states(self) -> dict[str, bytes]:
        """{'random'|'numpy'|'torch': JSON bytes} for each global RNG whose state moved since
        the last call."""
        return {name: payload() if callable(payload) else payload
                for name, payload in self.changed_lazily().items()}

    def changed_lazily(self) -> dict[str, bytes | Callable[[], bytes]]:
        """`changed_states`, where a moved state is copied now but serialised when called:
        the recorder serialises off the cell's critical path (the copies are immutable)."""
        out: dict[str, bytes | Callable[[], bytes]] = {}
        raw = self._random_words()
        if raw is None:  # read through getstate(): copied to be compared
            state = random.getstate()
            if state != self._last_random:
                self._last_random = state
                out["random"] = partial(_random_payload, state)
        elif raw != self._random_raw:  # the words are the state: they are the copy
            self._random_raw = raw
            out["random"] = partial(_random_payload_of_words, raw)
        np = sys.modules.get("numpy")
        if np is not None:
            payload = self._numpy_changed(np)
            if payload is not None:
                out["numpy"] = payload
        torch = sys.modules.get("torch")
        if torch is not None:
            payload = self._torch_changed(torch)
            if payload is not None:
                out["torch"] = payload
        return out

    def _torch_changed(self, torch: Any) -> bytes | None:
        try:
            raw = bytes(torch.random.get_rng_state().numpy())
        except Exception:  # a stand-in or broken torch, or no numpy bridge
            return None
        if raw == self._last_torch:
            return None
        self._last_torch = raw
        return json.dumps(base64.b64encode(raw).decode("ascii")).encode()

    def object_states(self, code: str, ns: dict[str, Any]) -> dict[str, bytes]:
        """{'obj:NAME': JSON bytes} for each generator object the code names whose state (or
        identity) changed since it was last recorded: its state before the cell draws. The
        code's words are its names (and more: words in its strings and comments)."""
        # no set of all the words first
        return self.named_states(ns.keys() & words(code), ns)

    def named_states(self, names: Iterable[str], ns: dict[str, Any]) -> dict[str, bytes]:
        """`object_states` of the generators among `names` (the names a cell's analysis
        found it reads: no pass over its text)."""
        out: dict[str, bytes] = {}
        kinds = self._kinds
        # numbers, text, modules... are never generators
        for name in not_plain(ns, names):
            obj = ns[name]
            cls = type(obj)
            kind = kinds.get(cls, _UNKNOWN)
            if kind is _UNKNOWN:
                if len(kinds) > 4096:  # classes redefined cell after cell: keep none alive long
                    kinds.clear()
                kind = kinds[cls] = _generator_kind(cls)
            if kind is None:
                continue
            try:
                payload = json.dumps({"type": kind, "state": _object_state(kind, obj)}).encode()
            except Exception:
                continue
            key = OBJ_PREFIX + name
            if self._last_obj.get(key) != (id(obj), payload):
                self._last_obj[key] = (id(obj), payload)
                out[key] = payload
        return out

    def _random_words(self) -> tuple[bytes, Any] | None:
        """The `random` module's twister words, read in place, and its cached gauss; None
        where the object's layout is not the one checked (another interpreter or build)."""
        source = getattr(random.getstate, "__self__", None)
        if source is not self._random_source:
            self._random_source, self._random_view = source, None
            try:
                view = _view(id(source) + _RANDOM_HEADER, _RANDOM_STATE_BYTES)
                if isinstance(source, random.Random) and \
                        _internal(view.raw) == super(random.Random, source).getstate():
                    self._random_view = view
            except Exception:
                self._random_view = None
        view = self._random_view
        if view is None:
            return None
        return view.raw, getattr(source, "gauss_next", None)

    def _numpy_changed(self, np: Any) -> Callable[[], bytes] | None:
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
        self._last_numpy = nstate  # get_state() returns copies: safe to serialise later
        return partial(_numpy_payload, nstate)

    def _raw(self, source: Any) -> bytes | None:
        """The twister's state bytes, read in place; None where that is not possible."""
        if source is not self._numpy_source:
            self._numpy_source, self._numpy_view = source, None
            try:
                bitgen = source._bit_generator
                if type(bitgen).__name__ == "MT19937":
                    view = _view(int(bitgen.ctypes.state_address), _MT_STATE_BYTES)
                    words = view.raw
                    state = bitgen.state["state"]  # check the layout once
                    if words[:-4] == state["key"].tobytes() and \
                            int.from_bytes(words[-4:], sys.byteorder, signed=True) == \
                            int(state["pos"]):
                        self._numpy_view = view
            except Exception:
                self._numpy_view = None
        view = self._numpy_view
        return None if view is None else view.raw


def _view(addr: int, size: int) -> Any:
    """`size` bytes at `addr`, in place: `.raw` copies them out with no ctypes call (a call
    through `ctypes.string_at` costs its import and argument conversion before every cell).
    The caller keeps the object that owns the memory alive while it keeps the view."""
    import ctypes

    return (ctypes.c_char * size).from_address(addr)


def _generator_kind(cls: type) -> str | None:
    """What generator objects of class `cls` are, for `_object_state`; None if not one. A
    numpy class can only be met once numpy is loaded (it is never imported here)."""
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            if cls is np.random.Generator:
                return "numpy.Generator"
            if cls is np.random.RandomState:
                return "numpy.RandomState"
        except AttributeError:
            pass
    if issubclass(cls, random.Random) and not issubclass(cls, random.SystemRandom):
        return "random.Random"
    return None


def _object_state(kind: str, obj: Any) -> Any:
    if kind == "numpy.Generator":
        return _plain(obj.bit_generator.state)
    if kind == "numpy.RandomState":
        return _plain(obj.get_state(legacy=False))
    version, internal, gauss = obj.getstate()
    return [version, list(internal), gauss]


def _plain(value: Any) -> Any:
    """A bit generator's state dict with its arrays as lists (MT19937's key), JSON-ready."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def is_object_key(key: str) -> bool:
    return key.startswith(OBJ_PREFIX)


def _random_payload(state: tuple[Any, ...]) -> bytes:
    version, internal, gauss = state
    return b"[%d, %s, %s]" % (version, _int_list(internal), json.dumps(gauss).encode())


def _random_payload_of_words(raw: tuple[bytes, Any]) -> bytes:
    """`_random_payload` of the state whose twister words (index first) were read in place."""
    words, gauss = raw
    return _random_payload((random.Random.VERSION, _internal(words), gauss))


def _internal(words: bytes) -> tuple[int, ...]:
    """The 625 ints `_random.Random.getstate()` gives (the words, then the index) of the
    bytes `RandomObject` holds (the index, then the words)."""
    return (*struct.unpack("=624I", words[4:]), int.from_bytes(words[:4], sys.byteorder,
                                                                  signed=True))


def _numpy_payload(nstate: tuple[Any, ...]) -> bytes:
    name, keys, pos, has_gauss, cached = nstate
    return b"[%s, %s, %d, %d, %s]" % (json.dumps(name).encode(), _int_list(keys.tolist()),
                                      int(pos), int(has_gauss), json.dumps(float(cached)).encode())


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
