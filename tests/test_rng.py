"""The RNG states the recorder stores restore the exact stream (the export relies on it)."""

from __future__ import annotations

import json
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_nb.capture.rng import RngWatcher, restore_numpy, restore_random


def test_states_are_stored_only_when_they_change_and_restore_exactly():
    w = RngWatcher()
    random.seed(7)
    np.random.seed(7)
    first = w.changed_states()
    assert set(first) - {"torch"} == {"random", "numpy"}  # torch: where a test imported it
    assert w.changed_states() == {}  # nothing moved
    expected = (random.random(), np.random.rand(3).tolist(), np.random.normal())
    moved = w.changed_states()
    assert set(moved) == {"random", "numpy"}  # torch's generator did not move
    restore_random(first["random"])
    restore_numpy(first["numpy"])
    assert (random.random(), np.random.rand(3).tolist(), np.random.normal()) == expected


def test_state_payloads_are_the_json_they_always_were():
    """Fast serialisation, same bytes: a state's blob keeps its hash across versions."""
    import json

    watcher = RngWatcher()
    for draw in (lambda: None, random.random, np.random.random, np.random.normal,
                 lambda: random.gauss(0, 1)):
        draw()
        watcher._last_random = watcher._random_raw = watcher._numpy_raw = None  # afresh
        watcher._last_numpy = None
        got = watcher.changed_states()
        version, internal, gauss = random.getstate()
        assert got["random"] == json.dumps([version, list(internal), gauss]).encode()
        name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
        assert got["numpy"] == json.dumps([name, keys.tolist(), int(pos), int(has_gauss),
                                           float(cached)]).encode()


def test_the_random_module_state_read_in_place_sees_every_move():
    """The words are read from the generator's memory (once checked against getstate()), and
    a draw that only uses the cached normal still counts as a move."""
    import platform

    w = RngWatcher()
    random.seed(11)
    w.changed_states()
    if platform.python_implementation() == "CPython":
        assert w._random_view is not None  # the cheap digest, not a copy of the state per cell
    random.gauss(0, 1)  # draws two uniforms, caches the second normal
    version, internal, gauss = random.getstate()
    first = w.changed_states()
    assert first["random"] == json.dumps([version, list(internal), gauss]).encode()
    cached = random.gauss(0, 1)  # uses the cached normal: the twister's words do not move
    second = w.changed_states()
    assert "random" in second and second["random"] != first["random"]
    assert "random" not in w.changed_states()
    state = random.getstate()
    random.random()
    random.setstate(state)  # back where it was: not a move
    assert "random" not in w.changed_states()
    random.seed(11)
    assert "random" in w.changed_states()
    restore_random(first["random"])  # the copy replays the stream, cached normal included
    assert random.gauss(0, 1) == cached


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_a_cells_words_read_through_its_bytes_are_its_words(code):
    """The generator check splits the cell into words through a byte table: the same words
    `str.translate` with the character map gives, for any text (non-ASCII names, Unicode
    spaces, lone surrogates)."""
    from mlops_nb.capture.rng import words

    apart = str.maketrans({c: " " for c in map(chr, range(128))
                           if not (c.isalnum() or c == "_")})
    assert words(code) == code.translate(apart).split()
