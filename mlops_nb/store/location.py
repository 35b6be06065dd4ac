"""Where the store lives: found like `.git`, so every notebook under a project shares one."""

from __future__ import annotations

import os
from pathlib import Path

from .. import config
from ..errors import StoreNotFound

STORE_DIRNAME = ".mlops_nb"
ENV_HOME = config.HOME.name


def find_home(start: str | os.PathLike[str] | None = None) -> Path:
    """The store folder for `start` (default: the working directory).

    MLOPS_NB_HOME wins; otherwise the nearest `.mlops_nb/` at or above `start`. Readers go
    through `config.store_home`, which also knows the running tracker's store.
    """
    env = config.read(config.HOME)
    if env is not None:
        return env
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    raise StoreNotFound(
        f"no {STORE_DIRNAME}/ folder at or above {here}; run `%track on` in a notebook there "
        f"first, cd into the project, or set {ENV_HOME}"
    )


def home_for_writing(start: str | os.PathLike[str] | None = None) -> Path:
    """The store a kernel writes to: an existing one above, else a new one beside the notebook."""
    try:
        return find_home(start)
    except StoreNotFound:
        return Path(start or os.getcwd()).resolve() / STORE_DIRNAME


def foreign_home_note(home: str | os.PathLike[str] | None,
                      start: str | os.PathLike[str] | None = None) -> str | None:
    """Why a store found above the notebook's folder deserves a word: walk-up discovery (like
    `.git`) lets a stray `.mlops_nb/` in a parent capture every notebook below it, and the
    user otherwise learns it only when foreign runs show up in their comparison."""
    if home is None or config.read(config.HOME) is not None:
        return None
    home_path = Path(home).resolve()
    here = Path(start or os.getcwd()).resolve()
    if home_path.parent == here:
        return None
    return (f"this store is in a parent folder ({home_path.parent}), shared with every notebook "
            f"below it; to keep this folder's runs apart, create {STORE_DIRNAME}/ here or set "
            f"{ENV_HOME}")
