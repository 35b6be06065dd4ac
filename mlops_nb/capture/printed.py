"""Metrics a cell only prints: `print(f"Test accuracy: {np.mean(pred == y):.3f}")`.

A value a notebook prints under a metric-like label, computed in the print itself, is a
metric it never bound to a name nor computed with a function autolog knows (numpy, pure
Python, a deep-learning framework's own evaluation). Such a value is read where it is
computed, not parsed back from the text: the label is in the code, the value is the exact
number before formatting rounded it, and the export replays the same expression.

`labelled_values` finds them in a cell's tree (pure: shared by capture and export); `wrap`
replaces each value, in the kernel by `through_seen`'s call of `seen(name, value)`, which
hands it to the recorder and returns it unchanged, so the cell prints exactly what it
printed untracked; in `train.py` by `_mnb.printed(name, value)`.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..metrics import is_metric_name
from ..redact import has_secret_shape
from .sweeps import statements_run_now

# The recorder's receiver while a tracked cell runs (recorder.py sets it); `seen` is a no-op
# without one, so a rewritten cell still runs if tracking stopped halfway through it.
HOOK: list[Callable[[str, Any], None] | None] = [None]

_SEPARATORS = re.compile(r"[,;|\n\t]")
_NOT_WORD = re.compile(r"[^0-9a-zA-Z]+")
_SQUARED = re.compile(r"\br[ -]?squared\b")  # "R-squared", as "R^2" and "R²": r2
_MAX_WORDS = 5
_MAX_LENGTH = 40


def seen(name: str, value: Any) -> Any:
    """The value, unchanged; told to the recorder first when a cell is being recorded."""
    hook = HOOK[0]
    if hook is not None:
        try:  # noqa: SIM105 (suppress() is a context manager: 2 us a print, in a loop)
            hook(name, value)
        except Exception:  # the user's print prints whatever happens here
            pass
    return value


def metric_label(text: str) -> str | None:
    """The metric a label names (`"Test accuracy: "` -> `test_accuracy`, `"CV RMSE ="` ->
    `cv_rmse`, `"RMSE (test):"` -> `rmse_test`), or None: the text after the last separator
    (or unclosed bracket), when its words name a metric (`metrics.is_metric_name`) and are
    few (a sentence is no label)."""
    label = _SEPARATORS.split(text)[-1]
    opened = max(label.rfind("("), label.rfind("["))
    if opened > max(label.rfind(")"), label.rfind("]")):  # "epoch 3 (val acc: ": inside
        label = label[opened + 1:]
    lowered = _SQUARED.sub("r2", label.lower().replace("²", "2").replace("^2", "2"))
    words = [w for w in _NOT_WORD.split(lowered) if w]
    if not words or len(words) > _MAX_WORDS or not words[0][0].isalpha():
        return None
    name = "_".join(words)
    if len(name) > _MAX_LENGTH or not is_metric_name(name) or has_secret_shape(label):
        return None  # a metric's name is never redacted: no token goes into one
    return name


def _labelled(text: str | None, value: ast.expr) -> str | None:
    """The metric `text` names for `value`, when the value is computed in the print."""
    return metric_label(text) if text is not None and _worth_reading(value) else None


def _worth_reading(node: ast.expr) -> bool:
    """A value computed in the print: not a constant, nor a variable a metric's name already
    names (recorded under that name), nor `*values` (wrapped, it would be one argument)."""
    if isinstance(node, (ast.Constant, ast.Starred)):
        return False
    return not (isinstance(node, ast.Name) and is_metric_name(node.id))


Found = tuple[str, ast.AST, str, int | None]  # (metric, holder, field, index in the field)


def _in_print(call: ast.Call) -> Iterator[Found]:
    label: str | None = None
    for i, arg in enumerate(call.args):
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            label = arg.value
            continue
        if isinstance(arg, ast.JoinedStr):
            yield from _in_fstring(arg, label)
        elif _is_format(arg):  # "Accuracy: {:.3f}".format(...)
            yield from _in_format(arg, label)  # type: ignore[arg-type]
        elif (isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mod)
              and isinstance(arg.left, ast.Constant) and isinstance(arg.left.value, str)):
            yield from _in_percent(arg, label)  # "Accuracy: %.3f" % ...
        elif (name := _labelled(label, arg)) is not None:
            yield name, call, "args", i
        label = None


def _in_fstring(node: ast.JoinedStr, before: str | None) -> Iterator[Found]:
    text = before + " " if before else ""
    for part in node.values:
        if isinstance(part, ast.Constant):
            text += str(part.value)
            continue
        if isinstance(part, ast.FormattedValue):
            name = _labelled(text, part.value)
            if name is not None:
                yield name, part, "value", None
        text = ""


def _is_format(node: ast.expr) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format" and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str))


def _in_format(call: ast.Call, before: str | None) -> Iterator[Found]:
    """`"acc {:.3f}, loss {}".format(a, b)`, `"{0}: {acc}".format(x, acc=a)`: each field's
    label is the text before it, its value the argument it formats."""
    text = before + " " if before else ""
    keywords = {k.arg: k for k in call.keywords if k.arg is not None}
    auto = 0
    try:
        fields = list(string.Formatter().parse(call.func.value.value))  # type: ignore[attr-defined]
    except ValueError:  # not a valid format: it raises when run, untracked too
        return
    for literal, field, _spec, _conversion in fields:
        text += literal
        if field is None:
            continue
        key = re.match(r"[^.\[]*", field).group(0)  # type: ignore[union-attr]
        if key != field:  # `{0.mean}`, `{d[acc]}`: a part of the argument, not it
            text = ""
            continue
        if key == "":
            key, auto = str(auto), auto + 1
        if key.isdigit():
            index = int(key)
            if index < len(call.args) and not isinstance(call.args[index], ast.Starred):
                name = _labelled(text, call.args[index])
                if name is not None:
                    yield name, call, "args", index
        elif key in keywords:
            name = _labelled(text, keywords[key].value)
            if name is not None:
                yield name, keywords[key], "value", None
        text = ""


_PERCENT = re.compile(r"%(?:\(([^)]*)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?([a-zA-Z%])")


def _in_percent(node: ast.BinOp, before: str | None) -> Iterator[Found]:
    """`"Accuracy: %.3f" % acc`, `"acc %.2f loss %.2f" % (a, b)`: values in order."""
    fmt = node.left.value  # type: ignore[attr-defined]
    right = node.right
    values: list[tuple[ast.AST, str, int | None]]
    if isinstance(right, ast.Tuple):
        values = [(right, "elts", i) for i in range(len(right.elts))]
    elif isinstance(right, (ast.Dict, ast.Constant)):
        return  # `%(name)s` by a mapping, or a constant: nothing computed to read
    else:
        values = [(node, "right", None)]
    text, start, k = (before + " " if before else ""), 0, 0
    for m in _PERCENT.finditer(fmt):
        text += fmt[start:m.start()]
        start = m.end()
        if m.group(2) == "%":
            text += "%"
            continue
        if m.group(1) is not None or "*" in m.group(0) or k >= len(values):
            return  # a mapping key or a `*` width: the values do not line up one to one
        holder, field, index = values[k]
        k += 1
        value = getattr(holder, field) if index is None else getattr(holder, field)[index]
        if isinstance(value, ast.Starred):
            return
        name = _labelled(text, value)
        if name is not None:
            yield name, holder, field, index
        text = ""


def labelled_values(body: list[ast.stmt]) -> list[Found]:
    """Each printed value under a metric label in code that runs now: `print(...)` statements
    of the cell and of its loops, branches, `with` and `try` blocks, not of the functions and
    classes it defines (`sweeps.statements_run_now`). Statements only, not every node: a
    walk of a 50-statement cell's whole tree cost 1.5 ms, this one tens of microseconds."""
    found: list[Found] = []
    for stmt in statements_run_now(body):
        if stmt.__class__ is ast.Expr:
            call = stmt.value  # type: ignore[attr-defined]
            if (call.__class__ is ast.Call and call.func.__class__ is ast.Name
                    and call.func.id == "print"):
                found.extend(_in_print(call))
    return found


def wrap(found: list[Found], make: Callable[[str, ast.expr], ast.expr]) -> int:
    """Replace each found value by `make(metric, value)`, in place. Returns how many; a
    replacement that does not compile is left out (the cell runs as written)."""
    count = 0
    for name, holder, field, index in found:
        value = getattr(holder, field) if index is None else getattr(holder, field)[index]
        new = ast.copy_location(make(name, value), value)
        ast.fix_missing_locations(new)
        try:
            compile(ast.Expression(new), "<mlops-nb print>", "eval")
        except Exception:
            continue
        if index is None:
            setattr(holder, field, new)
        else:
            getattr(holder, field)[index] = new
        count += 1
    return count


# The name a rewritten cell calls `seen` by: set in the notebook's namespace (hidden from
# `%who`) as the cell is parsed. An `__import__(...).seen` at each print, which no name of the
# notebook could shadow, cost 2.8 us a print, doubling a loop that prints every step.
SEEN_NAME = "_mlops_nb_printed"


def through_seen(name: str, value: ast.expr) -> ast.expr:
    """`_mlops_nb_printed(name, value)`."""
    def at(node: Any) -> Any:
        return ast.copy_location(node, value)

    return at(ast.Call(at(ast.Name(SEEN_NAME, ast.Load())), [at(ast.Constant(name)), value], []))


def file_printed(metrics: dict[str, Any], steps: dict[str, list[Any]],
                 printed: dict[str, list[Any]], bound: Iterable[str] = ()) -> None:
    """The printed values as the run's metrics, below every other kind: a name the run has
    already is kept as it is, and a value it already has under another name (`acc = ...`
    then `print(f"Accuracy: {acc * 1.0}")`) is not a second metric. Nor is a label the cell
    binds as a variable (`print(f"loss: {loss[-1]}")`, `loss` a list): the export finds a
    metric of that name in the variable, as capture finds metric-named variables. Printed
    more than once (each epoch), the last is the metric and all of them its steps."""
    bound = set(bound)
    for name, values in printed.items():
        if name in metrics or name in bound or not values:
            continue
        last = values[-1]
        if any(v == last for v in metrics.values()
               if isinstance(v, (int, float)) and not isinstance(v, bool)):
            continue
        metrics[name] = last
        if len(values) > 1:
            steps[name] = list(values)
