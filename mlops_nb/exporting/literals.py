"""Values and names into generated code, safely: AST nodes only, never text pasting.

A recorded value becomes an AST built from its *type*, not from its `repr`, so an object whose
`__repr__` returns code is rejected rather than trusted, and a string holding `"; import os`
stays a string constant. Names must be plain identifiers that cannot shadow the script's own.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
from typing import Any

from ..errors import UnsafeExport

# Every name the generated script defines for itself starts with this; notebook names may not.
RESERVED_PREFIX = "_mnb_"
RESERVED_NAME = "_mnb"  # the support module, as the script imports it
# Options the script defines itself; a parameter may not take the same command-line flag.
RESERVED_FLAGS = frozenset({"--help", "--save-model", "--strict-data", "--output-dir", "-h"})
MAX_DEPTH = 50
_INT_DIGITS_SAFE = 4000
_FLAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def check_name(name: Any, *, what: str = "parameter") -> str:
    """`name` if it can be a Python variable of the script; UnsafeExport saying why not."""
    if not isinstance(name, str):
        raise UnsafeExport(f"{what} name {name!r} is a {type(name).__name__}, not a string")
    shown = ascii(name)[:80]
    if not name.isidentifier() or not name.isascii():
        raise UnsafeExport(
            f"{what} name {shown} is not a plain ASCII Python identifier; rename it in the "
            "notebook (letters, digits, underscores)"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in ("None", "True",
                                                                           "False"):
        raise UnsafeExport(f"{what} name {shown} is a Python keyword; rename it in the notebook")
    if name == RESERVED_NAME or name.startswith(RESERVED_PREFIX) or name.startswith("__"):
        raise UnsafeExport(
            f"{what} name {shown} is reserved for the generated script "
            f"(names starting {RESERVED_PREFIX!r} or '__'); rename it in the notebook"
        )
    return name


def flag_for(name: str) -> str:
    """`max_depth` -> `--max-depth`."""
    flag = "--" + name.strip("_").replace("_", "-").lower()
    return flag


def check_flags(names: list[str]) -> dict[str, str]:
    """{name: flag} for parameters, every flag distinct and free.

    A name whose natural flag is taken (`DATA_DIR` -> `--data-dir`, but data files own
    `--data-*`; `help`; `lr` and `LR`) gets `--param-...`, then a number: export never asks
    the user to rename a variable in the notebook.
    """
    flags: dict[str, str] = {}
    taken: set[str] = set(RESERVED_FLAGS)
    for name in names:
        check_name(name)
        flag = flag_for(name)
        if not _FLAG_RE.match(flag[2:]) or flag.startswith("--data-") or flag in taken:
            body = flag[2:] if _FLAG_RE.match(flag[2:]) else "value"
            flag = "--param-" + body
            n = 2
            while flag in taken:
                flag, n = f"--param-{body}-{n}", n + 1
        taken.add(flag)
        flags[name] = flag
    return flags


def literal_to_ast(value: Any, *, _depth: int = 0) -> ast.expr:
    """An expression that evaluates to `value`, for plain data only; UnsafeExport otherwise.

    Exact types only (a `str` subclass may override anything), so the code we write is decided
    by the value's content, never by methods the value's class defines.
    """
    if _depth > MAX_DEPTH:
        raise UnsafeExport("value nests deeper than 50 levels; not written as a literal")
    t = type(value)
    if value is None or t is bool or t is str or t is bytes:
        return ast.Constant(value)
    if t is int:
        if abs(value).bit_length() > _INT_DIGITS_SAFE * 3:  # beyond repr's digit limit
            text = format(abs(value), "x")
            node: ast.expr = ast.Call(ast.Name("int", ast.Load()),
                                      [ast.Constant(text), ast.Constant(16)], [])
            return ast.UnaryOp(ast.USub(), node) if value < 0 else node
        node = ast.Constant(abs(value))
        return ast.UnaryOp(ast.USub(), node) if value < 0 else node
    if t is float:
        if math.isnan(value) or math.isinf(value):
            text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
            return ast.Call(ast.Name("float", ast.Load()), [ast.Constant(text)], [])
        node = ast.Constant(abs(value))
        return ast.UnaryOp(ast.USub(), node) if math.copysign(1.0, value) < 0 else node
    if t is complex:
        if not (math.isfinite(value.real) and math.isfinite(value.imag)):
            return ast.Call(ast.Name("complex", ast.Load()),
                            [ast.Constant(repr(value).strip("()"))], [])
        return ast.Call(ast.Name("complex", ast.Load()),
                        [literal_to_ast(value.real), literal_to_ast(value.imag)], [])
    if t is list:
        return ast.List([literal_to_ast(v, _depth=_depth + 1) for v in value], ast.Load())
    if t is tuple:
        return ast.Tuple([literal_to_ast(v, _depth=_depth + 1) for v in value], ast.Load())
    if t in (set, frozenset):
        items = [literal_to_ast(v, _depth=_depth + 1) for v in _stable(value)]
        inner: ast.expr = (ast.Set(items) if items
                           else ast.Call(ast.Name("set", ast.Load()), [], []))
        if t is frozenset:
            return ast.Call(ast.Name("frozenset", ast.Load()), [inner] if items else [], [])
        return inner
    if t is dict:
        keys = [literal_to_ast(k, _depth=_depth + 1) for k in value]
        vals = [literal_to_ast(v, _depth=_depth + 1) for v in value.values()]
        return ast.Dict(keys, vals)
    raise UnsafeExport(
        f"a {t.__module__}.{t.__qualname__} value is not plain data (numbers, strings, bytes, "
        "None, lists, tuples, sets, dicts); it is not written into the script"
    )


def _stable(items: Any) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


_SAFE_CALLS = frozenset({"float", "int", "set", "frozenset", "complex"})


def is_constant_expr(node: ast.AST) -> bool:
    """True for what `literal_to_ast` produces: the check the parameters block must pass."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return is_constant_expr(node.operand)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(is_constant_expr(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and is_constant_expr(k) for k in node.keys) and all(
            is_constant_expr(v) for v in node.values)
    if isinstance(node, ast.Call):
        return (isinstance(node.func, ast.Name) and node.func.id in _SAFE_CALLS
                and not node.keywords and all(is_constant_expr(a) for a in node.args))
    return False


def literal_value(node: ast.expr) -> tuple[bool, Any]:
    """(True, value) when `node` is a literal an export can write back as a parameter (it
    evaluates safely and `literal_to_ast` can render it); (False, None) otherwise."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    try:
        literal_to_ast(value)
    except UnsafeExport:
        return False, None
    return True, value
