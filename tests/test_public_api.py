"""The public face: every name in `mlops_nb.__all__` is a plain function or class with its real
signature and an Args/Returns/Raises docstring, and importing the package stays light."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import types

import pytest

import mlops_nb as mnb

PUBLIC = sorted(mnb.__all__)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_documented(name):
    obj = getattr(mnb, name)
    doc = inspect.getdoc(obj) or ""
    assert len(doc) > 40, f"{name} has no real docstring"
    if isinstance(obj, type):
        return
    assert isinstance(obj, types.FunctionType), f"{name} is {type(obj)}, not a plain function"
    params = [p for p in inspect.signature(obj).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL,)]
    sections = ["Returns:", "Raises:"] + (["Args:"] if params else [])
    for section in sections:
        assert re.search(rf"^{section}$", doc, re.M), f"{name}: no {section} section"
    args = doc.split("Args:")[1].split("Returns:")[0] if params else ""
    for p in params:
        shown = f"**{p.name}" if p.kind is p.VAR_KEYWORD else p.name
        assert re.search(rf"^\s+{re.escape(shown)}:", args, re.M), f"{name}: {p.name} undocumented"


@pytest.mark.parametrize("name, module, keywords", [
    ("export", "mlops_nb.exporting", {"run_id", "out_dir", "home", "force"}),
    ("compare", "mlops_nb.comparison", {"experiment", "metric", "goal", "home"}),
    ("reproduce", "mlops_nb.reproduction", {"target", "home", "rtol", "atol", "timeout",
                                            "stable"}),
    ("retrain", "mlops_nb.retraining", {"target", "data", "gates", "promote", "when", "home"}),
    ("validate", "mlops_nb.validation", {"run_id", "data", "name", "home", "alpha", "psi"}),
    ("start", "mlops_nb.api", {"experiment", "metrics", "allow_params", "save_models"}),
    ("log_metric", "mlops_nb.api", {"name", "value", "step"}),
])
def test_real_signatures_are_visible(name, module, keywords):
    fn = getattr(mnb, name)
    assert fn.__module__ == module
    params = inspect.signature(fn).parameters
    assert keywords <= set(params), set(params)
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values()) or name == "compare"
    text = pydoc_text(fn)
    for kw in keywords:
        assert kw in text


def pydoc_text(fn) -> str:
    import pydoc

    return pydoc.render_doc(fn, renderer=pydoc.plaintext)


def test_functions_stay_functions_whatever_is_imported():
    for info in pkgutil.walk_packages(mnb.__path__, "mlops_nb."):
        if info.name.startswith(("mlops_nb.server", "mlops_nb.sync.mlflow")):
            continue  # need jupyter_server / mlflow: not part of this check
        importlib.import_module(info.name)
    for name in ("export", "compare", "reproduce", "retrain", "validate"):
        assert isinstance(getattr(mnb, name), types.FunctionType), name
    import mlops_nb.comparison.model
    import mlops_nb.exporting.build  # noqa: F401

    assert isinstance(mnb.export, types.FunctionType)


def test_no_module_replaces_its_class():
    root = __import__("pathlib").Path(mnb.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if re.search(r"modules\[__name__\]\.__class__|_CallableModule", p.read_text())]
    assert offenders == []


def test_dir_lists_the_lazy_names():
    assert set(mnb.__all__) <= set(dir(mnb))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = mnb.nope


def test_import_stays_light():
    code = ("import sys, mlops_nb as mnb\n"
            "heavy = [m for m in ('pandas', 'sklearn', 'matplotlib', 'scipy', 'ipywidgets')"
            " if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "mnb.export; mnb.compare; mnb.reproduce\n"
            "heavy = [m for m in ('pandas', 'sklearn', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
