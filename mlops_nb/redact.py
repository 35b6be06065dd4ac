"""Which names and values are credentials, and how they are blanked out before anything is written.

Pure functions, no I/O: capture calls them so a secret never reaches the store, and export
calls them again so a store written by an older version cannot leak one into `train.py`.
Three signals, from strongest to weakest:

- the value's *shape*: well-known key prefixes (`sk-`, `ghp_`, `xox?-`, `AKIA`...), a password
  inside a URL (`postgresql://user:PASSWORD@host`), an `Authorization: Bearer ...` header,
  `password=...` pairs in connection strings, PEM private keys. These are redacted wherever
  they appear, whatever the name.
- the *name* a string is bound to: `password`, `api_key`, `token`, `client_secret`, `auth`...
  (split on `_` and camelCase, so `max_tokens` or `author` are not secrets).
- *entropy*: a long random-looking string bound to a `...key` name (`stripe_key = "x9F..."`).

What replaces a secret is the fixed text `REDACTED`, a plain string that is valid inside any
Python string literal, so redacted code still parses and the export can recognise it.
"""

from __future__ import annotations

import ast
import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

REDACTED = "<redacted>"

# Tokens that make a name a credential on their own (`db_password`, `hf_token`, `auth`).
_SECRET_TOKENS = frozenset({
    "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "credential",
    "credentials", "creds", "auth", "authorization", "apikey", "privatekey", "cookie", "bearer",
    "signature", "accesskey", "secretkey", "sessionkey",
})
# Adjacent token pairs that do (`api_key`, `private_key`, `client_secret` is covered above).
_SECRET_PAIRS = frozenset({
    ("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
    ("session", "key"), ("signing", "key"), ("encryption", "key"), ("master", "key"),
    ("conn", "str"), ("connection", "string"),
})
# Names that are a credential only when the value also looks random (`stripe_key`, `dsn`).
_WEAK_TOKENS = frozenset({"key", "dsn", "pat", "sas", "hmac", "salt", "pin"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")

# Shapes redacted anywhere. Each pattern's group "s" is the secret; the rest is kept so the
# text stays readable ("Bearer <redacted>", "postgresql://user:<redacted>@host/db").
_SHAPES = [
    re.compile(r"(?<![A-Za-z0-9])(?P<s>sk-(?:live-|test-|proj-|ant-)?[A-Za-z0-9_-]{16,})"),
    re.compile(r"(?<![A-Za-z0-9])(?P<s>[spr]k_(?:live|test)_[A-Za-z0-9]{10,})"),
    re.compile(r"(?<![A-Za-z0-9])(?P<s>gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"(?<![A-Za-z0-9])(?P<s>glpat-[A-Za-z0-9_-]{20,})"),
    re.compile(r"(?<![A-Za-z0-9])(?P<s>xox[abposr]-[A-Za-z0-9-]{10,})"),
    re.compile(r"(?<![A-Za-z0-9])(?P<s>(?:AKIA|ASIA)[0-9A-Z]{16})(?![0-9A-Z])"),
    re.compile(r"(?<![A-Za-z0-9])(?P<s>AIza[0-9A-Za-z_-]{35})"),
    re.compile(r"(?<![A-Za-z0-9])(?P<s>hf_[A-Za-z0-9]{30,})"),
    re.compile(r"(?<![A-Za-z0-9])(?P<s>npm_[A-Za-z0-9]{36})"),
    re.compile(r"(?<![A-Za-z0-9_-])(?P<s>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"),
    re.compile(r"(?P<s>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE "
               r"KEY-----|\Z))", re.DOTALL),
]
# The names of `name=value` pairs in text whose value is a credential.
_PAIR_NAMES = (r"(?:password|passwd|pwd|passphrase|secret[_-]?access[_-]?key|secret[_-]?key|"
               r"private[_-]?key|secret|token|api[_-]?key|apikey|access[_-]?token|"
               r"auth[_-]?token|client[_-]?secret)")
# Shapes that need context: only in text (values, strings and comments of code), since in code
# `token = get_token()` is not a secret.
_TEXT_SHAPES = [
    # Authorization headers: keep the scheme, drop the credential.
    re.compile(r"(?i)\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest)\s+)?"
               r"(?P<s>[A-Za-z0-9._~+/=-]{6,})"),
    # "Bearer <credential>" elsewhere: only a credential-looking word (has a digit, 12+ long),
    # so prose such as "the token embeddings" stays.
    re.compile(r"(?i)\b(?:bearer|token)\s+(?P<s>(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{12,})"),
    # scheme://user:PASSWORD@host
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:(?P<s>[^@\s/'\"]+)@"),
    # "password": "...", PASSWORD="..." (JSON, .env files, `export` lines): a quoted value,
    # spaces and all; the name may be quoted and prefixed (`DB_PASSWORD`, `AWS_SECRET_...`).
    re.compile(r"(?i)(?<![a-z0-9])" + _PAIR_NAMES + r"[\"']?\s*[=:]\s*(?P<q>[\"'])"
               r"(?P<s>[^\"'\n]{3,}?)(?P=q)"),
    # password=...; pwd: ... in connection strings, query strings, config text
    re.compile(r"(?i)(?<![a-z0-9])" + _PAIR_NAMES + r"[\"']?\s*[=:]\s*"
               r"(?P<s>[^\s&;,'\"<>]{3,})"),
]


# A cheap test that a text may hold a secret shape at all: most cells hold none, and for them
# the per-token pass is skipped.
_MAYBE_SHAPE = ("sk-", "sk_", "pk_", "rk_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
                "github_pat_", "glpat-", "xox", "akia", "asia", "aiza", "hf_", "npm_", "eyj",
                "private key", "private_key", "://", "authori", "bearer", "token", "pass", "pwd",
                "secret", "api_key", "api-key", "apikey")


def _maybe_shape(text: str) -> bool:
    """Substring tests (fast in C, unlike one big regex alternation)."""
    low = text.lower()
    return any(lit in low for lit in _MAYBE_SHAPE)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def name_tokens(name: str) -> list[str]:
    """`apiKey`, `API_KEY`, `api-key` -> ['api', 'key']."""
    return [t for t in _SPLIT.split(_CAMEL.sub("_", name).lower()) if t]


def is_secret_name(name: str) -> bool:
    """A name whose string value is a credential whatever it looks like."""
    return isinstance(name, str) and _is_secret_name(name)


# A last word that makes the name describe credentials rather than hold one:
# `token_pattern` (every scikit-learn text vectorizer has it), `token_count`, `auth_type`.
_ABOUT_TOKENS = frozenset({
    "pattern", "patterns", "regex", "re", "type", "types", "count", "counts", "len", "length",
    "limit", "limits", "ids", "idx", "index", "size", "dim", "dims", "method", "mode", "scheme",
    "level", "embedding", "embeddings", "vocab",
})


@functools.lru_cache(maxsize=8192)
def _is_secret_name(name: str) -> bool:
    # `password2`, `token1`: a number on the end says which one, not what it is
    tokens = [t.rstrip("0123456789") or t for t in name_tokens(name)]
    if len(tokens) > 1 and tokens[-1] in _ABOUT_TOKENS and tokens[-1] not in _SECRET_TOKENS:
        return False
    if any(t in _SECRET_TOKENS for t in tokens):
        return True
    if any(pair in _SECRET_PAIRS for pair in itertools.pairwise(tokens)):
        return True
    return "".join(tokens) in _SECRET_TOKENS


def is_weak_secret_name(name: str) -> bool:
    """`stripe_key`, `dsn`: a credential when the value also looks random."""
    return isinstance(name, str) and _is_weak_secret_name(name)


@functools.lru_cache(maxsize=8192)
def _is_weak_secret_name(name: str) -> bool:
    return any(t in _WEAK_TOKENS for t in name_tokens(name))


def looks_random(text: str) -> bool:
    """Long, no spaces, several character classes and high Shannon entropy: a generated key."""
    if len(text) < 16 or any(c.isspace() for c in text):
        return False
    classes = sum((any(c.islower() for c in text), any(c.isupper() for c in text),
                   any(c.isdigit() for c in text)))
    if classes < 2:
        return False
    counts = Counter(text)
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    return entropy >= 3.5


def scrub_text(text: str, *, code: bool = False) -> str:
    """`text` with every secret-shaped part replaced by REDACTED (`code`: only the shapes
    that are unambiguous in source code, for code that could not be tokenized)."""
    if not isinstance(text, str) or len(text) < 8:
        return text
    if not code and len(text) <= _SHORT_TEXT:
        return _scrub_short(text)
    return _scrub(text, code)


# Short texts recur cell after cell (data hashes, estimator settings, file names): their
# scrubbed form is remembered, a bounded cache (at most ~1 MB), not kept per run.
_SHORT_TEXT = 256


@functools.lru_cache(maxsize=4096)
def _scrub_short(text: str) -> str:
    return _scrub(text, False)


def _scrub(text: str, code: bool) -> str:
    if not _maybe_shape(text):
        return text
    for pattern in _SHAPES if code else (*_SHAPES, *_TEXT_SHAPES):
        if pattern.search(text):
            text = pattern.sub(_keep_context, text)
    return text


def _keep_context(match: re.Match[str]) -> str:
    base = match.start()
    whole, start, end = match.group(0), match.start("s") - base, match.end("s") - base
    return whole[:start] + REDACTED + whole[end:]


def secret_parts(text: str) -> list[str]:
    """The secrets inside a text that holds more than a secret (the password of a URL)."""
    if not isinstance(text, str) or not _maybe_shape(text):
        return []
    return [m.group("s") for pattern in (*_SHAPES, *_TEXT_SHAPES)
            for m in pattern.finditer(text)]


def has_secret_shape(text: str) -> bool:
    return isinstance(text, str) and scrub_text(text) != text


def is_secret_value(name: str | None, value: Any) -> bool:
    """Should the string `value` bound to `name` be redacted as a whole?"""
    if not isinstance(value, str) or not value or value == REDACTED:
        return False
    if name is not None and is_secret_name(name):
        return True
    return name is not None and is_weak_secret_name(name) and looks_random(value)


def redact_value(name: str | None, value: Any, *, known: Iterable[str] = (),
                 _depth: int = 0) -> Any:
    """A copy of the JSON-like `value` with secrets replaced; strings under secret names go
    whole, dict entries under secret keys go whole, secret shapes anywhere go in part."""
    if isinstance(value, str):
        if is_secret_value(name, value):
            return REDACTED
        return replace_known(scrub_text(value), known)
    if _depth > 30:
        return value
    if isinstance(value, dict):
        return {k: redact_value(k if isinstance(k, str) else name, v, known=known,
                                _depth=_depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [redact_value(name, v, known=known, _depth=_depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def redact_params(params: dict[str, Any], *, allowed: Iterable[str] = (),
                  known: Iterable[str] = ()) -> dict[str, Any]:
    """Run parameters with credentials replaced; names in `allowed` are kept as given.
    `model.api_key` (an estimator's parameter) is judged by its last part too."""
    allow = set(allowed)
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in allow:
            out[name] = value
            continue
        last = name.rsplit(".", 1)[-1] if isinstance(name, str) else name
        value = redact_value(name, value, known=known)
        out[name] = redact_value(last, value, known=known) if last != name else value
    return out


_PREFIX = 8  # the shortest start of a random-looking secret that is redacted on its own


def replace_known(text: str, known: Iterable[str]) -> str:
    """Every occurrence of a secret already found elsewhere in the cell or session (a
    comment, an f-string, an error message or a run name that echoes it), and the start of a
    random-looking one (`"run-" + api_key[:12]`): eight characters of a generated key
    identify it, while the start of a word or a URL would match ordinary text."""
    for secret in known:
        if len(secret) >= 6 and secret in text:
            text = text.replace(secret, REDACTED)
        if len(secret) > _PREFIX and secret[:_PREFIX] in text and looks_random(secret):
            text = _replace_prefixes(text, secret)
    return text


def _replace_prefixes(text: str, secret: str) -> str:
    out, start = [], 0
    while (at := text.find(secret[:_PREFIX], start)) >= 0:
        end = at + _PREFIX
        while end < len(text) and end - at < len(secret) and text[end] == secret[end - at]:
            end += 1
        out.append(text[start:at] + REDACTED)
        start = end
    return "".join(out) + text[start:]


def scrub_obj(value: Any, known: Iterable[str] = (), _depth: int = 0) -> Any:
    """A JSON-like structure with secret shapes and known secrets removed from every string,
    keys included; names are not judged (see redact_params for that)."""
    if isinstance(value, str):
        return replace_known(scrub_text(value), known)
    if _depth > 40:
        return value
    if isinstance(value, dict):
        return {scrub_obj(k, known, _depth + 1): scrub_obj(v, known, _depth + 1)
                for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_obj(v, known, _depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_obj(v, known, _depth + 1) for v in value)
    return value


# -- source code ----------------------------------------------------------------------------
_ENV_MAGIC = re.compile(r"^(?P<head>\s*%(?:env|set_env)\s+[A-Za-z_][A-Za-z0-9_]*(?:\s*=\s*|\s+))"
                        r"(?P<value>\S.*?)\s*$", re.MULTILINE)
_MAGIC_LINE = re.compile(r"^[ \t]*[!%].*$", re.MULTILINE)
_ENV_MAGIC_NAMES = frozenset({"env", "set_env"})
_ENV_ARG = "\0env"  # the pseudo-name of an `%env` magic's argument
_ENV_ARG_RE = re.compile(r"^(?P<head>\s*[A-Za-z_][A-Za-z0-9_]*(?:\s*=\s*|\s+))(?P<value>\S.*)$",
                         re.DOTALL)


def redact_python(code: str, *, allowed: Iterable[str] = ()) -> tuple[str, set[str]]:
    """Python source with secret string literals redacted, and the secrets found (see
    _redact_python); cached, since a re-run cell has the same code."""
    new, secrets = _redact_python(code, frozenset(allowed))
    return new, set(secrets)


@functools.lru_cache(maxsize=256)
def _redact_python(code: str, allow: frozenset[str]) -> tuple[str, frozenset[str]]:
    """A literal goes whole when it is bound to a secret name (`api_key = "..."`,
    `connect(password="...")`, `{"Authorization": "..."}`, `os.environ["TOKEN"] = "..."`) or
    is the value of an `%env` magic; secret shapes go in part in any string literal, and the
    unambiguous ones (key prefixes) anywhere, comments included. Code that does not parse
    gets that last pass only. The secrets returned include each changed literal's old value,
    so the raw cell text can be redacted the same way."""
    maybe_bind, maybe_shape = _may_bind_secrets(code), _maybe_shape(code)
    if not (maybe_bind or maybe_shape):
        return code, frozenset()
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return replace_env_magics(scrub_text(code, code=True)), frozenset()
    edits: dict[int, tuple[ast.expr, str | bytes]] = {}
    covered: set[int] = set()  # inside a value redacted whole
    secrets: set[str] = set()
    in_fstrings: set[int] = set()  # ast.walk visits an f-string before its parts
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            in_fstrings.update(id(v) for v in node.values)
        body = _magic_body(node)
        if body is not None:
            # `%time password = "..."`, `%%capture` + a cell: the magic's text is code IPython
            # runs, one string literal in this translation; redacted as code of its own.
            new_body, found = _redact_python(body.value, allow)
            if new_body != body.value:
                secrets.update(found)
                edits[id(body)] = (body, new_body)
        if maybe_bind:
            for name, value in _bindings(node):
                if name == _ENV_ARG:
                    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                        continue
                    m = _ENV_ARG_RE.match(value.value)
                    if m and m.group("value") != REDACTED and not env_value_is_code(
                            m.group("value")) and not plain_env_setting(
                            m.group("head"), m.group("value")):
                        secrets.add(m.group("value").strip())
                        edits[id(value)] = (value, m.group("head") + REDACTED)
                elif name is not None and name not in allow:
                    for literal, new, found in _secret_literals(name, value):
                        if id(literal) not in edits and id(literal) not in covered:
                            secrets.update(found)
                            edits[id(literal)] = (literal, new)
                            covered.update(id(n) for n in ast.walk(literal) if n is not literal)
        if (maybe_shape and isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in edits and id(node) not in in_fstrings
                and id(node) not in covered):
            new = scrub_text(node.value)
            if new != node.value:
                secrets.add(node.value)
                edits[id(node)] = (node, new)
    if edits:
        code = _replace_spans(code, list(edits.values()))
    code = replace_known(scrub_text(code, code=True), secret_values(secrets))
    return code, frozenset(secrets)


def secret_values(values: Iterable[str]) -> set[str]:
    """The secrets `values` hold, to find again elsewhere: a value redacted whole, or the
    secret parts of one that holds a secret (a URL with a password: its other parts are not
    secret, and `postgresql://user:` must not be redacted wherever it appears, nor taken for
    the start of a random-looking key)."""
    out: set[str] = set()
    for v in values:
        if not isinstance(v, str) or len(v) > 4096:
            continue
        scrubbed = scrub_text(v)
        out.update([v] if scrubbed in (v, REDACTED) else secret_parts(v))
    return {v for v in out if len(v) >= 6 and v != REDACTED}


_CODE_MAGICS = {"run_line_magic": 1, "run_cell_magic": 2}  # the position of the text they run


def _magic_body(node: ast.AST) -> ast.Constant | None:
    """The text a `%magic` or `%%magic` call hands its magic, when that text may be code."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    position = _CODE_MAGICS.get(node.func.attr)
    if position is None or len(node.args) <= position:
        return None
    magic, text = node.args[0], node.args[position]
    if not (isinstance(magic, ast.Constant) and magic.value not in _ENV_MAGIC_NAMES
            and isinstance(text, ast.Constant) and isinstance(text.value, str)):
        return None
    return text


def _secret_literals(name: str, value: ast.AST
                     ) -> Iterator[tuple[ast.expr, str | bytes, set[str]]]:
    """(node, replacement, secrets) for the literals a credential name is bound to: a string
    or bytes literal; each item of a tuple or list (`auth = ("bob", "pw")`: the export reads
    each item from its own variable); either branch of `a if c else b`; and, whole, a string
    built from literals alone (`"A" + "B"`, an f-string with literal text). A string built with
    other names (`"Bearer " + token`) keeps its literal parts: they are not the secret."""
    if isinstance(value, ast.Constant):
        if isinstance(value.value, str) and is_secret_value(name, value.value):
            yield value, REDACTED, {value.value}
        elif isinstance(value.value, bytes) and value.value:
            text = value.value.decode("utf-8", "replace")
            if REDACTED not in text and is_secret_value(name, text):
                yield value, REDACTED.encode(), {text}
    elif isinstance(value, ast.Tuple | ast.List | ast.Set):
        for item in value.elts:
            yield from _secret_literals(name, item)
    elif isinstance(value, ast.Starred):
        yield from _secret_literals(name, value.value)
    elif isinstance(value, ast.IfExp):
        yield from _secret_literals(name, value.body)
        yield from _secret_literals(name, value.orelse)
    elif isinstance(value, ast.BinOp | ast.JoinedStr):
        parts = _literal_text(value)
        text = "".join(parts or ())
        if parts and any(c.isalnum() for c in text) and is_secret_value(name, text):
            yield value, REDACTED, {text, *parts}


def _literal_text(node: ast.AST) -> list[str] | None:
    """The literal strings of a `+`/`%` chain of string literals, or of an f-string's text;
    None when a chain also holds names or calls."""
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        left, right = _literal_text(node.left), _literal_text(node.right)
        if left is not None and right is not None and not isinstance(node.left, ast.JoinedStr):
            return left + right
    return None


def _may_bind_secrets(code: str) -> bool:
    """False when no word of the code is a credential-like name and no `%env` is used: then
    no literal can be bound to one, and parsing the code again is skipped."""
    if "env" in code:
        return True
    if not _may_name_secrets(code):
        return False
    return any(_is_secret_name(w) or _is_weak_secret_name(w)
               for w in set(_WORD.findall(code)))


def _fewest(fragments: set[str]) -> tuple[str, ...]:
    """The fragments that hold no other (`key` finds `apikey` too)."""
    return tuple(sorted(f for f in fragments
                        if not any(g != f and g in f for g in fragments)))


# Every credential-like name holds one of these, lowercased with its underscores taken out:
# a secret or weak token is one of the name's tokens, a secret pair two adjacent ones, and
# the tokens joined are the name without its underscores (test_redact.py holds them to it).
_NAME_FRAGMENTS = _fewest(_SECRET_TOKENS | _WEAK_TOKENS | {a + b for a, b in _SECRET_PAIRS})


def _may_name_secrets(code: str) -> bool:
    """Substring tests in C over the whole text: most cells name no credential, and for them
    splitting every word into tokens (two thirds of the check, in a 50-line cell) is
    skipped."""
    squashed = code.lower().replace("_", "")
    return any(fragment in squashed for fragment in _NAME_FRAGMENTS)


def _bindings(node: ast.AST) -> list[tuple[str | None, ast.AST]]:
    """(name, value node) pairs that bind a value to a name in `node`."""
    out: list[tuple[str | None, ast.AST]] = []
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            name = _target_name(target)
            if name is not None and node.value is not None:
                out.append((name, node.value))
            elif _unpacks(target, node.value):  # `user, password = "bob", "pw"`
                out.extend((_target_name(t), v) for t, v in zip(
                    target.elts, node.value.elts, strict=True))  # type: ignore[attr-defined]
    elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
        name = _target_name(node.target)  # `for token in ["..."]`
        if name is not None:
            out.append((name, node.iter))
    elif isinstance(node, ast.NamedExpr):
        out.append((node.target.id, node.value))
    elif isinstance(node, ast.Call):
        out.extend((kw.arg, kw.value) for kw in node.keywords if kw.arg)
        func = node.func
        attr = func.attr if isinstance(func, ast.Attribute) else None
        if attr in ("run_line_magic", "magic") and node.args and isinstance(
                node.args[0], ast.Constant) and node.args[0].value in _ENV_MAGIC_NAMES:
            # `%env NAME=value`: the value is never recorded, whatever the name.
            out.extend((_ENV_ARG, a) for a in node.args[1:2])
        elif len(node.args) >= 2 and isinstance(node.args[-2], ast.Constant) and isinstance(
                node.args[-2].value, str):
            # log_param("api_key", v), os.environ.setdefault("TOKEN", v), setattr(o, "pw", v)
            out.append((node.args[-2].value, node.args[-1]))
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                out.append((key.value, value))
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        for arg, default in zip(positional[len(positional) - len(args.defaults):],
                                args.defaults, strict=True):
            out.append((arg.arg, default))
        for arg, kwdefault in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            if kwdefault is not None:
                out.append((arg.arg, kwdefault))
    return out


def _unpacks(target: ast.AST, value: ast.AST | None) -> bool:
    """`a, b = x, y`: each target takes the item in its place."""
    return (isinstance(target, ast.Tuple | ast.List) and isinstance(value, ast.Tuple | ast.List)
            and len(target.elts) == len(value.elts)
            and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts)))


def _target_name(target: ast.AST) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) and \
            isinstance(target.slice.value, str):
        return target.slice.value
    return None


def _replace_spans(code: str, nodes: list[tuple[ast.expr, str | bytes]]) -> str:
    """Replace each node's source text by the literal of its new text (AST offsets are
    UTF-8 bytes)."""
    lines = code.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode("utf-8")))
    data = code.encode("utf-8")
    spans = {}
    for node, text in nodes:
        if node.end_lineno is None or node.end_col_offset is None:
            continue
        spans[(starts[node.lineno - 1] + node.col_offset,
               starts[node.end_lineno - 1] + node.end_col_offset)] = text
    for (begin, end), text in sorted(spans.items(), reverse=True):
        data = data[:begin] + repr(text).encode("utf-8", "surrogatepass") + data[end:]
    return data.decode("utf-8", "surrogatepass")


def replace_env_magics(text: str) -> str:
    """`%env NAME=value` lines of raw IPython code with the value replaced (unless the value
    is code, `$var`, `{expr}`, or a plain setting)."""
    return _ENV_MAGIC.sub(lambda m: m.group(0) if env_value_is_code(m.group("value"))
                          or plain_env_setting(m.group("head"), m.group("value"))
                          else m.group("head") + REDACTED, text)


_PLAIN_ENV_VALUE = re.compile(
    r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|\d+(,\d+)+"  # numbers, `0,1` (devices)
    r"|true|false|yes|no|on|off|none"  # flags
    r"|([A-Za-z]:)?(\.{1,2}|~)?([/\\][\w.-]+)+[/\\]?|\.{1,2}|[\w.-]*[/\\][\w./\\-]*",  # paths
    re.IGNORECASE)


def plain_env_setting(head: str, value: str) -> bool:
    """`%env DATA_ROOT=../data`, `%env OMP_NUM_THREADS=1`, `%env CUDA_VISIBLE_DEVICES=0`: a
    path, number or flag under a name that is not a credential's is a setting, kept as code
    is (the export sets it, a replay needs nothing). Anything else an `%env` line sets is
    withheld whatever its name: a key under a name that does not say so (`%env COMET=...`)
    is common, and its value has no shape to tell it by."""
    name = head.strip().rstrip("=").strip()
    value = value.strip()
    return (not is_secret_name(name) and scrub_text(value) == value
            and _PLAIN_ENV_VALUE.fullmatch(value) is not None)


def env_value_is_code(value: str) -> bool:
    """`%env NAME=$var` or `NAME={expr}`: IPython expands it from the namespace, so it names
    values rather than holding one, and is kept (when no literal in it has a secret shape)."""
    from .varexpand import expansion

    node = expansion(value)
    if node is None or scrub_text(value) != value:
        return False
    return not any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                   for v in node.values if isinstance(v, ast.FormattedValue)
                   for n in ast.walk(v.value))


def redact_raw(raw: str, secrets: Iterable[str]) -> str:
    """A cell's raw IPython text given the secrets its Python translation held: `%env` values,
    the secret literals (quoted or not, each at least 6 characters when bare) and shapes."""
    text = replace_env_magics(raw)
    # Shell and magic lines are text, not Python: every shape applies (a curl header...).
    text = _MAGIC_LINE.sub(lambda m: scrub_text(m.group()), text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        new = scrub_text(secret)
        new = REDACTED if new == secret else new  # whole, or the part that was secret
        pairs = [(repr(secret), repr(new)), ('"' + secret + '"', '"' + new + '"')]
        if "\n" in secret.rstrip("\n"):
            # a cell magic's body: IPython passes it on with a newline the raw cell lacks
            pairs.append((secret.rstrip("\n"), new.rstrip("\n")))
        for quoted, repl in pairs:
            text = text.replace(quoted, repl)
    return replace_known(scrub_text(text, code=True), secret_values(secrets))


def secret_env_name(name: str | None) -> str:
    """The environment variable a redacted value is read from: `api_key` -> `API_KEY`."""
    if not name:
        return "MLOPS_NB_SECRET"
    text = "_".join(name_tokens(name)).upper()
    if not text or text[0].isdigit():
        text = "SECRET_" + text
    return text
