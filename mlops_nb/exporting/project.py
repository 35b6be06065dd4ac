"""The notebook's own modules in an export: which ones the slice needs, and their files.

The recorder kept each project module's source (a blob) with its hash when it was first
imported. The export needs the modules the slice imports, the packages they sit in, and the
project modules those import in turn; they go under `lib/` laid out by module name, so the
same `import` statements work once `lib/` is first on `sys.path`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..records import CellRun
from ..store.blobs import BlobStore, blob_hash

LIB_DIR = "lib"


@dataclass
class ModuleFile:
    name: str
    path: str  # inside the export, e.g. lib/homemade/linear_regression.py
    hash: str
    size: int
    recorded_file: str
    sys_path: str | None
    source: bytes

    def manifest(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "hash": self.hash, "size": self.size,
                "recorded_file": self.recorded_file, "sys_path_entry": self.sys_path}


def recorded_modules(log: list[CellRun], upto_seq: int) -> dict[str, dict[str, Any]]:
    """The latest record of each project module as of the run, by module name."""
    found: dict[str, dict[str, Any]] = {}
    for cr in log:
        if cr.seq > upto_seq or cr.parent is not None:
            continue
        for m in cr.modules:
            if (isinstance(m, dict) and isinstance(m.get("name"), str)
                    and isinstance(m.get("hash"), str)
                    and all(p.isidentifier() for p in m["name"].split("."))):
                found[m["name"]] = m
    return found


def earlier_versions(log: list[CellRun], seqs: Iterable[int], shipped: dict[str, str]
                     ) -> list[tuple[str, int, int]]:
    """(module, seq of a slice cell, seq the version it ran under was recorded) for each
    slice cell that ran while another version of a shipped module than the one shipped was
    loaded: a helper edited and reloaded (`%autoreload`) after the cells that built the
    features ran, then only the model cell re-run. The script has one version of each module
    to import; the cells that ran under another one may replay differently."""
    history: dict[str, list[tuple[int, str]]] = {}
    for cr in log:
        if cr.parent is not None:
            continue
        for m in cr.modules:
            if isinstance(m, dict) and m.get("name") in shipped and isinstance(m.get("hash"),
                                                                                 str):
                history.setdefault(m["name"], []).append((cr.seq, m["hash"]))
    out: list[tuple[str, int, int]] = []
    for name, versions in sorted(history.items()):
        versions.sort()
        for seq in sorted(set(seqs)):
            # the cell that imported a version is not told: it loads whichever it is given
            in_effect = [(at, digest) for at, digest in versions if at <= seq]
            if in_effect and in_effect[-1][1] != shipped[name] and in_effect[-1][0] != seq:
                out.append((name, seq, in_effect[-1][0]))
    return out


def imported_tops(source: bytes, package: str | None = None) -> set[str]:
    """Top-level names a module imports; its relative imports resolve into `package`'s top
    (none without one). Capture closes over them alike for modules loaded before `%load_ext`."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                out.add(node.module.split(".")[0])
            elif node.level and package:
                out.add(package.split(".")[0])
    return out


def needed_modules(tops: set[str], recorded: dict[str, dict[str, Any]], blobs: BlobStore,
                   warnings: list[str]) -> list[ModuleFile]:
    """The project modules under the top-level names `tops`, and what they import, closed.

    A module recorded outside site-packages is copied even when an (editable) installed
    package provides the same name: the copy is the code that ran."""
    chosen: dict[str, ModuleFile] = {}
    todo = sorted(tops)
    done: set[str] = set()
    while todo:
        top = todo.pop()
        if top in done:
            continue
        done.add(top)
        for name, m in sorted(recorded.items()):
            if name != top and not name.startswith(top + "."):
                continue
            mf = _module_file(name, m, blobs, warnings)
            if mf is None:
                continue
            chosen[name] = mf
            package = name if m.get("package") else name.rpartition(".")[0] or None
            todo.extend(t for t in imported_tops(mf.source, package) - done
                        if t in {n.split(".")[0] for n in recorded})
    return [chosen[n] for n in sorted(chosen)]


def _module_file(name: str, m: dict[str, Any], blobs: BlobStore, warnings: list[str]
                 ) -> ModuleFile | None:
    digest = m["hash"]
    try:
        source = blobs.get(digest)
    except (OSError, ValueError):
        source = None
    if source is None or blob_hash(source) != digest:
        warnings.append(f"module {name}: its recorded source {digest[:12]} is missing from the "
                        "store; not copied, the script may fail to import it")
        return None
    parts = name.split(".")
    rel = "/".join([*parts, "__init__.py"] if m.get("package") else [*parts[:-1],
                                                                     parts[-1] + ".py"])
    file = m.get("file") if isinstance(m.get("file"), str) else ""
    entry = m.get("sys_path") if isinstance(m.get("sys_path"), str) else None
    return ModuleFile(name, f"{LIB_DIR}/{rel}", digest, len(source), file, entry, source)


def star_names(recorded: dict[str, dict[str, Any]], blobs: BlobStore
               ) -> dict[str, frozenset[str] | None]:
    """What `from m import *` binds, for each recorded project module (None: cannot tell)."""
    out: dict[str, frozenset[str] | None] = {}
    for name, m in recorded.items():
        try:
            source = blobs.get(m["hash"])
            tree = ast.parse(source)
        except (OSError, ValueError, SyntaxError):
            out[name] = None
            continue
        out[name] = public_names(tree)
    return out


def public_names(tree: ast.Module) -> frozenset[str] | None:
    """`__all__` when it is a literal, else the top-level names not starting with `_`."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                try:
                    value = ast.literal_eval(node.value) if node.value else None
                except ValueError:
                    return None
                return frozenset(str(v) for v in value) if isinstance(value, (list, tuple)) \
                    else None
        for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try, ast.With)) else [node]:
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                for t in targets:
                    names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                for a in sub.names:
                    if a.name == "*":
                        return None  # re-exports another module's names
                    names.add(a.asname or a.name.split(".")[0])
    return frozenset(n for n in names if not n.startswith("_"))
