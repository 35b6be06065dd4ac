"""Paths the browser names, resolved inside the server's root or refused.

A request may name a notebook (to find its store and its runs) or an export folder. Both are
relative to the Jupyter server's root; `..`, absolute paths, NUL and symlinks that lead outside
it are refused, as Jupyter's own contents API does.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..errors import MlopsNbError


class OutsideRoot(MlopsNbError):
    """A path that resolves outside the server's root."""


def resolve_inside(root: str | os.PathLike[str], rel: str | None) -> Path:
    """`rel` (an API path: '/'-separated, relative to root) as a real path inside `root`."""
    root_r = Path(root).resolve()
    text = (rel or "").strip()
    if "\x00" in text or "\\" in text:
        raise OutsideRoot(f"path {text!r} holds a NUL or a backslash")
    pure = PurePosixPath(text.lstrip("/"))
    if ".." in pure.parts:
        raise OutsideRoot(f"path {text!r} goes up with '..'")
    full = (root_r / Path(*pure.parts)) if pure.parts else root_r
    resolved = full.resolve()
    if resolved != root_r and root_r not in resolved.parents:
        raise OutsideRoot(f"path {text!r} leads outside the server's root")
    return resolved


def api_path(root: str | os.PathLike[str], path: str | os.PathLike[str] | None) -> str | None:
    """A recorded path (absolute, or relative to the kernel's folder) as an API path under
    root, or None when it is not under root."""
    if not path:
        return None
    root_r = Path(root).resolve()
    p = Path(path)
    if not p.is_absolute():
        return PurePosixPath(*p.parts).as_posix()
    try:
        return p.resolve().relative_to(root_r).as_posix()
    except (ValueError, OSError):
        return None
