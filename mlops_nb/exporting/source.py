"""The notebook's own text in train.py: comments, blank lines and number formatting survive.

The export transforms the syntax tree (magics, data paths, constructor options...), and
`ast.unparse` would drop every comment and reformat every number. So each top-level
statement remembers the text it was parsed from and a copy of its original tree; at render
time the changed sub-expressions are spliced into the original text (the way LibCST edits
code), and the result is parsed again and compared with the transformed tree. Only when
that check fails, or the statement was generated, is it unparsed: the script always runs
exactly the transformed tree, whatever the text looks like.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from typing import Any

_ORIG = "_mnb_orig"  # on a top-level statement: (CellText, its index there, previous end line)
_ATOMIC = (ast.Name, ast.Constant, ast.Attribute, ast.Call, ast.Subscript, ast.List,
           ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp, ast.JoinedStr)


@dataclass
class CellText:
    """One cell's Python as UTF-8 lines (ast columns are byte offsets), and its original tree,
    parsed again only when a statement is rendered (cheaper than copying every tree)."""

    code: str
    lines: list[bytes]
    _tree: list[ast.stmt] | None = None

    @classmethod
    def of(cls, code: str) -> CellText:
        return cls(code, code.encode("utf-8", "surrogatepass").split(b"\n"))

    def original(self, index: int) -> ast.stmt:
        if self._tree is None:
            self._tree = _parsed(self.code)
        return self._tree[index]

    def line(self, lineno: int) -> str:
        return self.lines[lineno - 1].decode("utf-8", "surrogatepass")


@functools.lru_cache(maxsize=256)
def _parsed(code: str) -> list[ast.stmt]:
    """Re-runs of one cell share its original tree (read only, never transformed)."""
    return ast.parse(code).body


def remember(body: list[ast.stmt], code: str) -> None:
    """Mark each statement of `body` (parsed from `code`) as the notebook's own text."""
    text = CellText.of(code)
    prev_end = 0
    for index, stmt in enumerate(body):
        first = _first_line(stmt)
        setattr(stmt, _ORIG, (text, index, prev_end))
        prev_end = getattr(stmt, "end_lineno", first) or first


def origin(stmt: ast.stmt) -> tuple[CellText, ast.stmt, int] | None:
    mark = getattr(stmt, _ORIG, None)
    if mark is None:
        return None
    text, index, prev_end = mark
    return text, text.original(index), prev_end


def _first_line(stmt: ast.stmt) -> int:
    lines = [stmt.lineno]
    for deco in getattr(stmt, "decorator_list", ()):
        lines.append(deco.lineno)
    return min(lines)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a == b or (a != a and b != b))


def _diff(old: ast.AST, new: ast.AST, text: CellText, edits: list[tuple[ast.AST, str]]
          ) -> bool:
    """Collect (original node, replacement text) edits turning `old` into `new`."""
    if type(old) is not type(new):
        return _replace(old, new, edits)
    mark = len(edits)
    for name in old._fields:
        a, b = getattr(old, name, None), getattr(new, name, None)
        if isinstance(a, ast.expr_context) or isinstance(b, ast.expr_context):
            continue
        if name == "decorator_list" and isinstance(a, list) and isinstance(b, list) \
                and len(b) < len(a):
            ok = _drop_decorators(a, b, text, edits)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            ok = all(_diff(x, y, text, edits) if isinstance(x, ast.AST) and isinstance(y, ast.AST)
                     else _same(x, y) for x, y in zip(a, b, strict=True))
        elif isinstance(a, ast.AST) and isinstance(b, ast.AST):
            ok = _diff(a, b, text, edits)
        else:
            ok = _same(a, b)
        if not ok:
            del edits[mark:]
            return _replace(old, new, edits)
    return True


@dataclass
class _Span:
    """A stretch of the original text an edit replaces that is no node of its own."""

    lineno: int
    col_offset: int
    end_lineno: int
    end_col_offset: int


def _drop_decorators(old: list[ast.expr], new: list[ast.expr], text: CellText,
                     edits: list[tuple[ast.AST, str]]) -> bool:
    """Decorators the export removed (`@interact(...)`): each goes with its whole line, the
    ones kept are diffed as usual. Only when each removed one sits alone on its line."""
    j = 0
    for deco in old:
        if j < len(new) and ast.dump(deco) == ast.dump(new[j]):
            if not _diff(deco, new[j], text, edits):
                return False
            j += 1
            continue
        line = text.lines[deco.lineno - 1]
        at = deco.col_offset - 1
        if deco.end_lineno is None or at < 0 or line[at:at + 1] != b"@" or line[:at].strip():
            return False
        tail = text.lines[deco.end_lineno - 1][deco.end_col_offset or 0:].strip()
        if tail and not tail.startswith(b"#"):
            return False
        edits.append((_Span(deco.lineno, at, deco.end_lineno + 1, 0), ""))  # type: ignore[arg-type]
    return j == len(new)


def _replace(old: ast.AST, new: ast.AST, edits: list[tuple[ast.AST, str]]) -> bool:
    if not isinstance(old, ast.expr) or isinstance(old, ast.Starred):
        return False
    if getattr(old, "end_col_offset", None) is None or not isinstance(new, ast.expr):
        return False
    src = ast.unparse(new)
    if not isinstance(new, _ATOMIC):
        src = f"({src})"
    edits.append((old, src))
    return True


def statement_text(stmt: ast.stmt) -> str | None:
    """The statement as the notebook wrote it, with the export's edits spliced in (and its
    trailing comment); None when it has no original text or the splice does not check."""
    mark = origin(stmt)
    if mark is None:
        return None
    text, old, _prev = mark
    edits: list[tuple[ast.AST, str]] = []
    if not _diff(old, stmt, text, edits):
        return None
    first = _first_line(old)
    if old.end_lineno is None or old.end_col_offset is None:
        return None
    start_col = old.col_offset if first == old.lineno else 0
    # the statement's lines as one byte string, with absolute offsets
    starts = [0]
    for raw in text.lines[first - 1:old.end_lineno - 1]:
        starts.append(starts[-1] + len(raw) + 1)
    blob = b"\n".join(text.lines[first - 1:old.end_lineno])

    def at(line: int, col: int) -> int:
        return starts[line - first] + col

    begin, end = at(first, start_col), at(old.end_lineno, old.end_col_offset)
    rest = text.lines[old.end_lineno - 1][old.end_col_offset:]
    for node, src in sorted(edits, key=lambda e: at(e[0].lineno, e[0].col_offset),
                            reverse=True):
        lo = at(node.lineno, node.col_offset)
        hi = at(node.end_lineno, node.end_col_offset)  # type: ignore[arg-type]
        new = src.encode("utf-8", "surrogatepass")
        blob = blob[:lo] + new + blob[hi:]
        end += len(new) - (hi - lo)
    result = blob[begin:end].decode("utf-8", "surrogatepass")
    comment = rest.strip()
    if comment.startswith(b"#"):
        result += "  " + comment.decode("utf-8", "surrogatepass")
    if edits and not _checks(result, stmt):  # unedited: the very text it was parsed from
        return None
    return result


def _checks(src: str, stmt: ast.stmt) -> bool:
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError):
        return False
    return len(tree.body) == 1 and ast.dump(tree.body[0]) == ast.dump(stmt)


def leading_comments(stmt: ast.stmt) -> list[str]:
    """Comment and blank lines the notebook had between the previous statement and this one."""
    mark = origin(stmt)
    if mark is None:
        return []
    text, old, prev_end = mark
    out = []
    for n in range(prev_end + 1, _first_line(old)):
        line = text.line(n)
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return []  # not a plain comment block (a continuation of something): skip
        out.append(line.rstrip())
    return out


def render_body(body: list[ast.stmt]) -> str:
    """A cell's statements as text: the notebook's own where it checks, else unparsed."""
    chunks: list[str] = []
    for stmt in body:
        lead = leading_comments(stmt)
        src = statement_text(stmt)
        if src is None:
            src = ast.unparse(ast.fix_missing_locations(stmt))
        chunks.extend(lead)
        chunks.append(src)
    while chunks and not chunks[0].strip():
        chunks.pop(0)
    out: list[str] = []
    for c in chunks:  # at most one blank line in a row
        if not c.strip() and out and not out[-1].strip():
            continue
        out.append(c)
    return "\n".join(out).rstrip() + "\n" if out else ""
