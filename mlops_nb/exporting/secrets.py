"""Redacted values in exported code become environment variables, never values.

Capture replaced each credential in the stored code with `mlops_nb.redact.REDACTED`. The
export turns every string constant still holding it (or any other secret shape, should an
older store have kept one) into `_mnb.secret("API_KEY")`, a support-module helper that reads the
environment variable and stops with a clear message when it is missing. `train.py --help`
lists those variables; run.json names them under `secret_env`.
"""

from __future__ import annotations

import ast
import re

from .. import redact
from .codegen import support_attr

_ENV_OK = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def secrets_from_env(bodies: list[list[ast.stmt]]) -> tuple[list[list[ast.stmt]], list[str]]:
    """The bodies with secret constants replaced by environment lookups; the variables used."""
    names: list[str] = []
    out = []
    for body in bodies:
        module = ast.Module(body, [])
        parents = {child: node for node in ast.walk(module) for child in ast.iter_child_nodes(node)}
        out.append(_Replace(parents, names).visit(module).body)
    return out, names


class _Replace(ast.NodeTransformer):
    def __init__(self, parents: dict[ast.AST, ast.AST], names: list[str]) -> None:
        self.parents = parents
        self.names = names

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        # An f-string's literal parts may not become calls: the whole string does.
        if any(isinstance(v, ast.Constant) and _is_secret(v.value) for v in node.values):
            return self._lookup(node)
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if _is_secret(node.value):
            return self._lookup(node)
        if isinstance(node.value, bytes) and redact.REDACTED.encode() in node.value:
            # `api_key = b"..."`: the variable's text, encoded
            return ast.copy_location(ast.Call(ast.Attribute(
                self._lookup(node), "encode", ast.Load()), [], []), node)
        return node

    def _lookup(self, node: ast.expr) -> ast.expr:
        env = redact.secret_env_name(_name_of(node, self.parents))
        if not _ENV_OK.match(env):
            env = "MLOPS_NB_SECRET"
        if env not in self.names:
            self.names.append(env)
        return ast.copy_location(ast.Call(support_attr("secret"), [ast.Constant(env)], []), node)


def secret_assignment(name: str, value: object, names: list[str]) -> ast.stmt | None:
    """`name = _mnb.secret("NAME")` when a parameter's recorded value was redacted (a widget
    value frozen at capture), else None: it stays a parameter."""
    if not _holds_secret(value):
        return None
    env = redact.secret_env_name(name)
    env = env if _ENV_OK.match(env) else "MLOPS_NB_SECRET"
    if env not in names:
        names.append(env)
    return ast.Assign([ast.Name(name, ast.Store())],
                      ast.Call(support_attr("secret"), [ast.Constant(env)], []))


def _holds_secret(value: object) -> bool:
    if isinstance(value, dict):
        return any(_holds_secret(k) or _holds_secret(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_secret(v) for v in value)
    return _is_secret(value)


def _is_secret(value: object) -> bool:
    return isinstance(value, str) and (redact.REDACTED in value or redact.has_secret_shape(value))


def _name_of(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str | None:
    """The name the value is bound to: assignment target, keyword, dict key, env variable,
    default of a parameter; an item of a tuple or list bound to `auth` is `auth_0`, `auth_1`
    (one variable each: the user and the password are two values), or takes its own target's
    name when unpacked (`user, password = ...`)."""
    parent = parents.get(node)
    if isinstance(parent, ast.Tuple | ast.List | ast.Set) and node in parent.elts:
        place = parent.elts.index(node)
        holder = parents.get(parent)
        if isinstance(holder, ast.Assign) and holder.value is parent and isinstance(
                holder.targets[0], ast.Tuple | ast.List) and len(
                holder.targets[0].elts) == len(parent.elts):
            return _bound_name(holder.targets[0].elts[place])
        name = _name_of(parent, parents)
        return name if name is None or len(parent.elts) == 1 else f"{name}_{place}"
    if isinstance(parent, ast.IfExp | ast.Starred):
        return _name_of(parent, parents)
    if isinstance(parent, ast.For | ast.AsyncFor | ast.comprehension) and parent.iter is node:
        return _bound_name(parent.target)
    if isinstance(parent, ast.arguments):
        positional = [*parent.posonlyargs, *parent.args]
        pairs = [*zip(positional[len(positional) - len(parent.defaults):], parent.defaults,
                      strict=True), *zip(parent.kwonlyargs, parent.kw_defaults, strict=True)]
        return next((arg.arg for arg, default in pairs if default is node), None)
    if isinstance(parent, ast.Assign | ast.AnnAssign) and parent.value is node:
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        return _bound_name(targets[0])
    if isinstance(parent, ast.keyword) and parent.arg:
        return parent.arg
    if isinstance(parent, ast.Dict):
        for key, value in zip(parent.keys, parent.values, strict=True):
            if value is node and isinstance(key, ast.Constant):
                return str(key.value)
    if isinstance(parent, ast.Call) and len(parent.args) >= 2 and parent.args[-1] is node and \
            isinstance(parent.args[-2], ast.Constant):  # log_param("api_key", "...")
        return str(parent.args[-2].value)
    return None


def _bound_name(target: ast.AST) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
        return str(target.slice.value)
    return None
