"""The environment a session ran in: Python, platform, imported packages, git.

Collected off the critical path (the store's writer thread calls `collect`), because mapping
modules to distributions and asking git take tens of milliseconds. Only packages the session
actually imported are listed: that is what `requirements.txt` of an export must pin.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any


@functools.lru_cache(maxsize=1)
def _module_to_dists() -> dict[str, list[str]]:
    from importlib import metadata  # 10 ms to import: only on the writer thread

    return metadata.packages_distributions()


@functools.lru_cache(maxsize=512)
def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def imported_packages(modules: list[str] | None = None) -> dict[str, str]:
    """{distribution: version} for the top-level modules currently imported."""
    names = modules if modules is not None else list(sys.modules)
    tops = {n.partition(".")[0] for n in names if not n.startswith("_")}
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    mapping = _module_to_dists()
    out: dict[str, str] = {}
    for top in sorted(tops - set(stdlib)):
        for dist in mapping.get(top, ()):
            version = _version(dist)
            if version is not None:
                out[dist] = version
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def git_state(cwd: str | None = None) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the repository around `cwd`, or None outside one."""
    def git(*args: str) -> str | None:
        try:
            import subprocess  # imported here: not needed until the writer thread asks

            proc = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status),
        "root": git("rev-parse", "--show-toplevel"),
    }


def collect(cwd: str | None = None) -> dict[str, Any]:
    import platform  # the writer thread's work: not imported at `%load_ext`

    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cwd": cwd or os.getcwd(),
        "packages": imported_packages(),
        "git": git_state(cwd),
    }
