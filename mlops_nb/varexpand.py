"""IPython's `$name` / `{expr}` expansion of a line magic's argument, as Python code.

IPython expands a magic's argument in the user namespace before the magic sees it
(`InteractiveShell.var_expand`): `%env DATA=$root/train.csv` sets the variable to the value
`root` had. The value is code, not a secret, so capture keeps it (and reads the names it
uses for the lineage), and the export writes it as the f-string it amounts to:
`os.environ['DATA'] = f'{root}/train.csv'`. One parse serves both sides, IPython's own.
"""

from __future__ import annotations

import ast
import functools


def expansion(text: str) -> ast.JoinedStr | None:
    """The f-string IPython's expansion of `text` amounts to; None when nothing in it expands
    (or IPython would leave it as it is: a brace it cannot parse)."""
    if "$" not in text and "{" not in text:
        return None
    return _expansion(text)


@functools.lru_cache(maxsize=128)
def _expansion(text: str) -> ast.JoinedStr | None:
    from IPython.utils.text import DollarFormatter

    values: list[ast.expr] = []
    expanded = False
    try:
        for literal, field, spec, conversion in DollarFormatter().parse(text):
            if literal:
                values.append(ast.Constant(literal))
            if field is None:
                continue
            expr = ast.parse(field, mode="eval").body
            fmt = ast.JoinedStr([ast.Constant(spec)]) if spec else None
            values.append(ast.FormattedValue(expr, ord(conversion) if conversion else -1, fmt))
            expanded = True
    except (ValueError, SyntaxError):
        return None
    if not expanded:  # `$$x` and `{{` still change: IPython sets `$x` and `{`
        plain = "".join(v.value for v in values if isinstance(v, ast.Constant))
        return ast.JoinedStr(values) if plain != text else None
    return ast.JoinedStr(values)


def names_used(text: str) -> list[str]:
    """The names an expansion of `text` reads from the namespace, in order."""
    node = expansion(text)
    if node is None:
        return []
    out: dict[str, None] = {}
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            out.setdefault(n.id)
    return list(out)


def literal_parts(text: str) -> str:
    """The text of `text` that is not expanded (what could still hold a secret)."""
    node = expansion(text)
    if node is None:
        return text
    return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
