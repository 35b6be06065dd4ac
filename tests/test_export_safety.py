"""Safety of generated code and output paths: a hostile corpus, Hypothesis, an audit hook.

Every recorded name and value enters train.py as an AST node: the corpus below (>= 300
hostile values) must give scripts that all parse, whose parameters block holds only constants
and containers, and that run without any injected code executing (checked by an audit hook).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import os
import runpy
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_nb.errors import ExportExists, UnsafeExport, UnsafeOutputPath
from mlops_nb.exporting import export_run
from mlops_nb.exporting.codegen import CellCode, DataFile, ScriptPlan, render
from mlops_nb.exporting.literals import check_flags, check_name, is_constant_expr, literal_to_ast
from mlops_nb.reproduction import reproduce
from mlops_nb.store.reader import StoreReader

CANARY = "PWNED_BY_EXPORT"
_SHELL = f"touch {CANARY}"
HOSTILE_STRINGS = [
    "x; import os", "x = 1\nimport os", f"'; import os; os.system('{_SHELL}'); '",
    f'"; import os; os.system("{_SHELL}"); "', '"""', "'''", '"""; import os; """',
    "\\", "\\'", "\n", "\r\n", "\r", "\x00", "a\x00b", "\u202e", "abc\u202edef", "\u2066",
    "\u2028", "\u2029", "\x85", "\ufeff", "\x1b[31mred", "\x7f", "\t", "#", "# c\nimport os",
    "{__import__('os').system('" + _SHELL + "')}", "%(x)s", "{0}", "{{}}", "$(touch x)",
    "`touch x`", f"__import__('os').system('{_SHELL}')", "exec('import os')",
    "eval('1+1')", "lambda: 0", "f'{1}'", "b'x'", "r'\\n'", ")", "]}", "\\N{BULLET}",
    "\\x00", "\\u202e", "\ud800", "\udfff", "é", "名前", "🙂", "a" * 5000, "", " ",
    "None", "True", "nan", "inf", "-inf", "1e309", "__builtins__", "os.system",
    "\"'\"'", "\\\n", "if True:\n    import os", "<script>alert(1)</script>",
    "../../etc/passwd", "/dev/null", "C:\\Windows", "--save-model", "-h",
]


class _Evil:
    def __repr__(self) -> str:
        return f"__import__('os').system('{_SHELL}')"


class _EvilStr(str):
    def __repr__(self) -> str:
        return f"__import__('os').system('{_SHELL}')"


class _EvilFloat(float):
    def __repr__(self) -> str:
        return f"__import__('os').system('{_SHELL}')"


NUMBERS = [
    math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, 5e-324, -1e-300, 10**5000,
    -(10**5000), 2**63, -(2**63), 10**4299, True, False, None, 0, -1,
    complex(1, -2), complex(math.nan, math.inf), complex(0, 0),
]
BYTES = [b"", b"\x00", b"'", b'"""', bytes(range(256)), b"\\x00; import os"]


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


CONTAINERS = [
    set(), frozenset(), {1, 2, 3}, frozenset({"a", "b"}), {math.nan}, (), [], {}, (1,),
    [1, [2, [3, [4]]]], {"a": {"b": {"c": [1, 2.5, None]}}}, _nested(40),
    {1: "x", 2.5: b"y", None: (True, False)}, [math.inf, -math.inf, math.nan],
    {"x; import os": "y", "\x00": "\u202e"}, ({1, 2}, frozenset({3})),
]


def corpus() -> list:
    values: list = []
    for s in HOSTILE_STRINGS:
        values += [s, [s], {s: s}, (s, 1), {s}]
    return values + NUMBERS + BYTES + CONTAINERS


REJECTED_VALUES = [_Evil(), _EvilStr("x"), _EvilFloat(1.0), [_Evil()], {"a": _Evil()},
                   {_EvilStr("k"): 1}, object(), type, print, range(3), _nested(60)]


def _plan(value, text: str = "x") -> ScriptPlan:
    cell = CellCode(0, 1, "ab" * 16, ast.parse("score = 1.0").body)
    return ScriptPlan(
        docstring=f"Reproduce run of experiment {text}",
        hoisted=[], params={"p": value},
        data=[DataFile(text, "--data-file", f"/nonexistent/{text}", text, 3)],
        cells=[cell], metrics=[text, "score"], models=[],
    )


def _params_nodes(script) -> list[ast.stmt]:
    tree = ast.parse(script.source)
    start, end = script.params_lines
    return [n for n in tree.body if start <= n.lineno <= end]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                     math.copysign(1, b))
    if isinstance(a, complex) and isinstance(b, complex):
        return _same(a.real, b.real) and _same(a.imag, b.imag)
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(_same(x, y) for x, y in
                                        zip(a.items(), b.items(), strict=True))
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(_same(x, y) for y in b) for x in a)
    return a == b


_SAFE_BUILTINS = {"float": float, "int": int, "set": set, "frozenset": frozenset,
                  "complex": complex}


def _evaluate(node: ast.expr):
    """Evaluate a parameter expression with only the constructors it may use."""
    assert is_constant_expr(node)
    code = compile(ast.fix_missing_locations(ast.Expression(node)), "<param>", "eval")
    return eval(code, {"__builtins__": _SAFE_BUILTINS})


# -- the audit hook: armed only while corpus scripts run ------------------------------------
_AUDIT = {"armed": False, "script": None, "events": []}
_FORBIDDEN = ("os.system", "subprocess.Popen", "os.exec", "os.spawn", "os.posix_spawn",
              "os.fork", "os.kill", "socket.connect", "ctypes.dlopen", "shutil.rmtree",
              "webbrowser.open")


def _is_namedtuple_new(source: object) -> bool:
    """collections.namedtuple compiles its `__new__` from a fixed template: not injected."""
    return isinstance(source, bytes) and source.startswith(b"lambda _cls, ") and (
        b"_tuple_new(_cls, (" in source)


def _hook(event: str, args: tuple) -> None:
    if not _AUDIT["armed"]:
        return
    forbidden = event in _FORBIDDEN or event.startswith(("os.exec", "os.spawn"))
    injected = (event == "compile" and len(args) > 1 and args[1] != _AUDIT["script"]
                and not _is_namedtuple_new(args[0]))
    canary = event == "open" and bool(args) and CANARY in str(args[0])
    if forbidden or injected or canary:
        _AUDIT["events"].append((event, repr(args)[:200]))


sys.addaudithook(_hook)


def _write_export(folder: Path, script, params: dict) -> Path:
    """train.py with what it reads beside it: the support module and run.json (the recorded
    names, paths and flags as JSON data, never as code)."""
    import mlops_nb.exporting.support as support

    folder.mkdir()
    shutil.copy(support.__file__, folder / "_mlops_support.py")
    (folder / "run.json").write_text(json.dumps({"script": script.config, "parameters": {}}),
                                     encoding="utf-8")
    path = folder / "train.py"
    path.write_text(script.source, encoding="utf-8", errors="surrogatepass")
    return path


def _run_in_process(path: Path, out: Path) -> None:
    argv = sys.argv
    sys.argv = [str(path), "--output-dir", str(out)]
    _AUDIT["script"] = str(path)
    import mlops_nb.exporting.support  # noqa: F401 - compiled once, before the audit is armed
    sys.modules.setdefault("_mlops_support", sys.modules["mlops_nb.exporting.support"])
    _AUDIT["armed"] = True
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
                io.StringIO()):
            runpy.run_path(str(path), run_name="__main__")
    finally:
        _AUDIT["armed"] = False
        sys.argv = argv


def test_the_hostile_corpus_gives_scripts_that_parse_hold_constants_and_inject_nothing(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    values = corpus()
    assert len(values) >= 300
    parsed = ran = 0
    for i, value in enumerate(values):
        text = value if isinstance(value, str) else type(value).__name__
        script = render(_plan(value, text))
        (node,) = _params_nodes(script)  # parses the whole script: a SyntaxError fails
        parsed += 1
        assert isinstance(node, ast.Assign) and is_constant_expr(node.value)
        assert _same(_evaluate(node.value), value), (value, ast.unparse(node.value))
        if i % 3 == 0 or isinstance(value, (float, complex, int, bytes)):
            path = _write_export(tmp_path / f"s{i}", script, {"p": value})
            _run_in_process(path, tmp_path / f"o{i}")
            ran += 1
    assert parsed == len(values)
    assert ran >= 100
    assert _AUDIT["events"] == []
    assert not list(tmp_path.rglob(f"*{CANARY}*"))
    print(f"corpus: {len(values)} values, {parsed} scripts parsed (100%), {ran} executed "
          "under the audit hook, 0 forbidden events")


@pytest.mark.parametrize("value", REJECTED_VALUES, ids=lambda v: type(v).__name__)
def test_objects_that_are_not_plain_data_are_rejected(value):
    with pytest.raises(UnsafeExport, match=r"not plain data|deeper than"):
        literal_to_ast(value)


@pytest.mark.parametrize("name", [
    "x; import os", "a b", "", "1x", "class", "match", "None", "é", "a\x00", "\u202ex",
    "_mnb_PARAMETERS", "__x", "a-b", "x\n", 3, None,
])
def test_invalid_parameter_names_are_rejected_clearly(name):
    with pytest.raises(UnsafeExport, match="name"):
        check_name(name)
    with pytest.raises(UnsafeExport):
        render(ScriptPlan("d", [], {name: 1}, [], [], [], []))


@pytest.mark.parametrize("names", [["save_model"], ["strict_data"], ["output_dir"], ["help"],
                                   ["a", "a_"], ["Depth", "depth"], ["data_x"]])
def test_colliding_parameter_names_get_distinct_free_flags(names):
    flags = check_flags(names)
    values = list(flags.values())
    assert list(flags) == names and len(set(values)) == len(values)
    assert not {"--save-model", "--strict-data", "--output-dir", "--help", "-h"} & set(values)
    assert not any(f.startswith("--data-") for f in values)
    assert values[-1].startswith("--param-")


def test_a_parameter_named_like_a_data_option_is_exported_not_refused():
    flags = check_flags(["DATA_DIR", "data_dir", "param_data_dir", "depth"])
    assert flags == {"DATA_DIR": "--param-data-dir", "data_dir": "--param-data-dir-2",
                     "param_data_dir": "--param-param-data-dir", "depth": "--depth"}


_atoms = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
          | st.text() | st.binary() | st.complex_numbers(allow_nan=True))
_hashable = st.none() | st.booleans() | st.integers() | st.text() | st.binary()
_values = st.recursive(
    _atoms,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(_hashable, inner, max_size=4)
                   | st.frozensets(_hashable, max_size=4) | st.sets(_hashable, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_values, text=st.text(max_size=40))
def test_hypothesis_values_round_trip_through_the_parameters_block(value, text):
    script = render(_plan(value, text))
    (node,) = _params_nodes(script)
    assert _same(_evaluate(node.value), value)
    tree = ast.parse(script.source)
    assert ast.get_docstring(tree, clean=False) == f"Reproduce run of experiment {text}"


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=20))
def test_hypothesis_names_are_identifiers_or_rejected(name):
    try:
        check_name(name)
    except UnsafeExport:
        return
    script = render(ScriptPlan("d", [], {name: 1}, [], [], [], []))
    (node,) = _params_nodes(script)
    assert node.targets[0].id == name


# -- end to end: hostile names and values logged from a real tracked notebook ---------------
def test_hostile_logged_names_and_values_export_and_reproduce_safely(shell):
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --experiment \"x'; import os; os.system('touch PWNED') #\"")
    shell.run("import mlops_nb as mnb")
    shell.run(f"label = {HOSTILE_STRINGS[2]!r}\nweird = {{'k\\x00': [1e308, -0.0]}}")
    name = f"m'; __import__('os').system('{_SHELL}'); '"
    shell.run(f"mnb.log_param({name!r}, {HOSTILE_STRINGS[3]!r})\n"
              f"score = mnb.log_metric({name!r}, len(label) + len(weird))")
    shell.flush()
    reader = StoreReader(shell.tracker.home)
    (run,) = [cr for cr in reader.session_log(shell.tracker.session) if cr.is_run]
    out = export_run(run.id, Path.cwd() / "exp")
    src = (out / "train.py").read_text()
    script_params = [n for n in ast.parse(src).body if isinstance(n, ast.Assign)
                     and isinstance(n.targets[0], ast.Name) and n.targets[0].id in
                     ("label", "weird")]
    assert len(script_params) == 2 and all(is_constant_expr(n.value) for n in script_params)
    verdict = reproduce(out)
    assert verdict.ok, verdict.summary() + verdict.stderr_tail
    assert not list(Path.cwd().rglob(f"*{CANARY}*")) and not list(Path.cwd().rglob("PWNED"))


# -- output paths -----------------------------------------------------------------------------
@pytest.fixture
def one_run(tracked):
    tracked.run("score = 1.0")
    tracked.flush()
    reader = StoreReader(tracked.tracker.home)
    (run,) = [cr for cr in reader.session_log(tracked.tracker.session) if cr.is_run]
    return run


def test_paths_escaping_the_project_are_rejected(one_run, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    for bad in ("../x", "a/../../x", str(outside), "a\x00b", str(tmp_path / ".mlops_nb" / "x")):
        with pytest.raises(UnsafeOutputPath):
            export_run(one_run.id, bad)
    outside.mkdir()
    os.symlink(outside, tmp_path / "link")
    with pytest.raises(UnsafeOutputPath, match="outside the project"):
        export_run(one_run.id, "link/exp")
    assert list(outside.iterdir()) == []


def test_an_existing_export_is_not_overwritten_without_force(one_run, tmp_path):
    out = export_run(one_run.id, "exp")
    (out / "train.py").write_text("# my edits\n")
    with pytest.raises(ExportExists, match="--force"):
        export_run(one_run.id, "exp")
    assert (out / "train.py").read_text() == "# my edits\n"
    export_run(one_run.id, "exp", force=True)
    assert "Reproduce run" in (out / "train.py").read_text()
    victim = tmp_path.parent / f"{tmp_path.name}-victim.txt"
    victim.write_text("keep")
    (out / "train.py").unlink()
    os.symlink(victim, out / "train.py")
    with pytest.raises(UnsafeOutputPath, match="symlink"):
        export_run(one_run.id, "exp", force=True)
    assert victim.read_text() == "keep"
