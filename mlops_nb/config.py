"""Every environment variable mlops-nb reads, in one list, and the one way to find the store.

Like dvclive's `env.py`: a reader of the code (or of the README table, which a test checks
against `ENV_VARS`) sees at once what can be set from outside and what it does. Values are read
when needed, never cached at import, so a notebook can change one with `%env` and the next cell
sees it. A malformed value never breaks tracking: the default is used instead.

The store home is found here and only here (`store_home`): an explicit folder, else the store
the running tracker writes to, else `MLOPS_NB_HOME`, else the nearest `.mlops_nb/` at or above
the working directory, as git finds `.git`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StoreNotFound

if TYPE_CHECKING:
    from .store.reader import StoreReader

@dataclass(frozen=True)
class EnvVar:
    """One environment variable the package (or an exported train.py) reads.

    `type` is the Python type the text is converted to; `default` is what applies when it is
    unset or malformed, as the README shows it; `low`/`high` bound numeric values (outside
    them the default applies, so a typo cannot make every cell wait an hour).
    """

    name: str
    type: type
    default: Any
    meaning: str
    low: float | None = None
    high: float | None = None


HOME = EnvVar(
    "MLOPS_NB_HOME", Path, None,
    "The store folder. Unset: the nearest `.mlops_nb/` at or above the working directory "
    "(created beside the notebook on the first `%track on`).")
CAPTURE_BUDGET = EnvVar(
    "MLOPS_NB_CAPTURE_BUDGET", float, 5.0,
    "Seconds the capture of one cell may spend in the user's objects (fingerprints, "
    "`__float__`, `__repr__`) before that step is skipped with a warning; 0 disables the limit.",
    0, 3600)
OBJECT_BUDGET = EnvVar(
    "MLOPS_NB_OBJECT_BUDGET", float, 2.0,
    "Seconds fingerprinting one object or rendering one figure may take before that object "
    "alone is skipped (with a warning on the run); 0 disables the limit.", 0, 3600)
FLUSH_INTERVAL = EnvVar(
    "MLOPS_NB_FLUSH_INTERVAL", float, 0.05,
    "Seconds the writer thread gathers cell runs into one write. Longer: fewer writes, more "
    "runs at stake if the kernel is killed outright.", 0, 60)
SEARCH_CHILDREN = EnvVar(
    "MLOPS_NB_SEARCH_CHILDREN", int, 5,
    "How many of a hyper-parameter search's best candidates become child runs.", 0, 1000)
FRESH_RNG = EnvVar(
    "MLOPS_NB_FRESH_RNG", int, None,
    "Read by an exported `train.py`: draw fresh RNG states seeded with this number instead of "
    "restoring the notebook's (`mlops-nb reproduce --seeds N` sets it).")
SECRET = EnvVar(
    "MLOPS_NB_SECRET", str, None,
    "Read by an exported `train.py`: a credential the notebook used whose name gave no "
    "variable name. Others are named after the notebook's variable (`api_key` -> `API_KEY`); "
    "`train.py --help` lists the ones it needs.")
SESSION_NAME = EnvVar(
    "JPY_SESSION_NAME", str, None,
    "Set by Jupyter: the notebook's path, recorded with each run and used as the default "
    "experiment name.")
TRACKING_URI = EnvVar(
    "MLFLOW_TRACKING_URI", str, None,
    "MLflow's own variable: the tracking server `mlops-nb sync` and `--source mlflow` use "
    "when no `--tracking-uri` is given.")

ENV_VARS: tuple[EnvVar, ...] = (HOME, CAPTURE_BUDGET, OBJECT_BUDGET, FLUSH_INTERVAL,
                                SEARCH_CHILDREN, FRESH_RNG, SECRET, SESSION_NAME, TRACKING_URI)


def read(var: EnvVar) -> Any:
    """The value of `var` now: converted to its type, bounded, or its default.

    Never raises: tracking reads these inside a user's cell, where a typo in a variable must
    not become an error in their code.
    """
    text = _environ_get(var.name)
    if text is None or not text.strip():
        return var.default
    if var.type is str:
        return text
    if var.type is Path:
        return Path(text).expanduser().resolve()
    try:
        value = var.type(text)
    except (TypeError, ValueError):
        return var.default
    if isinstance(value, float) and not math.isfinite(value):
        return var.default
    if var.low is not None and value < var.low:
        return var.default
    if var.high is not None and value > var.high:
        return var.default
    return value


_ENCODED: dict[str, Any] = {}


def _environ_get(name: str) -> str | None:
    """`os.environ.get(name)`, without the KeyError `Mapping.get` raises and catches inside
    for a variable that is not set, the usual case for these, read before every tracked
    cell: one lookup in the mapping's own table where it has one (CPython's `_Environ`)."""
    environ = os.environ
    data = getattr(environ, "_data", None)
    encode = getattr(environ, "encodekey", None)
    decode = getattr(environ, "decodevalue", None)
    if not (isinstance(data, dict) and callable(encode) and callable(decode)):
        return environ.get(name)
    key = _ENCODED.get(name)
    if key is None:
        key = _ENCODED[name] = encode(name)
    raw = data.get(key)
    return None if raw is None else decode(raw)


def env_table() -> str:
    """The README's table of environment variables, generated from `ENV_VARS`."""
    lines = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for var in ENV_VARS:
        default = "unset" if var.default is None else f"`{var.default}`"
        kind = "path" if var.type is Path else var.type.__name__
        lines.append(f"| `{var.name}` | {kind} | {default} | {var.meaning} |")
    return "\n".join(lines)


# -- the store home -------------------------------------------------------------------------------
def store_home(home: str | os.PathLike[str] | None = None, *, use_tracker: bool = True,
               must_exist: bool = False) -> Path:
    """The store to read: `home` if given, else the running tracker's (flushed first, so what
    the notebook just did is on disk), else `store.location.find_home()`
    (MLOPS_NB_HOME, else the nearest `.mlops_nb/` at or above the working directory).

    Args:
        home: an explicit store folder (`--home`, `home=`); wins over everything.
        use_tracker: False for code that must not see a kernel's store (a subprocess, the CLI).
        must_exist: refuse a `home` or `MLOPS_NB_HOME` that is not a folder, rather than read
            it as an empty store (a typo would otherwise show "no runs").

    Raises:
        StoreNotFound: no store could be found, or `must_exist` and the folder is missing.
    """
    if home is not None:
        path = Path(home).expanduser()
        given = "home"
    else:
        if use_tracker:
            from .capture.recorder import active_tracker

            tracker = active_tracker()
            if tracker is not None and tracker.home is not None:
                tracker.flush()
                return Path(tracker.home)
        from .store.location import find_home

        path = find_home()
        given = HOME.name
    if must_exist and not path.is_dir():
        raise StoreNotFound(f"no store at {path} (from {given}); check the path")
    return path


def store_reader(home: str | os.PathLike[str] | None = None, **options: Any) -> StoreReader:
    """A reader over `store_home(home, **options)`."""
    from .store.reader import StoreReader

    return StoreReader(store_home(home, **options))
