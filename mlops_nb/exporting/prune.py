"""What a script does not need, left out: overwritten literals, discarded cross-validations,
statements that only look at data, unused imports, credentials nothing reads. Each rule keeps
anything the metric could depend on (a read, a random draw, an import run for its effect), so
reproduction stays exact.
"""

from __future__ import annotations

import ast
from typing import Any

from .. import redact
from .literals import RESERVED_NAME, literal_value
from .slicing import drawn_after
from .translate import RUN_HELPER


def drop_discarded_results(b: Any) -> None:
    """Cross-validations whose scores nothing downstream reads are left out (before the run's
    own cell only, and only where the cell drew no random numbers: the metric cannot depend
    on them). Their printed output is all they did."""
    sl = b.sl
    drawn = sl.drawn or drawn_after(b.log)
    metrics = set(b.target.metrics)
    later_names: list[set[str]] = []
    seen: set[str] = set()
    for body in reversed(b.bodies):  # names read from each cell on, anywhere in it
        for stmt in body:
            seen |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)
                     and isinstance(n.ctx, ast.Load)}
        later_names.append(set(seen))
    later_names.reverse()
    for i, cell in enumerate(sl.cells[:-1]):
        if any(drawn.get(m.run.seq) != set() for m in cell.members):
            continue  # drew random numbers (or unknown): everything stays
        after = later_names[i + 1]
        kept = []
        for j, stmt in enumerate(b.bodies[i]):
            bound = _discarded_cv(stmt)
            used = {n.id for s2 in b.bodies[i][j + 1:] for n in ast.walk(s2)
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            if bound is not None and not (bound & (after | used | metrics)):
                continue
            kept.append(stmt)
        b.bodies[i] = kept


# Looking at data: what these return is shown, never kept, and computing it changes nothing
# (a strict subset of effects.py's non-mutating pandas/numpy methods: no `sample`, which
# draws, no `apply`/`pipe`, which run user code, no writers or plots).
_LOOK_METHODS = frozenset({
    "head", "tail", "describe", "info", "nunique", "value_counts", "isna", "isnull",
    "notna", "notnull", "sum", "mean", "median", "std", "var", "min", "max", "count",
    "corr", "cov", "unique", "memory_usage", "duplicated", "any", "all", "round",
    "sort_values", "sort_index", "to_string", "tolist", "to_list", "select_dtypes",
})
_LOOK_ATTRS = frozenset({"shape", "dtypes", "dtype", "columns", "index", "size", "ndim",
                         "T", "values", "iloc", "loc", "str", "dt"})
_LOOK_BUILTINS = frozenset({"len", "type", "repr", "str"})


def drop_looks_at_data(b: Any) -> None:
    """Top-level statements that only look at data (`df.head()`, `df.describe()`,
    `print(df.shape)`, a bare `df`) are left out: a script shows nothing, and their value is
    discarded. Provably so only where the receiver was recorded as data (a DataFrame, Series
    or array) and the cell's recorded mutations (checked against effects.py's annotations at
    run time) leave it unchanged; arguments must be literals. Anything else stays."""
    for i, cell in enumerate(b.sl.cells):
        known = set(cell.run.data) - set(cell.run.mutations)
        if known:
            b.bodies[i] = [s for s in b.bodies[i] if not _only_looks(s, known)]


def _only_looks(stmt: ast.stmt, known: set[str]) -> bool:
    if not isinstance(stmt, ast.Expr):
        return False
    value = stmt.value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) \
            and value.func.id == "print":
        return not any(k.arg in ("file", None) for k in value.keywords) and all(
            _literal(a) or _looks(a, known) or (isinstance(a, ast.JoinedStr) and all(
                _literal(v) or (isinstance(v, ast.FormattedValue) and _looks(v.value, known))
                for v in a.values)) for a in value.args)
    return _looks(value, known)


def _looks(node: ast.expr, known: set[str]) -> bool:
    """`node` reads data without changing anything: a known name, looked at."""
    if isinstance(node, ast.Name):
        return node.id in known
    if isinstance(node, ast.Attribute):
        return node.attr in _LOOK_ATTRS and _looks(node.value, known)
    if isinstance(node, ast.Subscript):
        return _literal(node.slice) and _looks(node.value, known)
    if isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name) and f.id in _LOOK_BUILTINS:  # `len(df)`
            return len(node.args) == 1 and not node.keywords and _looks(node.args[0], known)
        if not all(_literal(a) for a in node.args) or not all(
                k.arg is not None and _literal(k.value) for k in node.keywords):
            return False
        return isinstance(f, ast.Attribute) and f.attr in _LOOK_METHODS and _looks(f.value,
                                                                                    known)
    return False


def _literal(node: ast.AST | None) -> bool:
    """A constant, or a tuple/list/slice of them (`df[['a', 'b']]`, `x[:5]`, `-1`)."""
    if node is None or isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp):
        return _literal(node.operand)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_literal(e) for e in node.elts)
    if isinstance(node, ast.Slice):
        return _literal(node.lower) and _literal(node.upper) and _literal(node.step)
    return False


_CV_FUNCTIONS = frozenset({"cross_val_score", "cross_validate", "cross_val_predict",
                           "learning_curve", "validation_curve"})


def _discarded_cv(stmt: ast.stmt) -> set[str] | None:
    """The names a cross-validation statement binds (empty for a bare call), else None."""
    value = stmt.value if isinstance(stmt, (ast.Assign, ast.Expr)) else None
    if not isinstance(value, ast.Call):
        return None
    f = value.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    if name not in _CV_FUNCTIONS:
        return None
    if isinstance(stmt, ast.Expr):
        return set()
    targets = [n for t in stmt.targets for n in ast.walk(t)]  # type: ignore[union-attr]
    if not all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.expr_context)) for n in targets):
        return None
    return {n.id for n in targets if isinstance(n, ast.Name)}


_NAMESPACE_READERS = frozenset({"globals", "locals", "vars", "exec", "eval"})


def reads_namespace(node: ast.AST) -> bool:
    """Code that may read any name of the script, so no binding may be judged unread:
    `globals()`, `eval`..., and the support's `%run` replay, which hands the script the
    namespace (`-i`: it reads it) from its caller's frame, with no name in the call."""
    if isinstance(node, ast.Name):
        return isinstance(node.ctx, ast.Load) and node.id in _NAMESPACE_READERS
    return (isinstance(node, ast.Attribute) and node.attr == RUN_HELPER
            and isinstance(node.value, ast.Name) and node.value.id == RESERVED_NAME)


def drop_overwritten_literals(bodies: list[list[ast.stmt]], mutated: set[str]
                               ) -> dict[str, int]:
    """`max_depth = 2` then `max_depth = 8` with no read between: the first is dropped, so
    the parameter holds the value the run had. Returns how many bindings went, by name."""
    flat = [(i, stmt) for i, body in enumerate(bodies) for stmt in body]
    unsafe: set[str] = set()
    for _i, stmt in flat:
        for node in ast.walk(stmt):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef)):
                unsafe |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            elif reads_namespace(node):
                return {}
    pending: dict[str, ast.stmt] = {}
    dead: set[int] = set()
    removed: dict[str, int] = {}
    for _i, stmt in flat:
        target = None
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and literal_value(stmt.value)[0]):
            target = stmt.targets[0].id
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and not (node.id == target and node is
                                                   stmt.targets[0]):  # type: ignore[union-attr]
                pending.pop(node.id, None)
        if target is not None and target not in mutated and target not in unsafe:
            if target in pending:
                dead.add(id(pending[target]))
                removed[target] = removed.get(target, 0) + 1
            pending[target] = stmt
    if dead:
        for i, body in enumerate(bodies):
            bodies[i] = [s for s in body if id(s) not in dead]
    return removed


def used_imports(hoisted: list[ast.stmt], bodies: list[list[ast.stmt]]) -> list[ast.stmt]:
    """The hoisted imports the script reads a name of; the others go (and so leave
    requirements.txt). Imports run for their effect stay: `enable_*` switches, anything under
    an `experimental` package, and `import a.b` forms (they may register `a.b`)."""
    used = {n.id for body in bodies for stmt in body for n in ast.walk(stmt)
            if isinstance(n, ast.Name)}
    kept: list[ast.stmt] = []
    for stmt in hoisted:
        module = stmt.module or "" if isinstance(stmt, ast.ImportFrom) else ""
        names = stmt.names  # type: ignore[attr-defined]
        effect = "experimental" in module.split(".") or any(
            a.name.startswith("enable_") or "experimental" in a.name.split(".")
            or (isinstance(stmt, ast.Import) and "." in a.name and not a.asname)
            for a in names)
        bound = [a.asname or a.name.split(".")[0] for a in names]
        if effect or any(name in used for name in bound):
            kept.append(stmt)
    return kept


def drop_unused_secrets(bodies: list[list[ast.stmt]]) -> None:
    """`API_KEY = os.environ.get("WANDB_API_KEY", "sk-...")` in a cell the run depends on for
    another name (`SEED = 7` beside it): nothing in the script reads `API_KEY`, yet its
    redacted value made `train.py` refuse to start without the environment variable. Such a
    binding goes when it only reads text and the environment (no call that could act) and no
    statement of the script, function bodies included, reads the name."""
    loads: set[str] = set()
    for body in bodies:
        for stmt in body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    loads.add(node.id)
                if reads_namespace(node):
                    return
    for i, body in enumerate(bodies):
        bodies[i] = [stmt for stmt in body if not _unread_secret(stmt, loads)]


def _unread_secret(stmt: ast.stmt, loads: set[str]) -> bool:
    if not (isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets)):
        return False
    if any(t.id in loads for t in stmt.targets):  # type: ignore[attr-defined]
        return False
    held = [n for n in ast.walk(stmt.value) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and redact.REDACTED in n.value]
    return bool(held) and _reads_text_only(stmt.value)


_ENV_CALLS = frozenset({"os.environ.get", "os.getenv", "environ.get", "getenv"})


def _reads_text_only(node: ast.expr) -> bool:
    """Constants, names, f-strings, `os.environ[...]` and `os.environ.get`/`os.getenv`."""
    if isinstance(node, (ast.Constant, ast.Name)):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(_reads_text_only(v) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return _reads_text_only(node.value)
    if isinstance(node, ast.BinOp):
        return _reads_text_only(node.left) and _reads_text_only(node.right)
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.value) in ("os.environ", "environ") and \
            _reads_text_only(node.slice)
    if isinstance(node, ast.Call) and ast.unparse(node.func) in _ENV_CALLS:
        return not node.keywords and all(_reads_text_only(a) for a in node.args)
    return False
