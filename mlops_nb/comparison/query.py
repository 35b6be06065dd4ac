"""The filter language of the runs view: one grammar, parsed here and in `static/runs_view.js`.

    model=RandomForest max_depth>=5 f1>0.9 name~rf lr=1e-4..1e-2 max_depth=None "random forest"

A query is terms separated by spaces; a run is shown when every term matches. A term is
`column OP value` (OP one of `= != > >= < <= ~ !~`) or free text. Values are numbers, `None`,
ranges `lo..hi` (inclusive, either end optional), bare words or quoted strings ("..." or '...',
backslash escapes). Free text matches the run's name, model, id, notebook or experiment
(substring, any case) or the initials of its model (`rf` finds RandomForestClassifier).

The JavaScript twin must give the same parse and the same matches: both test suites read
`tests/data/query_vectors.json`. Keep the two in step (same order of checks, same messages).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import MlopsNbError

OPS = ("!=", "!~", ">=", "<=", "=", ">", "<", "~")
_OP_CHARS = "=!<>~"
_SPACE = " \t\n\r\f\v"
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NONE_WORDS = ("None", "none", "null")
# Free text is looked for in these columns.
TEXT_KEYS = ("name", "model", "id", "notebook", "experiment")
ALIASES = {"when": "started_at", "duration": "duration_s", "time": "started_at"}
MODEL_SUFFIXES = ("Classifier", "Regressor")


class QueryError(MlopsNbError):
    """A query that cannot be read or names a column no run has; the message says why."""


class _Missing:
    """A parameter the run never set (distinct from a parameter set to None)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Term:
    field: str | None  # None: free text
    op: str
    value: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": self.value}


# -- parsing --------------------------------------------------------------------------------------
def parse(query: str) -> list[Term]:
    """The terms of `query`; raises QueryError with the column where reading failed."""
    terms: list[Term] = []
    i, n = 0, len(query)
    while True:
        while i < n and query[i] in _SPACE:
            i += 1
        if i >= n:
            return terms
        start = i
        if query[i] in "\"'":
            field, i = _quoted(query, i)
            quoted_field = True
        else:
            j = i
            while j < n and query[j] not in _SPACE and query[j] not in _OP_CHARS:
                j += 1
            field, i = query[i:j], j
            quoted_field = False
        if i >= n or query[i] in _SPACE:
            if not field and not quoted_field:
                raise QueryError(f"nothing before the operator at column {start + 1}")
            terms.append(Term(None, "text", {"kind": "text", "text": field}))
            continue
        op = next((o for o in OPS if query.startswith(o, i)), None)
        if op is None:
            raise QueryError(f"expected = or ~ after '!' at column {i + 1}")
        if not field:
            raise QueryError(f"a column name must come before '{op}' at column {i + 1}")
        i += len(op)
        if i >= n or query[i] in _SPACE:
            raise QueryError(f"a value must follow '{field}{op}' at column {i + 1}")
        if query[i] in "\"'":
            text, i = _quoted(query, i)
            value: dict[str, Any] = {"kind": "text", "text": text}
        else:
            j = i
            while j < n and query[j] not in _SPACE:
                j += 1
            value, i = _bare_value(query[i:j]), j
        if value["kind"] == "range" and op not in ("=", "!="):
            raise QueryError(f"a range goes with = or != (as in {field}=0.8..0.9), not {op}")
        if value["kind"] == "none" and op not in ("=", "!="):
            raise QueryError(f"None goes with = or != (as in {field}=None), not {op}")
        terms.append(Term(field, op, value))


def _quoted(query: str, i: int) -> tuple[str, int]:
    quote, start = query[i], i
    i += 1
    out: list[str] = []
    while i < len(query):
        c = query[i]
        if c == "\\" and i + 1 < len(query):
            out.append(query[i + 1])
            i += 2
            continue
        if c == quote:
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise QueryError(f"unterminated quote starting at column {start + 1}")


def _bare_value(text: str) -> dict[str, Any]:
    if text in _NONE_WORDS:
        return {"kind": "none", "text": text}
    if _NUMBER.match(text):
        return {"kind": "number", "text": text, "number": float(text)}
    parts = text.split("..")
    if len(parts) == 2 and (parts[0] or parts[1]) and all(
            not p or _NUMBER.match(p) for p in parts):
        lo = float(parts[0]) if parts[0] else None
        hi = float(parts[1]) if parts[1] else None
        return {"kind": "range", "text": text, "lo": lo, "hi": hi}
    return {"kind": "text", "text": text}


# -- columns --------------------------------------------------------------------------------------
def resolve(field: str, columns: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The column a query names: by label, then key, then alias, any case; else an error
    naming the closest columns."""
    low = field.lower()
    low = ALIASES.get(low, low)
    for attr in ("label", "key"):
        for col in columns:
            if str(col.get(attr, "")).lower() == low:
                return dict(col)
    labels = [str(c.get("label", c["key"])) for c in columns]
    near = closest(field, labels)
    hint = f"; closest: {', '.join(near)}" if near else ""
    raise QueryError(f"unknown column {field!r}{hint}")


def closest(word: str, names: Sequence[str], k: int = 3) -> list[str]:
    """The `k` names nearest to `word` by edit distance (ties by name), any case."""
    w = word.lower()
    scored = sorted({(levenshtein(w, n.lower()), n) for n in names})
    return [n for _, n in scored[:k]]


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


# -- matching -------------------------------------------------------------------------------------
Getter = Callable[[dict[str, Any], str], Any]


def row_value(row: dict[str, Any], key: str) -> Any:
    """A payload row's value for a column key: MISSING when unset, None when set to None."""
    for prefix, section in (("params.", "params"), ("metrics.", "metrics")):
        if key.startswith(prefix):
            return (row.get(section) or {}).get(key[len(prefix):], MISSING)
    value = row.get(key, MISSING)
    return MISSING if value is None else value


def compile_query(query: str, columns: Sequence[dict[str, Any]],
                  get: Getter = row_value) -> Callable[[dict[str, Any]], bool]:
    """A predicate over payload rows; raises QueryError for bad syntax or unknown columns."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for term in parse(query):
        if term.field is None:
            checks.append(_text_check(term.value["text"], get))
        else:
            col = resolve(term.field, columns)
            checks.append(_column_check(col, term.op, term.value, get))
    return lambda row: all(check(row) for check in checks)


def acronym(name: str) -> str:
    """`RandomForestClassifier` -> `rfc`: first letter and each capital after a small letter."""
    out = name[:1]
    for prev, c in itertools.pairwise(name):
        if "A" <= c <= "Z" and "a" <= prev <= "z":
            out += c
    return out.lower()


def short_model(name: str) -> str:
    """`RandomForestClassifier` -> `RandomForest`: the family, as people say it."""
    for suffix in MODEL_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _text_check(text: str, get: Getter) -> Callable[[dict[str, Any]], bool]:
    t = text.lower()

    def check(row: dict[str, Any]) -> bool:
        for key in TEXT_KEYS:
            v = get(row, key)
            if v is MISSING or v is None:
                continue
            if t in str(v).lower():
                return True
        model = get(row, "model")
        return isinstance(model, str) and bool(t) and acronym(model).startswith(t)

    return check


def value_text(v: Any) -> str:
    """The text a value compares as: `true`/`false`, `None`, integers without `.0`."""
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _column_check(col: dict[str, Any], op: str, value: dict[str, Any],
                  get: Getter) -> Callable[[dict[str, Any]], bool]:
    key = col["key"]
    kind = value["kind"]
    if op in (">", ">=", "<", "<="):
        if kind == "number":
            n = value["number"]
            cmp = _ORDER[op]
            return lambda row: _is_number(v := get(row, key)) and cmp(v, n)
        if key == "started_at":
            t = value["text"]
            cmp = _ORDER[op]
            return lambda row: isinstance(v := get(row, key), str) and cmp(v, t)
        raise QueryError(f"{value['text']!r} is not a number to compare {col.get('label', key)} "
                         f"with {op}")
    if op in ("~", "!~"):
        t = value["text"].lower()

        def contains(row: dict[str, Any]) -> bool:
            v = get(row, key)
            return v is not MISSING and t in value_text(v).lower()

        return contains if op == "~" else (lambda row: not contains(row))
    equal = _equality(key, value, get)
    return equal if op == "=" else (lambda row: not equal(row))


def _equality(key: str, value: dict[str, Any], get: Getter) -> Callable[[dict[str, Any]], bool]:
    kind = value["kind"]
    if kind == "none":
        return lambda row: get(row, key) is None
    if kind == "range":
        lo, hi = value["lo"], value["hi"]
        return lambda row: _is_number(v := get(row, key)) and (lo is None or v >= lo) and (
            hi is None or v <= hi)
    t = value["text"].lower()
    n = value.get("number")

    def equal(row: dict[str, Any]) -> bool:
        v = get(row, key)
        if v is MISSING or v is None:
            return False
        if n is not None and _is_number(v):
            return bool(v == n)
        text = value_text(v).lower()
        if text == t:
            return True
        return key == "model" and isinstance(v, str) and short_model(v).lower() == t

    return equal


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}
