"""Secrets out of a cell run before it is logged or written (see `mlops_nb.redact`).

The recorder calls `redact_cell_run` on every cell run, backfilled ones included, before the
run enters the session log: the lineage's effective parameters, the store, the runs table,
the report and the export all read what is left, so none of them can show a secret.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from .. import redact
from ..records import CellRun
from ..store.blobs import blob_hash

# Fields holding text a secret could be echoed into (an error message, a file path with a
# password in its URL); ids, hashes and numbers are left alone.
_TEXT_FIELDS = ("error", "name", "files_read", "files_written", "data", "warnings",
                "metric_steps", "estimators")


# The secret values each session's cells have held, so a later cell that echoes one (an error
# message, `log_param("url", "...?k=" + api_key)`, a run name, a tag) is scrubbed too: a
# name judges only the cell that binds it. Values, kept in memory only, as the kernel keeps
# them in its namespace; filled on the writer thread in seq order, so every cell before the
# one being redacted has added its own.
_SESSION_SECRETS: dict[str, set[str]] = {}
_MAX_KNOWN = 2000  # per session: a loop that mints keys must not grow it without bound
_LOCK = threading.Lock()


def session_secrets(session: str | None) -> frozenset[str]:
    """The secret values found so far in `session`'s cells (tags are scrubbed of them)."""
    with _LOCK:
        return frozenset(_SESSION_SECRETS.get(session or "", ()))


def _remember(session: str | None, new: set[str]) -> None:
    if not new:
        return
    with _LOCK:
        known = _SESSION_SECRETS.setdefault(session or "", set())
        if len(known) < _MAX_KNOWN:
            known.update(new)


def redact_cell_run(cr: CellRun, blobs: dict[str, bytes], *,
                    allowed: Iterable[str] = ()) -> None:
    """Replace secrets in `cr` and its code blobs in place; record which were redacted."""
    allow = frozenset(allowed)
    secrets: set[str] = set()
    python_text = _text(blobs, cr.python)
    new_python = python_text
    if python_text is not None:
        new_python, secrets = redact.redact_python(python_text, allowed=allow)
    values = redact.secret_values(secrets)
    earlier = session_secrets(cr.session)
    known = values | earlier
    raw_text = _text(blobs, cr.code)
    if earlier:  # `note = 'uses ' + ...` typed out again: a secret of an earlier cell
        if python_text is not None:
            new_python = redact.replace_known(new_python, earlier)
        secrets |= {s for s in earlier if s in (raw_text or "") or s in (python_text or "")}
    if cr.code == cr.python:  # a plain-Python cell is stored once
        if python_text is not None:
            cr.code = cr.python = _replace_blob(blobs, cr.code, python_text, new_python)
    else:
        if raw_text is not None:
            cr.code = _replace_blob(blobs, cr.code, raw_text,
                                    redact.redact_raw(raw_text, secrets))
        if python_text is not None:
            cr.python = _replace_blob(blobs, cr.python, python_text, new_python)
    found = _redact_modules(cr, blobs, allow)
    before, before_widgets = dict(cr.params), dict(cr.widget_values)
    cr.params = redact.redact_params(cr.params, allowed=allow, known=known)
    cr.widget_values = redact.redact_params(cr.widget_values, allowed=allow, known=known)
    for est in cr.estimators.values():  # `get_params()` of a client-like estimator
        if isinstance(est, dict) and isinstance(est.get("params"), dict):
            est["params"] = redact.redact_params(est["params"], allowed=allow, known=known)
    for f in _TEXT_FIELDS:
        setattr(cr, f, redact.scrub_obj(getattr(cr, f), known))
    # values redacted whole by their name (`log_param("client_secret", v)`, a widget's)
    found |= {v for old, new in ((before, cr.params), (before_widgets, cr.widget_values))
              for k, v in old.items() if isinstance(v, str) and new.get(k) == redact.REDACTED}
    _remember(cr.session, values | redact.secret_values(found))
    # the same object when nothing was redacted: `nan != nan` (a search's `error_score`)
    hidden = sorted(k for k, v in cr.params.items()
                    if v is not before.get(k) and v != before.get(k))
    if hidden:
        cr.warnings.append(
            "redacted parameter(s) that looked like credentials: " + ", ".join(hidden)
            + " (`%track on --allow-param NAME` keeps a name that is not a secret)")


def withhold(cr: CellRun, blobs: dict[str, bytes], exc: BaseException) -> None:
    """What is left of a record whose secrets could not be checked: its place in the session
    (ids, seq, names it bound and read, metrics) and a note, never its code or values. It is
    still stored, so the runs that depend on it keep a whole lineage."""
    note = (f"mlops-nb could not check this cell run for secrets ({type(exc).__name__}); "
            "its code and values were not stored")
    blobs.clear()
    text = f"# {note}\n".encode()
    cr.code = cr.python = blob_hash(text)
    blobs[cr.code] = text
    cr.error = {"type": cr.error.get("type", ""), "message": ""} if cr.error else None
    cr.name = None
    cr.files_read, cr.files_written, cr.reads, cr.writes = [], [], [], []
    cr.params, cr.widget_values, cr.estimators, cr.data = {}, {}, {}, {}
    cr.metric_steps, cr.figures, cr.rng, cr.modules = {}, [], None, []
    cr.warnings = [note]


def password_reads(ns: dict[str, Any], value_reads: dict[str, str]) -> list[str]:
    """Names bound from a password widget's `.value` (`x = pw_box.value`): secret whatever
    they are called. A type check only: the widget is never asked anything."""
    out = []
    for name, source in value_reads.items():
        cls = type(ns.get(source))
        if cls.__module__.startswith("ipywidgets") and cls.__name__ == "Password":
            out.append(name)
    return out


def scrub_session(info: dict[str, Any]) -> dict[str, Any]:
    """Session facts (environment, git) without secret shapes, e.g. a token in a path."""
    return redact.scrub_obj(info)


def _redact_modules(cr: CellRun, blobs: dict[str, bytes], allow: frozenset[str]
                    ) -> set[str]:
    """The notebook's own modules are stored for export (`lib/`): a `config.py` holding an API
    key must not carry it into the store. The stored copy is redacted and its hash follows it,
    so an export's `lib/` matches run.json; the run says which module lost what. Returns the
    secrets found, so later cells that echo them are scrubbed too."""
    secrets: set[str] = set()
    for module in cr.modules:
        if not isinstance(module, dict) or not isinstance(module.get("hash"), str):
            continue
        text = _text(blobs, module["hash"])
        if text is None:
            continue
        new, found = redact.redact_python(text, allowed=allow)
        if new == text:
            continue
        secrets |= found
        module["hash"] = _replace_blob(blobs, module["hash"], text, new)
        module["size"] = len(new.encode("utf-8", "surrogatepass"))
        module["redacted"] = True
        cr.warnings.append(f"module {module.get('name')!s}: {len(found) or 'some'} value(s) "
                           "that looked like credentials were redacted from its stored copy; "
                           "an export's lib/ holds the redacted copy")
    return secrets


def _text(blobs: dict[str, bytes], digest: str | None) -> str | None:
    data = blobs.get(digest) if digest else None
    if data is None:
        return None
    return data.decode("utf-8", "surrogatepass")


def _replace_blob(blobs: dict[str, bytes], digest: str | None, old: str, new: str
                  ) -> str | None:
    if new == old or digest is None:
        return digest
    data = new.encode("utf-8", "surrogatepass")
    new_digest = blob_hash(data)
    blobs.pop(digest, None)
    blobs[new_digest] = data
    return new_digest
