"""The notebook's own modules: imported from the project's tree, not from site-packages.

`sys.path.append("../code")` then `from utils import prep`, or a package two folders up: the
export needs those files, exactly as they were when the run happened. At each recorded cell
the modules imported since the last look are sorted into library modules (stdlib,
site-packages: they become requirements) and project modules, whose source is kept as a blob
with its hash, its path relative to the `sys.path` entry it was found under, and that entry.
Only new modules are examined, and only when `sys.modules` grew; known project modules are
re-hashed when their file changes and the kernel ran it again (an edit `%autoreload` or
`importlib.reload` picked up: `loaded_code`). An edit saved but not reloaded is not what the
kernel runs: the source recorded stays the one it imported, until a reload.

Modules loaded before `%load_ext mlops_nb` are not all the kernel's: a notebook that gets
mlops-nb added below its imports cell (`sys.path.insert(0, "../src")`, `from mypkg import
prep`) imported its own modules first. Those are taken up when a recorded cell, back-filled
or live, imports them by name (`adopt`), with the modules they import in turn; a module
nobody imports by name (a test runner's own) is never recorded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from types import FunctionType
from typing import Any

from ..store.blobs import blob_hash
from .io_watch import is_library_path

MAX_SOURCE_BYTES = 4 << 20
_SKIP_TOP = frozenset({"mlops_nb", "__main__", "__mp_main__"})


def _layout(name: str, file: str) -> tuple[str, str, bool] | None:
    """(root folder, path under it, is a package) when `file` is where `name` lives."""
    parts = name.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    package = os.path.basename(file) == "__init__.py"
    rel_parts = [*parts, "__init__.py"] if package else [*parts[:-1], parts[-1] + ".py"]
    rel = os.path.join(*rel_parts)
    if not file.endswith(os.sep + rel):
        return None
    return file[: -len(rel) - 1] or os.sep, rel, package


def _sys_path_entry(root: str, cwd: str) -> str | None:
    """The `sys.path` entry (as the kernel had it) that `root` was found under."""
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        full = os.path.abspath(os.path.join(cwd, entry)) if entry else cwd
        if full == root:
            return entry
    return None


def loaded_code(module: Any) -> tuple[Any, ...]:
    """What the kernel runs of a module, by identity: its functions' code objects, its own
    classes' methods' code, and its other values. Running the file again changes them, however
    it is done: `importlib.reload` makes new objects, IPython's `%autoreload` may instead patch
    the changed functions' code and values into the objects already there."""
    try:
        space = vars(module)
    except TypeError:
        return ()
    name = space.get("__name__")
    out: list[Any] = []
    for key, value in list(space.items()):
        if key.startswith("__"):
            continue
        if isinstance(value, FunctionType):
            out.append(value.__code__)
        elif isinstance(value, type) and value.__module__ == name:
            out.append(value)
            out.extend(f.__code__ for f in list(vars(value).values())
                       if isinstance(f, FunctionType))
        else:
            out.append(value)
    return tuple(out)


def _executed_again(module: Any, before: tuple[Any, ...] | None) -> bool:
    """Did the kernel run the module's file again since its source was read? An edit saved
    without a reload leaves what it runs as it was."""
    if before is None:
        return True
    now = loaded_code(module)
    return len(now) != len(before) or any(a is not b for a, b in zip(now, before, strict=True))


class ProjectModules:
    """What has been seen of `sys.modules` so far in this kernel."""

    def __init__(self) -> None:
        # What was loaded before `%load_ext mlops_nb` is the kernel's own machinery (or, under
        # a test runner, the test modules), not the notebook's code: the notebook imports its
        # modules in cells that run after the extension is loaded.
        self._seen: set[str] = set(sys.modules)
        # ... but the notebook may have imported some before: what a recorded cell imports
        # by name from these is looked at then (`adopt`), once each
        self._before: set[str] = set(self._seen)
        self._count = -1
        # name -> (file, mtime_ns, size, what the kernel ran of it when its source was read)
        self._known: dict[str, tuple[str, int, int, tuple[Any, ...] | None]] = {}
        self._library_tops: set[str] = set()

    def scan(self) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
        """(module records new or changed since the last scan, their sources by blob hash)."""
        found: list[dict[str, Any]] = []
        blobs: dict[str, bytes] = {}
        modules = sys.modules
        candidates: list[str] = []
        if len(modules) != self._count:
            self._count = len(modules)
            new = [n for n in list(modules) if n not in self._seen]
            self._seen.update(new)
            candidates = [n for n in new if n.split(".")[0] not in _SKIP_TOP]
        for name, (file, mtime, size, code) in list(self._known.items()):
            try:
                st = os.stat(file)
            except OSError:
                continue
            if (st.st_mtime_ns, st.st_size) != (mtime, size) and name not in candidates \
                    and _executed_again(modules.get(name), code):
                candidates.append(name)
        cwd = os.getcwd() if candidates else ""  # a system call: only when needed
        for name in candidates:
            top = name.partition(".")[0]
            if top in self._library_tops:
                continue  # numpy.linalg... once numpy is known to be installed
            record = self._record(name, modules.get(name), cwd, blobs)
            if record is not None:
                found.append(record)
        return found, blobs

    def adopt(self, imports: Iterable[str]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
        """(module records, sources) of the project modules loaded before `%load_ext` that a
        cell imports by name (`analysis.imports`: `a.b` for `import a.b` and `from a.b import
        c`), their packages' modules, and the project modules those import, closed. Each one
        is looked at once; a relative import (`.x`) names nothing here."""
        before = self._before
        if not before:
            return [], {}
        todo = [name.split(".")[0] for name in imports if name and name[0] != "."]
        todo = [top for top in todo if top in before]
        if not todo:
            return [], {}
        from ..exporting.project import imported_tops  # the export closes over them alike

        found: list[dict[str, Any]] = []
        blobs: dict[str, bytes] = {}
        cwd = os.getcwd()
        modules = sys.modules
        while todo:
            top = todo.pop()
            if top not in before or top in _SKIP_TOP or top in self._library_tops:
                continue
            names = sorted(n for n in before if n == top or n.startswith(top + "."))
            before.difference_update(names)
            for name in names:  # the package first (sorted): an installed one ends it
                record = self._record(name, modules.get(name), cwd, blobs)
                if top in self._library_tops:
                    break
                if record is None:
                    continue
                found.append(record)
                todo.extend(t for t in imported_tops(blobs[record["hash"]]) if t in before)
        return found, blobs

    def loaded(self, *, unscanned: bool = False) -> list[Any]:
        """The project modules in `sys.modules`: those recorded so far and, with `unscanned`,
        those imported since the last scan that it will record (found by their file alone;
        `%track on` after cells that ran untracked). Never a library module."""
        modules = sys.modules
        found = [m for m in map(modules.get, self._known) if m is not None]
        if not unscanned or len(modules) == self._count:
            return found
        for name in [n for n in list(modules) if n not in self._seen]:
            if name.split(".")[0] in _SKIP_TOP or name in self._known:
                continue
            module = modules.get(name)
            try:
                file = vars(module).get("__file__")
            except TypeError:
                continue
            if (isinstance(file, str) and file.endswith(".py")
                    and not is_library_path(os.path.abspath(file))
                    and _layout(name, os.path.abspath(file)) is not None):
                found.append(module)
        return found

    def _record(self, name: str, module: Any, cwd: str, blobs: dict[str, bytes]
                ) -> dict[str, Any] | None:
        # The module's own dict: a lazy module's __getattr__ would import things.
        try:
            file = vars(module).get("__file__")
        except TypeError:  # not a module (a few packages put other objects in sys.modules)
            return None
        if not isinstance(file, str) or not file.endswith(".py"):
            return None
        file = os.path.abspath(file)
        if is_library_path(file):
            if "." not in name:
                self._library_tops.add(name)
            return None
        layout = _layout(name, file)
        if layout is None:
            return None
        root, rel, package = layout
        try:
            st = os.stat(file)
            if st.st_size > MAX_SOURCE_BYTES:
                return None
            with open(file, "rb") as fh:
                source = fh.read()
        except OSError:
            return None
        self._known[name] = (file, st.st_mtime_ns, st.st_size, loaded_code(module))
        digest = blob_hash(source)
        blobs[digest] = source
        return {"name": name, "file": file, "root": root, "rel": rel.replace(os.sep, "/"),
                "package": package, "hash": digest, "size": len(source),
                "sys_path": _sys_path_entry(root, cwd)}
