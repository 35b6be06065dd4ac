"""The RNG states the recorder stores restore the exact stream (the export relies on it)."""

from __future__ import annotations

import random

import numpy as np

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
