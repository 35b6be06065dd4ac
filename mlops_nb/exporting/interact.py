"""A widget callback's export: the `interact` wiring goes, the recorded call stays.

A run recorded from an `interact` slider (capture/interact.py) is a cell run whose code is the
call the slider made, `train(max_depth=7)`. In its script the cell defining `train` must not
build widgets nor call `train` once more with the slider's first value, so `@interact(...)` /
`@interact_manual(...)` decorators and bare `interact(train, ...)` statements are dropped
from the slice's cells. Other runs keep them as they are.
"""

from __future__ import annotations

import ast
from typing import Any

from .literals import check_name, literal_value

_INTERACT = frozenset({"interact", "interact_manual"})


def strip_interact(bodies: list[list[ast.stmt]]) -> None:
    for i, body in enumerate(bodies):
        kept: list[ast.stmt] = []
        for stmt in body:
            if isinstance(stmt, ast.Expr) and _is_interact(stmt.value) and \
                    isinstance(stmt.value, ast.Call):
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    _is_interact(d) for d in stmt.decorator_list):
                stmt.decorator_list = [d for d in stmt.decorator_list if not _is_interact(d)]
            kept.append(stmt)
        bodies[i] = kept


def _is_interact(node: ast.expr) -> bool:
    """`interact`, `widgets.interact_manual`, `interact(x=...)`, `interact.options(...)(...)`."""
    while isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute) and node.attr == "options":
        node = node.value
    if isinstance(node, ast.Attribute):
        return node.attr in _INTERACT
    return isinstance(node, ast.Name) and node.id in _INTERACT


def callback_parameters(bodies: list[list[ast.stmt]], params: dict[str, Any]) -> None:
    """The slider's values become the script's parameters: `train(max_depth=5)` is replayed
    as `train(max_depth=max_depth)` with `max_depth = 5` an option, unless the name is taken
    (read or bound anywhere in the script, or already a parameter)."""
    if not bodies or not bodies[-1]:
        return
    stmt = bodies[-1][-1]
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return
    taken = {n for body in bodies for s in body for n in _global_names(s)} | set(params)
    for kw in stmt.value.keywords:
        if kw.arg is None or kw.arg in taken or kw.arg.startswith("_"):
            continue
        ok, value = literal_value(kw.value)
        if not ok:
            continue
        try:
            check_name(kw.arg, what="interact parameter")
        except Exception:
            continue
        params[kw.arg] = value
        kw.value = ast.copy_location(ast.Name(kw.arg, ast.Load()), kw.value)


def _global_names(node: ast.AST, local: frozenset[str] = frozenset()) -> set[str]:
    """Names `node` reads or binds in the module's namespace: a function's parameters and
    the names it assigns are its own (unless declared `global`)."""
    out: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        own = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x}
        body = node.body if isinstance(node.body, list) else [node.body]
        declared = {n for s in body for g in ast.walk(s) if isinstance(g, ast.Global)
                    for n in g.names}
        own |= {n.id for s in body for n in ast.walk(s)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} - declared
        if not isinstance(node, ast.Lambda):
            out.add(node.name)
            for d in [*node.decorator_list, *a.defaults, *(k for k in a.kw_defaults if k)]:
                out |= _global_names(d, local)
        for s in body:
            out |= _global_names(s, local | own)
        return out
    if isinstance(node, ast.Name):
        return set() if node.id in local else {node.id}
    for child in ast.iter_child_nodes(node):
        out |= _global_names(child, local)
    return out
