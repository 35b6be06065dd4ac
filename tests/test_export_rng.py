"""Issue 12, reproduction reach: generator objects and PyTorch's global generator.

Each pattern runs in a real tracked InteractiveShell with unseeded randomness, draws once in
an intermediate cell (so a fresh stream would not match), is exported and reproduced in a
fresh Python process, which must give the same metric.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from test_export_patterns import runs_of, verify

# What stands in for PyTorch where the real one is not installed (CI does not install it: a
# plain `torch` pulls a CUDA build of several GB). It has torch's global-generator API only,
# and lives beside the notebook, so the export copies it into lib/ like any helper module.
TORCH_STANDIN = '''"""TEST STAND-IN for PyTorch (not torch): its global generator API only."""
import json as _json
import types as _types

import numpy as _np

uint8 = "uint8"
_gen = _np.random.Generator(_np.random.PCG64())  # unseeded, like torch's default generator


class _Bytes:
    def __init__(self, data):
        self._data = bytes(data)

    def numpy(self):
        return _np.frombuffer(self._data, dtype=_np.uint8)


def _get_rng_state():
    return _Bytes(_json.dumps(_gen.bit_generator.state).encode())


def _set_rng_state(state):
    _gen.bit_generator.state = _json.loads(state._data)


random = _types.SimpleNamespace(get_rng_state=_get_rng_state, set_rng_state=_set_rng_state)


def frombuffer(data, dtype):
    return _Bytes(data)


def manual_seed(seed):
    _gen.bit_generator.state = _np.random.PCG64(seed).state


def rand(n):
    return _gen.random(n)
'''

REAL_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture
def no_leftover_torch():
    before = "torch" in sys.modules
    yield
    if not before and not REAL_TORCH:
        sys.modules.pop("torch", None)


def test_unseeded_numpy_generator_drawn_from_in_later_cells(tracked):
    tracked.run("import numpy as np")
    tracked.run("rng = np.random.default_rng()")
    tracked.run("# a draw the run does not need\njunk = rng.normal(size=4)")
    tracked.run("x = rng.normal(size=3)\nscore = float(x.sum())")
    (run,) = runs_of(tracked)
    out, verdict, src = verify(run)
    # the draw mutated `rng`, so its cell stays in the lineage; each cell reading `rng`
    # starts from the state the notebook had
    run_cell = src.index("x = rng.normal(size=3)")
    assert src.rindex("_mnb.restore_rng('rng', ", 0, run_cell) > src.index("junk = rng")
    assert verdict.metrics["score"]["recorded"] == verdict.metrics["score"]["reproduced"]
    states = json.loads((out / "rng_states.json").read_text())
    assert {s["type"] for s in states.values() if isinstance(s, dict)} == {"numpy.Generator"}


def test_random_random_instance_and_numpy_randomstate(tracked):
    tracked.run("import random\nimport numpy as np")
    tracked.run("r = random.Random()\nrs = np.random.RandomState()")
    tracked.run("r.random()\nrs.rand(2)")
    tracked.run("picks = r.sample(range(1000), 5)\nscore = float(sum(picks) + rs.rand())")
    (run,) = runs_of(tracked)
    out, _verdict, src = verify(run)
    assert "_mnb.restore_rng('r', " in src and "_mnb.restore_rng('rs', " in src
    states = json.loads((out / "rng_states.json").read_text()).values()
    assert {s["type"] for s in states if isinstance(s, dict)} == {"numpy.RandomState",
                                                                  "random.Random"}


def test_a_cell_naming_no_generator_records_no_object_state(tracked):
    tracked.run("import numpy as np\nrng = np.random.default_rng()")
    tracked.run("a = 1")
    tracked.run("b = rng.random()")
    tracked.flush()
    from mlops_nb.store.reader import StoreReader

    log = StoreReader(tracked.tracker.home).session_log(tracked.tracker.session)
    keys = {cr.seq: sorted(k for k in cr.rng or {} if k.startswith("obj:")) for cr in log}
    assert sorted(keys.values()) == [[], [], ["obj:rng"]]


def test_torch_global_generator(tracked, no_leftover_torch, monkeypatch):
    if not REAL_TORCH:
        Path("torch.py").write_text(TORCH_STANDIN)
        monkeypatch.syspath_prepend(str(Path.cwd()))  # the notebook's folder, as in Jupyter
    tracked.run("import torch")
    tracked.run("warmup = torch.rand(5)")
    tracked.run("score = float(torch.rand(4).sum())")
    (run,) = runs_of(tracked)
    out, verdict, src = verify(run)
    assert "_mnb.restore_rng('torch', " in src
    assert verdict.metrics["score"]["recorded"] == verdict.metrics["score"]["reproduced"]
    reqs = (out / "requirements.txt").read_text()
    assert ("torch==" in reqs) == REAL_TORCH


def test_a_sweep_drawing_from_a_generator_object_replays_each_iteration(tracked):
    tracked.run("import mlops_nb as mnb\nimport numpy as np\nrng = np.random.default_rng()")
    tracked.run("for scale in [1.0, 2.0, 3.0]:\n"
                "    mnb.log_metric('score', float(rng.normal(size=3).sum()) * scale)")
    runs = runs_of(tracked)
    assert [r.params for r in runs] == [{"scale": 1.0}, {"scale": 2.0}, {"scale": 3.0}]
    for i, run in enumerate(runs):
        _out, verdict, src = verify(run, name=f"exp{i}")
        assert verdict.metrics["score"]["reproduced"] == run.metrics["score"]
        if i:  # iteration k starts where iteration k-1 left the generator
            assert src.count("_mnb.restore_rng('rng', ") == 2


def _object_state_keys(tracked) -> list[list[str]]:
    tracked.flush()
    from mlops_nb.store.reader import StoreReader

    log = StoreReader(tracked.tracker.home).session_log(tracked.tracker.session)
    return [sorted(k for k in cr.rng or {} if k.startswith("obj:"))
            for cr in sorted(log, key=lambda cr: cr.seq)]


def test_generator_states_come_from_the_names_the_parse_finds(tracked):
    """A cell's generators are found from its analysis, as IPython parses it: a generator
    drawn only inside a function the cell defines and calls is found too, one named only in
    a comment or a string is not (the text's words found both), and the export of a run
    drawing through such a function reproduces."""
    tracked.run("import numpy as np\nrng = np.random.default_rng()\nother = "
                "np.random.default_rng()")
    tracked.run("# a draw the run does not need\njunk = rng.normal(size=4)")
    tracked.run("def draw():\n    return rng.normal(size=3)\n\n"
                "x = draw()  # other is not drawn from here\nlabel = 'other'\n"
                "score = float(x.sum())")
    assert _object_state_keys(tracked)[-1] == ["obj:rng"]
    (run,) = runs_of(tracked)
    _out, verdict, src = verify(run)
    assert "_mnb.restore_rng('rng', " in src
    assert verdict.metrics["score"]["recorded"] == verdict.metrics["score"]["reproduced"]


def test_generator_states_without_the_parse_hook_come_from_the_words(tracked):
    """A `%%track` body, a cell parsed by a compiler someone put in after `%track on`
    (the parse never reaches us): the states still come, from the cell's words."""
    tracked.run("import numpy as np\nrng = np.random.default_rng()")
    tracked.run("%%track\ny = rng.normal()")
    compiler = tracked.ip.compile
    ours = compiler.ast_parse
    compiler.ast_parse = type(compiler).ast_parse.__get__(compiler)  # not through our hook
    try:
        tracked.run("z = rng.normal()")
    finally:
        compiler.ast_parse = ours
    assert _object_state_keys(tracked)[-2:] == [["obj:rng"], ["obj:rng"]]
