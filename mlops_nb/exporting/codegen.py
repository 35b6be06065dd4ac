"""train.py from a slice: AST nodes for everything recorded, checked with ast.parse.

The script's layout: docstring (what it reproduces), its own imports, the hoisted imports of
the slice, the parameters block (literals only, each a command-line option), the fixed helper
prelude, then the slice's cells in execution order with RNG restores before the cells that had
them, then the metrics written to metrics.json and stdout. Recorded names and values enter only
as `ast.Constant`/`ast.Name` nodes built by `literals`, so no recorded text becomes code.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnsafeExport
from .literals import RESERVED_PREFIX, check_flags, check_name, literal_to_ast
from .prelude import PRELUDE

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


@dataclass
class CellCode:
    seq: int
    execution_count: int | None
    run_id: str
    body: list[ast.stmt]
    rng_before: dict[str, str] = field(default_factory=dict)
    errored: bool = False
    figures: bool = False


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
    autolog_source: str | None = None  # embedded when the slice uses scikit-learn


@dataclass
class Script:
    source: str
    params_lines: tuple[int, int]  # first and last line of the parameters block (1-based)
    flags: dict[str, str]


def _name(id_: str, ctx: ast.expr_context | None = None) -> ast.Name:
    return ast.Name(id_, ctx or ast.Load())


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign([_name(name, ast.Store())], value)


def _call(func: str, *args: ast.expr) -> ast.Expr:
    return ast.Expr(ast.Call(_name(func), list(args), []))


def _strings(items: list[str]) -> ast.Tuple:
    return ast.Tuple([ast.Constant(str(i)) for i in items], ast.Load())


def _src(nodes: list[ast.stmt]) -> str:
    if not nodes:
        return ""
    mod = ast.fix_missing_locations(ast.Module(nodes, []))
    return ast.unparse(mod) + "\n"


def _comment(cell: CellCode) -> str:
    """A separator made only of an int and a hex id: nothing recorded is pasted as text."""
    count = cell.execution_count if isinstance(cell.execution_count, int) else None
    run = cell.run_id if _HEX.match(cell.run_id or "") else "?"
    label = f"In [{count}]" if count is not None else "cell"
    extra = "  (raised in the notebook: replayed up to the error)" if cell.errored else ""
    if not cell.body:
        extra += "  (nothing left here: its imports and literals are above)"
    return f"# ---- {label}  cell run {run[:12]}  seq {int(cell.seq)}{extra}\n"


def render(plan: ScriptPlan) -> Script:
    """The script's text; raises UnsafeExport if a name is unusable or the result won't parse."""
    flags = check_flags(list(plan.params))
    for d in plan.data:
        if not re.match(r"^--data-[a-z0-9][a-z0-9-]*$", d.flag):
            raise UnsafeExport(f"internal: bad data flag {d.flag!r}")
    for name in plan.params:
        check_name(name)

    parts: list[str] = []
    head: list[ast.stmt] = [ast.Expr(ast.Constant(plan.docstring))]
    head += plan.future
    head += [
        ast.Import([ast.alias("argparse", "_mnb_argparse")]),
        ast.Import([ast.alias("os")]),
        ast.Import([ast.alias("os", "_mnb_os")]),
        ast.Import([ast.alias("sys", "_mnb_sys")]),
    ]
    if plan.lib_dir:  # before the hoisted imports: `from utils import prep` finds the copy
        here = ast.Call(ast.Attribute(ast.Attribute(_name("_mnb_os"), "path", ast.Load()),
                                      "dirname", ast.Load()),
                        [ast.Call(ast.Attribute(ast.Attribute(_name("_mnb_os"), "path",
                                                              ast.Load()), "abspath",
                                                ast.Load()), [_name("__file__")], [])], [])
        lib = ast.Call(ast.Attribute(ast.Attribute(_name("_mnb_os"), "path", ast.Load()),
                                     "join", ast.Load()), [here, ast.Constant(plan.lib_dir)],
                       [])
        head.append(ast.Expr(ast.Call(ast.Attribute(ast.Attribute(
            _name("_mnb_sys"), "path", ast.Load()), "insert", ast.Load()),
            [ast.Constant(0), lib], [])))
    head.append(ast.Expr(ast.Call(
        ast.Attribute(ast.Attribute(_name("os"), "environ", ast.Load()), "setdefault",
                      ast.Load()), [ast.Constant("MPLBACKEND"), ast.Constant("Agg")], [])))
    parts.append(_src(head))
    if plan.hoisted:
        parts.append("\n" + _src(plan.hoisted))
    first_flag = next(iter(flags.values()), "--name")
    parts.append("\n" + PARAMS_BEGIN.format(flag=first_flag) + "\n")
    params_src = _src([_assign(n, literal_to_ast(v)) for n, v in plan.params.items()])
    before = "".join(parts)
    start = before.count("\n") + 1
    parts.append(params_src)
    end = start + params_src.count("\n") - 1
    parts.append(PARAMS_END + "\n")

    config: list[ast.stmt] = [
        _assign("_mnb_PARAMETERS", ast.Dict([ast.Constant(n) for n in flags],
                                            [ast.Constant(f) for f in flags.values()])),
        _assign("_mnb_DATA_FILES", ast.Dict(
            [ast.Constant(d.key) for d in plan.data],
            [ast.Tuple([ast.Constant(d.flag), ast.Constant(d.default), ast.Constant(d.digest),
                        ast.Constant(d.size), ast.Constant(d.recorded or d.default),
                        _strings(d.given or [d.key]), _strings(d.rel)], ast.Load())
             for d in plan.data])),
        _assign("_mnb_READERS", _strings(plan.readers)),
        _assign("_mnb_METRICS", ast.List([ast.Constant(m) for m in plan.metrics], ast.Load())),
        _assign("_mnb_MODELS", ast.List([ast.Constant(m) for m in plan.models], ast.Load())),
        _assign("_mnb_RNG_FILE", ast.Constant(plan.rng_file)),
        _assign("_mnb_SECRETS", ast.List([ast.Constant(s) for s in plan.secrets], ast.Load())),
        _assign("_mnb_AUTOLOG_SOURCE", ast.Constant(plan.autolog_source)),
    ]
    parts.append("\n" + SUPPORT_BEGIN + "\n" + _src(config))
    parts.append(PRELUDE.lstrip("\n"))
    setup = [
        _assign("_mnb_ARGS", ast.Call(_name("_mnb_parse_args"),
                                      [ast.Call(_name("globals"), [], [])], [])),
        _assign("_mnb_DATA", ast.Call(_name("_mnb_data_paths"), [_name("_mnb_ARGS")], [])),
    ]
    parts.append("\n" + _src(setup) + SUPPORT_END + "\n")
    for cell in plan.cells:
        body: list[ast.stmt] = [
            _call("_mnb_restore_rng", ast.Constant(gen), ast.Constant(digest))
            for gen, digest in sorted(cell.rng_before.items())
        ]
        code = list(cell.body) or []
        if cell.errored and code:
            handler = ast.ExceptHandler(_name("Exception"), None, [ast.Pass()])
            code = [ast.Try(code, [handler], [], [])]
        if plan.autolog_source is not None:
            begin = ast.Call(_name("_mnb_autolog_begin"), [ast.Call(_name("globals"), [], [])],
                             [])
            code = [ast.Expr(begin), *code, _call("_mnb_autolog_end")]
        body += code
        if cell.figures:
            body.append(_call("_mnb_save_figures"))
        parts.append("\n" + _comment(cell) + (_src(body) or "pass\n"))
    parts.append("\n" + _src([_call("_mnb_save_figures"),
                              _call("_mnb_finish", ast.Call(_name("globals"), [], []),
                                    _name("_mnb_ARGS"))]))
    source = "".join(parts)
    try:  # compile, not only parse: also catches `return`/`break` outside their blocks
        compile(source, "train.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # never write a script that does not compile
        msg = getattr(exc, "msg", str(exc))
        raise UnsafeExport(f"the generated script does not compile ({msg}, line "
                           f"{getattr(exc, 'lineno', '?')}); nothing was written") from exc
    return Script(source, (start, end), flags)


def check_reserved(bodies: list[list[ast.stmt]]) -> None:
    """The notebook's own code may not use the script's `_mnb_` names."""
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
            if ident and ident.startswith(RESERVED_PREFIX):
                raise UnsafeExport(
                    f"the notebook uses the name {ident!r}, reserved for the generated script "
                    f"(prefix {RESERVED_PREFIX!r}); rename it"
                )
