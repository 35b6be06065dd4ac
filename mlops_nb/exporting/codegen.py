"""train.py from a slice: the notebook's own code, its parameters, and two support calls.

The script's layout: a docstring (what it reproduces, from which notebook), the import of the
support module beside it (`_mlops_support.py`: command line, data checks, RNG restores,
metrics output), the notebook's imports of libraries, the parameters block (literals only,
each a command-line option), `_mnb.start()`, the slice's cells in execution order with a
one-line RNG restore only before cells that draw random numbers, and `_mnb.finish()`. The
notebook's own modules (copied to `lib/`) are imported in their cells, after `_mnb.start()`
has redirected the data paths: a module may read files as it loads.
The cells keep the notebook's own text where the transformed tree allows it (`source`);
recorded values enter only as AST constants built by `literals`, so no recorded text becomes
code, and the whole script is compiled before anything is written.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from ..capture.rng import OBJ_PREFIX
from ..errors import UnsafeExport
from .literals import RESERVED_NAME, RESERVED_PREFIX, check_flags, check_name, literal_to_ast
from .source import render_body, statement_text

SUPPORT_MODULE = "_mlops_support"
SUPPORT_FILE = SUPPORT_MODULE + ".py"
AUTOLOG_FILE = "_mlops_autolog.py"
# The lines a reader sees of the support machinery: the export folder first on sys.path (also
# under runpy or %run), then the support module (a traceback shows the comment when train.py
# was copied without its folder).
SUPPORT_HEAD = (
    "import os\nimport sys\n\n"
    "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the export folder\n"
    f"import {SUPPORT_MODULE} as {RESERVED_NAME}  # noqa: E402 - beside train.py: copy the "
    "whole folder\n")
_HEAD_IMPORTS = frozenset({"import os", "import sys"})
PARAMS_HEADER = "# Parameters: each one is an option, e.g. python train.py {flag} VALUE (--help)"
_HEX = re.compile(r"^[0-9a-f]{1,64}$")
PARAMS_BEGIN = "# ---- parameters: literals; override any from the command line, e.g. {flag} VALUE"
PARAMS_END = "# ---- end of parameters"
# The plumbing between the parameters and the notebook's cells, fenced so a reader can skip it.
SUPPORT_BEGIN = ("# ==== mlops-nb support: command line, data checks, RNG, metrics output "
                 "(fixed code;\n# ==== recorded names and paths only as constants). The "
                 "notebook's cells follow the next fence.")
SUPPORT_END = "# ==== end of mlops-nb support; the notebook's cells, in the order they ran:"


@dataclass
class DataFile:
    key: str  # the path as the notebook's code first gave it
    flag: str
    default: str  # relative to the export folder when possible, else absolute
    digest: str | None
    size: int | None
    recorded: str = ""  # the absolute path the run read
    given: list[str] = field(default_factory=list)  # every path string the code passed
    rel: list[str] = field(default_factory=list)  # ...relative to the cwd at the time
    folder: bool = False  # a folder read as one data set (a partitioned parquet dataset)


@dataclass
class WrittenFile:
    """A file the slice wrote (and may read back): the script writes it under its output
    folder instead, `written/<to>`, never where the notebook wrote it."""

    recorded: str  # the absolute path the run wrote
    to: str  # where under `written/`, '/'-separated
    given: list[str] = field(default_factory=list)  # the path strings the code passed
    rel: list[str] = field(default_factory=list)  # ...relative to the notebook's folder


@dataclass
class CellCode:
    seq: int
    execution_count: int | None
    run_id: str
    body: list[ast.stmt]
    rng_before: dict[str, str] = field(default_factory=dict)
    errored: bool = False
    figures: bool = False
    autolog: bool = False  # the run's own cell, when some metric comes from autolog
    callback: bool = False  # an `interact` slider's call, made outside any cell
    repeat: int = 1  # the cell ran this many times in a row: replayed as a loop
    last_count: int | None = None  # execution count of the last of those runs
    span: int = 1  # with repeat: cells the loop holds from this one (0: inside an earlier's)


@dataclass
class ScriptPlan:
    docstring: str
    hoisted: list[ast.stmt]
    params: dict[str, Any]
    data: list[DataFile]
    cells: list[CellCode]
    metrics: list[str]
    models: list[str]
    rng_file: str = "rng_states.json"
    future: list[ast.stmt] = field(default_factory=list)
    readers: list[str] = field(default_factory=list)  # libraries whose readers redirect
    lib_dir: str | None = None  # the notebook's own modules, put first on sys.path
    secrets: list[str] = field(default_factory=list)  # env variables for redacted values
    autolog: bool = False  # the support module needs _mlops_autolog.py
    param_text: dict[str, str] = field(default_factory=dict)  # name -> the notebook's line
    rng: bool = False  # restores RNG states (rng_states.json must be beside it)
    cross_validated: list[str] = field(default_factory=list)  # what the run only CV'd
    written: list[WrittenFile] = field(default_factory=list)  # files the slice wrote


@dataclass
class Script:
    source: str
    params_lines: tuple[int, int]  # first and last line of the parameters block (1-based)
    flags: dict[str, str]
    config: dict[str, Any] = field(default_factory=dict)  # run.json "script": read by support


def rng_restore(gen: str, digest: str) -> ast.Expr:
    """`_mnb.restore_rng('numpy', digest)` for a global generator; for a generator object
    (`obj:rng`) the object itself is passed: `_mnb.restore_rng('rng', digest, rng)`."""
    if gen.startswith(OBJ_PREFIX):
        name = gen[len(OBJ_PREFIX):]
        return support_call("restore_rng", ast.Constant(name), ast.Constant(digest),
                            ast.Name(name, ast.Load()))
    return support_call("restore_rng", ast.Constant(gen), ast.Constant(digest))


def support_call(func: str, *args: ast.expr) -> ast.Expr:
    """`_mnb.func(*args)`: a call into the support module, marked as the export's own."""
    return ast.Expr(ast.Call(support_attr(func), list(args), []))


def support_attr(name: str) -> ast.Attribute:
    base = ast.Name(RESERVED_NAME, ast.Load())
    base._mnb_generated = True  # type: ignore[attr-defined]  # exempt from check_reserved
    return ast.Attribute(base, name, ast.Load())


def _src(nodes: list[ast.stmt]) -> str:
    if not nodes:
        return ""
    mod = ast.fix_missing_locations(ast.Module(nodes, []))
    return ast.unparse(mod) + "\n"


def _label(cell: CellCode) -> str:
    """A separator made only of an int: nothing recorded is pasted as text."""
    count = cell.execution_count if isinstance(cell.execution_count, int) else None
    label = f"# In [{count}]" if count is not None else f"# cell (seq {int(cell.seq)})"
    if cell.callback:
        label = f"# a widget slider moved after its cell ran (seq {int(cell.seq)})"
    if cell.errored:
        label += "  (raised in the notebook: replayed up to the error)"
    if cell.repeat > 1 and cell.span == 1:
        last = cell.last_count if isinstance(cell.last_count, int) else None
        upto = f" to In [{last}]" if last is not None and count is not None else ""
        label += f"{upto}: the same cell, run {int(cell.repeat):,} times in a row"
    elif cell.repeat > 1 and cell.span > 1:
        label += (f" and the {int(cell.span) - 1} cell(s) after it: run {int(cell.repeat):,} "
                  "times in a row")
    return label + "\n"


def _looped(parts: list[tuple[str, list[ast.stmt]]], times: int) -> str:
    """`for _mnb_rerun in range(times):` over the cells' own text (each after its label),
    indented; unparsed when indenting would change what it means (a string spanning
    lines)."""
    texts = [(label, render_body(code)) for label, code in parts]
    code = [stmt for _label, body in parts for stmt in body]
    if not code:
        return ""
    body = "".join((label if len(parts) > 1 else "") + text for label, text in texts)
    loop = ast.For(ast.Name(f"{RESERVED_PREFIX}rerun", ast.Store()),
                   ast.Call(ast.Name("range", ast.Load()), [ast.Constant(int(times))], []),
                   code, [])
    text = f"for {RESERVED_PREFIX}rerun in range({int(times)}):\n" + textwrap.indent(body, "    ")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        tree = None
    if tree is None or len(tree.body) != 1 or ast.dump(tree.body[0]) != ast.dump(loop):
        return _src([loop])
    return text


def _param_line(name: str, value: Any, text: str | None) -> str:
    """`name = <literal>`: the notebook's own line when it states exactly the recorded value
    (keeps `50_001` and its comment), else the value written from its type."""
    node = ast.Assign([ast.Name(name, ast.Store())], literal_to_ast(value))
    generated = _src([node])
    if text is not None:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            tree = None
        if (tree is not None and len(tree.body) == 1
                and ast.dump(tree.body[0]) == ast.dump(ast.parse(generated).body[0])):
            return text.rstrip("\n") + "\n"
    return generated


def render(plan: ScriptPlan) -> Script:
    """The script's text; raises UnsafeExport if a name is unusable or the result won't parse."""
    flags = check_flags(list(plan.params))
    for d in plan.data:
        if not re.match(r"^--data-[a-z0-9][a-z0-9-]*$", d.flag):
            raise UnsafeExport(f"internal: bad data flag {d.flag!r}")
    for name in plan.params:
        check_name(name)

    parts: list[str] = [_src([ast.Expr(ast.Constant(plan.docstring)), *plan.future])]
    parts.append(SUPPORT_HEAD)
    for stmt in plan.hoisted:
        text = statement_text(stmt) or _src([stmt]).rstrip("\n")
        if text.split("#")[0].strip() not in _HEAD_IMPORTS:
            parts.append(text + "\n")
    start = end = 0
    if plan.params:
        parts.append("\n" + PARAMS_HEADER.format(flag=next(iter(flags.values()))) + "\n")
        start = "".join(parts).count("\n") + 1
        params_src = "".join(_param_line(n, v, plan.param_text.get(n))
                             for n, v in plan.params.items())
        parts.append(params_src)
        end = start + params_src.count("\n") - 1
    parts.append(_src([support_call("start")]))
    cells = plan.cells
    for n, cell in enumerate(cells):
        if cell.repeat > 1 and cell.span == 0:
            continue  # inside the loop an earlier cell opened
        head: list[ast.stmt] = [rng_restore(gen, d) for gen, d in sorted(cell.rng_before.items())]
        if cell.autolog:
            head.append(support_call("autolog_begin"))
        code = list(cell.body)
        if cell.errored and code:
            handler = ast.ExceptHandler(ast.Name("Exception", ast.Load()), None, [ast.Pass()])
            code = [ast.Try(code, [handler], [], [])]
        tail = [support_call("save_figures")] if cell.figures else []
        if cell.repeat > 1:
            block = [cell, *cells[n + 1:n + max(cell.span, 1)]]
            rendered = _looped([(_label(c) if c is not cell else "", list(c.body))
                                for c in block], cell.repeat)
        else:
            rendered = render_body(code)
        text = _src(head) + rendered + _src(tail)
        if not text.strip():
            continue  # nothing of this cell is left here (its imports or literals are above)
        parts.append("\n" + _label(cell) + text)
    parts.append("\n" + _src([support_call("finish")]))
    source = "".join(parts)
    try:  # compile, not only parse: also catches `return`/`break` outside their blocks
        compile(source, "train.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # never write a script that does not compile
        msg = getattr(exc, "msg", str(exc))
        raise UnsafeExport(f"the generated script does not compile ({msg}, line "
                           f"{getattr(exc, 'lineno', '?')}); nothing was written") from exc
    return Script(source, (start, end), flags, _config(plan, flags))


def _config(plan: ScriptPlan, flags: dict[str, str]) -> dict[str, Any]:
    """What the support module reads from run.json: data, never code."""
    return {
        "flags": flags,
        "data_files": [{"key": d.key, "flag": d.flag, "default": d.default, "digest": d.digest,
                        "size": d.size, "recorded": d.recorded or d.default,
                        "given": list(d.given or [d.key]), "rel": list(d.rel),
                        **({"folder": True} if d.folder else {})}
                       for d in plan.data],
        "written": [{"recorded": w.recorded, "to": w.to, "given": list(w.given),
                     "rel": list(w.rel)} for w in plan.written],
        "readers": list(plan.readers),
        "metrics": list(plan.metrics),
        "models": list(plan.models),
        "cross_validated": list(plan.cross_validated),
        "secrets": list(plan.secrets),
        "rng": plan.rng,
        "autolog": plan.autolog,
    }


def check_reserved(bodies: list[list[ast.stmt]]) -> None:
    """The notebook's own code may not use the script's `_mnb` names."""
    for body in bodies:
        for node in ast.walk(ast.Module(body, [])):
            ident = None
            if isinstance(node, ast.Name):
                ident = None if getattr(node, "_mnb_generated", False) else node.id
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                ident = node.name
            elif isinstance(node, ast.alias):
                ident = node.asname or node.name
            elif isinstance(node, ast.Attribute):
                ident = node.attr if node.attr.startswith(RESERVED_PREFIX) else None
            if ident and (ident == RESERVED_NAME or ident.startswith(RESERVED_PREFIX)):
                raise UnsafeExport(
                    f"the notebook uses the name {ident!r}, reserved for the generated script "
                    f"({RESERVED_NAME!r} and the prefix {RESERVED_PREFIX!r}); rename it"
                )
