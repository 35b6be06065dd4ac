"""The recorder's code finds every builtin it names among its own module's globals, so
IPython's changes to the builtins dict around each cell do not undo CPython's cached lookups
of them (capture/pinned_builtins.py)."""

from __future__ import annotations

import builtins
import dis
import sys
import types
from collections.abc import Iterator

import pytest

import mlops_nb
from mlops_nb import records
from mlops_nb.capture import autolog, build, io_watch, namespace, recorder
from mlops_nb.capture.pinned_builtins import pin_builtins, pinnable
from mlops_nb.store import writer

CELLS = [
    "import numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "rng = np.random.default_rng(0)\nX = rng.normal(size=(60, 3))\ny = (X[:, 0] > 0).astype(int)",
    "frame = pd.DataFrame(X, columns=['a', 'b', 'c'])\nframe['y'] = y",
    "C = 0.5\nclf = LogisticRegression(C=C).fit(frame[['a', 'b', 'c']], frame['y'])\n"
    "accuracy = clf.score(frame[['a', 'b', 'c']], frame['y'])\nprint(f'{accuracy:.3f}')",
    "for depth in (1, 2):\n    model = LogisticRegression(C=depth).fit(X, y)\n"
    "    print(model.score(X, y))",
]


def _functions(module: types.ModuleType) -> Iterator[types.FunctionType]:
    """The functions a module defines, its classes' methods and properties included."""
    for value in vars(module).values():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if isinstance(value, types.FunctionType):
            yield value
        elif isinstance(value, type):
            for attr in vars(value).values():
                attr = getattr(attr, "__func__", attr)  # staticmethod, classmethod
                if isinstance(attr, property):
                    yield from (f for f in (attr.fget, attr.fset) if f is not None)
                elif isinstance(attr, types.FunctionType):
                    yield attr


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """A code object and those nested in it (comprehensions, closures, lambdas)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def test_recorder_code_loads_no_builtin_through_the_builtins_dict(tracked):
    pytest.importorskip("sklearn")
    for cell in CELLS:
        tracked.run(cell)
    tracked.flush()
    tracked.run("x = 1")  # modules the writer thread imported since: pinned at this cell
    safe = pinnable()
    modules = [m for name, m in sorted(sys.modules.items()) if name.startswith("mlops_nb.")]
    checked, falls_through = set(), []
    for module in modules:
        for fn in _functions(module):
            if fn.__globals__ is not vars(module):  # made by a library (dataclasses' repr)
                continue
            for code in _codes(fn.__code__):
                checked.add(code)
                falls_through.extend(
                    f"{module.__name__}.{getattr(code, 'co_qualname', code.co_name)}: "
                    f"{ins.argval}"
                    for ins in dis.get_instructions(code)
                    if ins.opname == "LOAD_GLOBAL" and ins.argval in safe
                    and ins.argval not in fn.__globals__)
    assert falls_through == []
    # what was looked at: the recorder's own steps, in the modules the cells loaded
    assert {f.__code__ for f in (build.capture_namespace, namespace.read_data,
                                 autolog._after_method, recorder.Tracker.post_run_cell,
                                 writer.SessionWriter.append, records.CellRun.__init__)
            } <= checked
    assert "mlops_nb.validation.profile" in sys.modules  # imported by the data frame's cell
    # what is never pinned: what io_watch wraps in cells, and the package users see
    assert "open" not in vars(io_watch)
    assert "len" not in vars(mlops_nb)


def test_pinning_keeps_a_modules_own_names(monkeypatch):
    mod = types.ModuleType("fakepkg.helpers")
    exec("def filter(x):\n    return 'own'\n", vars(mod))
    monkeypatch.setitem(sys.modules, "fakepkg.helpers", mod)
    monkeypatch.setitem(sys.modules, "fakepkg", types.ModuleType("fakepkg"))
    assert pin_builtins("fakepkg") == 1
    assert mod.filter(1) == "own"
    assert vars(mod)["len"] is builtins.len and vars(mod)["KeyError"] is KeyError
    assert "open" not in vars(mod) and "print" not in vars(mod) and "exit" not in vars(mod)
    assert "len" not in vars(sys.modules["fakepkg"])
    assert pin_builtins("fakepkg") == 0  # idempotent
