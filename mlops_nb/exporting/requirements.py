"""requirements.txt: the distributions the slice imports, pinned to the session's versions."""

from __future__ import annotations

import ast
import inspect
import re
import sys
from typing import TYPE_CHECKING

from ..capture.environment import _module_to_dists

if TYPE_CHECKING:
    from importlib import metadata

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
_SKIP = frozenset({"mlops_nb", "mlops-nb", "__future__"})


def imported_modules(bodies: list[list[ast.stmt]]) -> list[str]:
    """Top-level module names imported anywhere in the code (functions and branches too)."""
    out: dict[str, None] = {}
    for body in bodies:
        for node in ast.walk(ast.Module(body, [])):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    out.setdefault(alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.setdefault(node.module.split(".")[0])
    return [m for m in out if m not in _SKIP]


def _dist_name(req: str) -> str:
    m = _NAME.match(req)
    return (m.group(0) if m else req).lower().replace("_", "-")


def requirements(modules: list[str], session_packages: dict[str, str],
                 extra: list[str] | None = None, pip_lines: list[str] | None = None) -> list[str]:
    """Pinned lines `dist==version`: version from the session, else what is installed here."""
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    wanted = [m for m in [*modules, *(extra or [])] if m not in stdlib and m not in _SKIP]
    mapping = _dists_providing(wanted, session_packages) if wanted else {}
    lines: dict[str, str] = {}
    dists: list[str] = []
    for module in wanted:
        dists.extend(mapping.get(module, ()))
    known = {k.lower().replace("_", "-"): (k, v) for k, v in session_packages.items()}
    for dist in dists:
        key = dist.lower().replace("_", "-")
        if key in _SKIP or key in lines:
            continue
        version = known.get(key, (dist, None))[1]
        if version is None:
            from importlib import metadata  # 10-20 ms to import: only when asked

            try:
                version = metadata.version(dist)
            except metadata.PackageNotFoundError:
                version = None
        lines[key] = f"{dist}=={version}" if version else dist
    for req in pip_lines or []:
        key = _dist_name(req)
        if key not in lines and key not in _SKIP:
            lines[key] = req
    return [lines[k] for k in sorted(lines)]


DEPENDENCIES_HEADER = ("# needed by the packages above, at the versions the run had: their "
                       "numbers depend on these too")


def dependency_pins(direct: list[str], session_packages: dict[str, str]) -> list[str]:
    """What the pinned distributions require, transitively, pinned as the session had them
    (else as installed here): scikit-learn's results depend on its numpy, scipy, joblib and
    threadpoolctl, so `pip install -r requirements.txt` must not pick newer ones. Optional
    extras and requirements whose environment marker does not hold here are left out; a
    distribution not installed here is skipped (nothing to pin)."""
    known = {k.lower().replace("_", "-"): v for k, v in session_packages.items()}
    seen = {_dist_name(r) for r in direct}
    todo = [_dist_name(r) for r in direct if "==" in r]
    out: dict[str, str] = {}
    if not todo:
        return []
    from importlib import metadata  # 10-20 ms to import: only when there is something to pin

    while todo:
        dist = todo.pop()
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            name = _required_name(req)
            if name is None or name in seen or name in _SKIP:
                continue
            seen.add(name)
            version = known.get(name)
            if version is None:
                try:
                    version = metadata.version(name)
                except metadata.PackageNotFoundError:
                    continue
            out[name] = f"{name}=={version}"
            todo.append(name)
    return [out[k] for k in sorted(out)]


def _required_name(req: str) -> str | None:
    """The distribution a Requires-Dist line names, or None when it does not apply here
    (an extra, or a marker false for this interpreter and platform)."""
    name, _, marker = req.partition(";")
    if marker.strip():
        if "extra" in marker:
            return None
        try:
            from packaging.markers import Marker
        except ImportError:  # cannot tell: leave it out rather than pin a wrong one
            return None
        try:
            if not Marker(marker.strip()).evaluate():
                return None
        except Exception:
            return None
    return _dist_name(name.strip())


def _dists_providing(modules: list[str], session_packages: dict[str, str]
                     ) -> dict[str, list[str]]:
    """{top-level module: distributions} covering `modules`. The session's recorded
    distributions are the ones that provided its imports, so their own file lists answer in
    a few reads; only when some module is not among them is every installed distribution
    scanned (`packages_distributions`: a third of a second, more than the rest of an export
    of a scoring cell re-run 20,000 times)."""
    from importlib import metadata  # 10-20 ms to import: only when asked

    found: dict[str, list[str]] = {}
    for dist in session_packages:
        try:
            tops = _tops_of(metadata.distribution(dist))
        except (metadata.PackageNotFoundError, OSError, ValueError):
            continue
        for top in tops:
            found.setdefault(top, []).append(dist)
    if all(m in found for m in modules):
        return found
    return _module_to_dists()


def _tops_of(dist: metadata.Distribution) -> set[str]:
    """The top-level modules a distribution installs: its `top_level.txt`, else the first
    part of each path in its RECORD (as `packages_distributions` infers them)."""
    declared = dist.read_text("top_level.txt")
    if declared:
        return {line.strip() for line in declared.splitlines() if line.strip()}
    tops: set[str] = set()
    for line in (dist.read_text("RECORD") or "").splitlines():
        path = line.rsplit(",", 2)[0].strip('"')
        first, sep, _ = path.partition("/")
        if not sep:  # a module file (`six.py`, `_cffi.cpython-311-x86_64-linux-gnu.so`)
            first = inspect.getmodulename(first) or ""
        if first and "." not in first and first != "__pycache__":
            tops.add(first)
    return tops
