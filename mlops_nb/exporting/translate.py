"""IPython-only syntax into plain Python, on the AST of the code IPython actually ran.

IPython turns `%time x = f()` into `get_ipython().run_line_magic('time', 'x = f()')`; we match
those calls and replace them: `%time`/`%%time`/`%%capture` are unwrapped, display and editor
magics dropped, `%env` becomes `os.environ`, `%cd` becomes `os.chdir`, `%run script.py` the
support's runner, `!pip install` goes to requirements.txt. Anything else is refused with the
line it came from: a script that silently skips a magic cannot claim to reproduce the
notebook.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field

from ..varexpand import expansion
from .source import remember

DROPPED_LINE_MAGICS = frozenset({
    "matplotlib", "config", "autoreload", "aimport", "load_ext", "reload_ext", "unload_ext",
    "track", "who", "whos", "pwd", "history", "precision", "pprint", "xmode", "colors",
    "lsmagic", "magic", "who_ls", "timeit_result",
})
UNWRAPPED_LINE_MAGICS = frozenset({"time"})
UNWRAPPED_CELL_MAGICS = frozenset({"time", "capture", "track"})
_REQ_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],<>=!~ ]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DISPLAY_METHODS = frozenset({"head", "tail", "describe", "info"})


@dataclass
class Translated:
    body: list[ast.stmt] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    uses_os: bool = False


def _magic(node: ast.AST) -> tuple[str, str, list[str]] | None:
    """('line'|'cell'|'system'|'getoutput', name, string args) of a get_ipython() call."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython"):
        return None
    args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None
            for a in node.args]
    if any(a is None for a in args):
        return ("other", func.attr, [])
    texts = [a for a in args if a is not None]
    if func.attr == "run_line_magic" and texts:
        return ("line", texts[0], texts[1:])
    if func.attr == "run_cell_magic" and texts:
        return ("cell", texts[0], texts[1:])
    if func.attr == "system" and texts:
        return ("system", "!", texts)
    return ("other", func.attr, texts)


def _line_of(raw: str | None, lineno: int) -> str:
    if raw:
        lines = raw.splitlines()
        if 0 < lineno <= len(lines):
            return lines[lineno - 1].strip()
    return f"line {lineno}"


def _pip_requirements(cmd: str) -> list[str] | None:
    """Requirements from `pip install ...` (also `python -m pip`, `%pip`); None if not pip."""
    try:
        words = shlex.split(cmd)
    except ValueError:
        return None
    while words and words[0] in ("python", "python3", "-m", "sys.executable"):
        words = words[1:]
    if len(words) < 2 or words[0] not in ("pip", "pip3") or words[1] != "install":
        return None
    reqs: list[str] = []
    skip = False
    for w in words[2:]:
        if skip:
            skip = False
            continue
        if w in ("-r", "-c", "-i", "--index-url", "--extra-index-url", "-e", "-t", "--target"):
            return None  # files, indexes, editable installs: not a pinned requirement
        if w.startswith("-"):
            continue
        if not _REQ_RE.match(w):
            return None
        reqs.append(w)
    return reqs


_INSTALLERS = frozenset({"pip", "pip3", "conda", "mamba", "micromamba", "apt", "apt-get",
                         "yum", "dnf", "brew", "npm", "uv", "poetry"})


def _installs(cmd: str) -> bool:
    """A command that installs software (`pip install -r reqs.txt`, `conda install`...): a
    script re-run to reproduce a run must not change the machine it runs on."""
    words = re.findall(r"[\w.+-]+", cmd)
    return any(w in _INSTALLERS or w.endswith(("/pip", "/pip3")) for w in words[:3]) or \
        "-m pip" in cmd


def _parse(code: str) -> list[ast.stmt]:
    return ast.parse(code).body


def _ipython_body(text: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(text)


def _os_call(attr: str, args: list[ast.expr]) -> ast.stmt:
    return ast.Expr(ast.Call(ast.Attribute(ast.Name("os", ast.Load()), attr, ast.Load()),
                             args, []))


def _env(arg: str) -> ast.stmt | None:
    arg = arg.strip()
    if "=" in arg:
        name, _, value = arg.partition("=")
    else:
        name, _, value = arg.partition(" ")
        if not value:
            return None  # `%env` or `%env NAME` only shows
    name, value = name.strip(), value.strip()
    if not _ENV_NAME_RE.match(name):
        raise ValueError(f"environment variable name {name!r}")
    target = ast.Subscript(ast.Attribute(ast.Name("os", ast.Load()), "environ", ast.Load()),
                           ast.Constant(name), ast.Store())
    expanded = expansion(value)  # `$var`, `{expr}`: what IPython set, as an f-string
    return ast.Assign([target], expanded if expanded is not None else ast.Constant(value))


def _cd(arg: str) -> list[ast.stmt]:
    arg = arg.strip()
    if arg.startswith("-b ") or arg in ("-", "-q") or arg.startswith("-"):
        raise ValueError("%cd options and bookmarks")
    try:
        words = shlex.split(arg)
    except ValueError as exc:
        raise ValueError(str(exc)) from exc
    if len(words) > 1:
        raise ValueError("%cd with several words")
    if not words:
        path: ast.expr = ast.Call(ast.Attribute(ast.Attribute(
            ast.Name("os", ast.Load()), "path", ast.Load()), "expanduser", ast.Load()),
            [ast.Constant("~")], [])
        return [_os_call("chdir", [path])]
    # Replayed in a fresh folder: a relative folder the notebook had may not exist yet.
    makedirs = ast.Expr(ast.Call(ast.Attribute(ast.Name("os", ast.Load()), "makedirs",
                                               ast.Load()),
                                 [ast.Constant(words[0])],
                                 [ast.keyword("exist_ok", ast.Constant(True))]))
    return [makedirs, _os_call("chdir", [ast.Constant(words[0])])]


# The one support name the translation itself writes into the notebook's code.
CAPTURE_HELPER = "capture"


def _capture(line: str, body: list[ast.stmt]) -> ast.stmt:
    """`%%capture [--no-stdout] [--no-stderr] [--no-display] out` -> `with _mnb_capture(...)
    as out:` so later cells that parse `out.stdout` get the same text."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ValueError(f"%%capture arguments: {exc}") from exc
    names = [w for w in words if not w.startswith("-")]
    unknown = [w for w in words if w.startswith("-")
               and w not in ("--no-stdout", "--no-stderr", "--no-display")]
    if unknown or len(names) > 1 or (names and not names[0].isidentifier()):
        raise ValueError(f"%%capture {line.strip()}")
    from .codegen import support_attr

    func = support_attr(CAPTURE_HELPER)
    call = ast.Call(func, [], [ast.keyword("stdout", ast.Constant("--no-stdout" not in words)),
                               ast.keyword("stderr", ast.Constant("--no-stderr" not in words))])
    target = ast.Name(names[0], ast.Store()) if names else None
    return ast.With([ast.withitem(call, target)], body or [ast.Pass()])


# `!cmd` and `files = !cmd` in the export: the support runs the command through the shell, as
# IPython's `system` and `getoutput` do (its exit status no error; the output as lines).
SHELL_HELPER = "shell"
GETOUTPUT_HELPER = "getoutput"


def _shell_call(helper: str, cmd: str) -> ast.Call:
    """`_mnb.shell(cmd)`, the command expanded as IPython expands it (`!ls $DATA/{n}` reads
    `DATA` and `n` when it runs): an f-string where it expands."""
    from .codegen import support_attr

    expanded = expansion(cmd)
    return ast.Call(support_attr(helper), [expanded if expanded is not None
                                           else ast.Constant(cmd)], [])


class _Getoutput(ast.NodeTransformer):
    """`files = !ls data/` is `files = get_ipython().getoutput('ls data/')`: the call
    sits inside other code, so it is replaced where it stands."""

    def __init__(self, raw: str | None, out: Translated) -> None:
        self.raw, self.out = raw, out

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        magic = _magic(node)
        if magic is None or magic[:2] != ("other", "getoutput") or len(magic[2]) != 1:
            return node
        where = _line_of(self.raw, getattr(node, "lineno", 0))
        self.out.notes.append(f"{where}: runs the shell command as the notebook did")
        return ast.copy_location(_shell_call(GETOUTPUT_HELPER, magic[2][0]), node)


# `%run helpers.py` in the export: the support's runner, with the script read through the
# data files (its hash checked, its path redirected like any file the run read).
RUN_HELPER = "run_script"


def _run_script(line: str) -> ast.stmt:
    """`%run [-i] script.py args` -> `_mnb.run_script('script.py', [args],
    interactive=...)`, which runs it as IPython does."""
    from ..run_line import parse_run_line
    from .codegen import support_attr

    run = parse_run_line(line)
    call = ast.Call(support_attr(RUN_HELPER),
                    [ast.Constant(run.script), ast.List([ast.Constant(a) for a in run.argv],
                                                        ast.Load())],
                    [ast.keyword("interactive", ast.Constant(run.interactive))])
    return ast.Expr(call)


def is_display_only(stmt: ast.stmt) -> bool:
    """A trailing expression the notebook only displayed: `df.shape`, `df.head()`, `display(x)`."""
    if not isinstance(stmt, ast.Expr):
        return False
    value = stmt.value
    if isinstance(value, ast.Call):
        func = value.func
        if isinstance(func, ast.Name) and func.id == "display":
            return True
        if isinstance(func, ast.Attribute) and func.attr in DISPLAY_METHODS:
            return not any(isinstance(n, ast.Call) for n in ast.walk(func.value))
        return False
    if isinstance(value, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
        return False
    return not any(isinstance(n, (ast.Call, ast.NamedExpr)) for n in ast.walk(value))


def translate(code: str, raw: str | None = None, *, drop_display: bool = True) -> Translated:
    """Plain Python statements for one cell's transformed code; refusals say which line."""
    out = Translated()
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        out.refused.append(f"does not parse as Python: {exc.msg} (line {exc.lineno})")
        return out
    remember(tree.body, code)  # the notebook's own text, for statements left as they were
    out.body = _translate_body(tree.body, raw, out)
    if "getoutput" in code:
        getoutput = _Getoutput(raw, out)
        out.body = [ast.fix_missing_locations(getoutput.visit(stmt)) for stmt in out.body]
    if drop_display and out.body and is_display_only(out.body[-1]):
        out.body.pop()
        out.notes.append("dropped the trailing display expression")
    for node in _top_level_awaits(out.body):
        out.refused.append(f"{_line_of(raw, getattr(node, 'lineno', 0))}: top-level await "
                           "(IPython's autoawait) has no plain-script translation")
        break
    # Any get_ipython() left (inside a function, an argument...) has no plain equivalent.
    for node in ast.walk(ast.Module(out.body, [])):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "get_ipython"):
            out.refused.append(
                f"{_line_of(raw, getattr(node, 'lineno', 0))}: IPython call inside other code")
            break
    return out


def _top_level_awaits(body: list[ast.stmt]) -> list[ast.AST]:
    found: list[ast.AST] = []
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.AsyncFunctionDef, ast.FunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _translate_body(body: list[ast.stmt], raw: str | None, out: Translated) -> list[ast.stmt]:
    result: list[ast.stmt] = []
    for stmt in body:
        magic = _magic(stmt.value) if isinstance(stmt, ast.Expr) else None
        if magic is None:
            result.append(stmt)
            continue
        kind, name, args = magic
        where = _line_of(raw, stmt.lineno)
        try:
            produced = _translate_magic(kind, name, args, raw, out, where)
            result.extend(ast.fix_missing_locations(ast.copy_location(n, stmt))
                          for n in produced)
        except (ValueError, SyntaxError) as exc:
            out.refused.append(f"{where}: cannot translate ({exc})")
    return result


def _translate_magic(kind: str, name: str, args: list[str], raw: str | None, out: Translated,
                     where: str) -> list[ast.stmt]:
    if kind == "line":
        arg = args[0] if args else ""
        if name in UNWRAPPED_LINE_MAGICS:
            return _translate_body(_parse(arg), None, out) if arg.strip() else []
        if name in DROPPED_LINE_MAGICS:
            if name in ("load_ext", "reload_ext") and arg.strip() not in ("autoreload",
                                                                          "mlops_nb"):
                out.refused.append(f"{where}: extension {arg.strip()!r} may change how code runs")
            return []
        if name == "env":
            stmt = _env(arg)
            if stmt is None:
                return []
            out.uses_os = True
            return [stmt]
        if name == "cd":
            out.uses_os = True
            return _cd(arg)
        if name == "run":
            return [_run_script(arg)]
        if name == "pip":
            reqs = _pip_requirements("pip " + arg)
            if reqs is not None:
                out.requirements.extend(reqs)
                return []
        out.refused.append(f"{where}: magic %{name} has no plain-Python translation")
        return []
    if kind == "cell":
        if name == "capture" and len(args) == 2 and args[0].strip():
            return [_capture(args[0], _translate_body(_parse(_ipython_body(args[1])), args[1],
                                                      out))]
        if name in UNWRAPPED_CELL_MAGICS and len(args) == 2:
            return _translate_body(_parse(_ipython_body(args[1])), args[1], out)
        out.refused.append(f"{where}: cell magic %%{name} has no plain-Python translation")
        return []
    if kind == "system":
        reqs = _pip_requirements(args[0]) if args else None
        if reqs is not None:
            out.requirements.extend(reqs)
            return []
        if not args or _installs(args[0]):
            out.refused.append(f"{where}: shell command installs software, which a script "
                               "must not do: give the packages as requirements "
                               "(`!pip install name==version`)")
            return []
        out.notes.append(f"{where}: runs the shell command as the notebook did")
        return [ast.Expr(_shell_call(SHELL_HELPER, args[0]))]
    out.refused.append(f"{where}: IPython call {name}() has no plain-Python translation")
    return []
