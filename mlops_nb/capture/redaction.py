"""Secrets out of a cell run before it is logged or written (see `mlops_nb.redact`).

The recorder calls `redact_cell_run` on every cell run, backfilled ones included, before the
run enters the session log: the lineage's effective parameters, the store, the runs table,
the report and the export all read what is left, so none of them can show a secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import redact
from ..records import CellRun
from ..store.blobs import blob_hash

# Fields holding text a secret could be echoed into (an error message, a file path with a
# password in its URL); ids, hashes and numbers are left alone.
_TEXT_FIELDS = ("error", "name", "files_read", "files_written", "data", "warnings",
                "metric_steps", "estimators")


def redact_cell_run(cr: CellRun, blobs: dict[str, bytes], *,
                    allowed: Iterable[str] = ()) -> None:
    """Replace secrets in `cr` and its code blobs in place; record which were redacted."""
    allow = frozenset(allowed)
    secrets: set[str] = set()
    python_text = _text(blobs, cr.python)
    new_python = python_text
    if python_text is not None:
        new_python, secrets = redact.redact_python(python_text, allowed=allow)
    raw_text = _text(blobs, cr.code)
    if cr.code == cr.python:  # a plain-Python cell is stored once
        if python_text is not None:
            cr.code = cr.python = _replace_blob(blobs, cr.code, python_text, new_python)
    else:
        if raw_text is not None:
            cr.code = _replace_blob(blobs, cr.code, raw_text,
                                    redact.redact_raw(raw_text, secrets))
        if python_text is not None:
            cr.python = _replace_blob(blobs, cr.python, python_text, new_python)
    _redact_modules(cr, blobs, allow)
    before = dict(cr.params)
    cr.params = redact.redact_params(cr.params, allowed=allow, known=secrets)
    cr.widget_values = redact.redact_params(cr.widget_values, allowed=allow, known=secrets)
    for est in cr.estimators.values():  # `get_params()` of a client-like estimator
        if isinstance(est, dict) and isinstance(est.get("params"), dict):
            est["params"] = redact.redact_params(est["params"], allowed=allow, known=secrets)
    for f in _TEXT_FIELDS:
        setattr(cr, f, redact.scrub_obj(getattr(cr, f), secrets))
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


def _redact_modules(cr: CellRun, blobs: dict[str, bytes], allow: frozenset[str]) -> None:
    """The notebook's own modules are stored for export (`lib/`): a `config.py` holding an API
    key must not carry it into the store. The stored copy is redacted and its hash follows it,
    so an export's `lib/` matches run.json; the run says which module lost what."""
    for module in cr.modules:
        if not isinstance(module, dict) or not isinstance(module.get("hash"), str):
            continue
        text = _text(blobs, module["hash"])
        if text is None:
            continue
        new, found = redact.redact_python(text, allowed=allow)
        if new == text:
            continue
        module["hash"] = _replace_blob(blobs, module["hash"], text, new)
        module["size"] = len(new.encode("utf-8", "surrogatepass"))
        module["redacted"] = True
        cr.warnings.append(f"module {module.get('name')!s}: {len(found) or 'some'} value(s) "
                           "that looked like credentials were redacted from its stored copy; "
                           "an export's lib/ holds the redacted copy")


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
