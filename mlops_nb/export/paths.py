"""Where an export may be written: inside the project, never through `..`, NUL or symlinks."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ExportExists, UnsafeOutputPath
from ..store.storage import atomic_write_bytes


def prepare_out_dir(out_dir: str | os.PathLike[str], *, root: Path, store: Path | None,
                    force: bool, check_root: bool = True) -> Path:
    """The export folder, created; UnsafeOutputPath or ExportExists when it may not be used."""
    text = os.fspath(out_dir)
    if not text or "\x00" in text:
        raise UnsafeOutputPath(f"export folder {text!r} is empty or holds a NUL character")
    path = Path(text)
    if ".." in path.parts:
        raise UnsafeOutputPath(
            f"export folder {text!r} goes up with '..'; give a folder inside the project")
    full = path if path.is_absolute() else Path.cwd() / path
    resolved = full.resolve()
    if check_root:
        root_r = root.resolve()
        if resolved != root_r and root_r not in resolved.parents:
            why = " (through a symlink)" if full.absolute() != resolved else ""
            raise UnsafeOutputPath(
                f"export folder {text!r} is outside the project {root_r}{why}; give a folder "
                "inside it")
    if store is not None:
        store_r = store.resolve()
        if resolved == store_r or store_r in resolved.parents:
            raise UnsafeOutputPath(f"export folder {text!r} is inside the store {store_r}")
    if resolved.exists() and not resolved.is_dir():
        raise UnsafeOutputPath(f"export folder {text!r} exists and is not a folder")
    if resolved.is_dir() and any(resolved.iterdir()) and not force:
        raise ExportExists(
            f"{text!r} already holds files; pass --force (force=True) to overwrite the export")
    resolved.mkdir(parents=True, exist_ok=True)
    return resolved


def write_file(folder: Path, name: str, payload: bytes) -> Path:
    target = folder / name
    if target.is_symlink():
        raise UnsafeOutputPath(f"{target} is a symlink; not written through")
    atomic_write_bytes(target, payload)
    return target
