"""Where an export may be written, and writing it all-or-nothing.

Inside the project only, never through `..`, NUL or symlinks; never over files export did
not write (`-o . --force` must not replace a project's own train.py). The files are written
into a temporary folder beside the target and moved into place only once all of them exist,
so a failure leaves the old export (or nothing) rather than half of a new one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ExportExists, UnsafeOutputPath

RUN_JSON = "run.json"
# What an export folder holds; a re-export replaces exactly these.
EXPORT_ENTRIES = ("train.py", "requirements.txt", RUN_JSON, "rng_states.json", "lib",
                  "_mlops_support.py", "_mlops_autolog.py")


def is_export_dir(folder: Path) -> bool:
    """A folder export wrote: its run.json is a readable export manifest."""
    manifest = folder / RUN_JSON
    if manifest.is_symlink() or not manifest.is_file():
        return False
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and "format" in doc and isinstance(doc.get("run_id"), str)


def prepare_out_dir(out_dir: str | os.PathLike[str], *, root: Path, store: Path | None,
                    force: bool, check_root: bool = True) -> Path:
    """The export folder (resolved, not created); UnsafeOutputPath or ExportExists if it
    may not be used."""
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
    if resolved.is_dir() and any(resolved.iterdir()):
        if not is_export_dir(resolved):
            raise ExportExists(
                f"{text!r} holds files export did not write (it has no readable run.json of "
                "an export); export only writes into a new or empty folder or over an earlier "
                "export, even with --force; give another folder")
        if not force:
            raise ExportExists(
                f"{text!r} already holds an export; pass --force (force=True) to replace it")
        for name in EXPORT_ENTRIES:
            if (resolved / name).is_symlink():
                raise UnsafeOutputPath(f"{resolved / name} is a symlink; not written through")
    return resolved


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _checked(name: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UnsafeOutputPath(f"internal: export file name {name!r} is not a plain path")
    return rel


def install_files(out: Path, files: dict[str, bytes]) -> Path:
    """Write `files` ({relative path: bytes}) as the folder `out`, all or nothing."""
    rels = {name: _checked(name) for name in files}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mlops-nb-export-", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the folder follows the umask
        for name, payload in files.items():
            target = tmp / rels[name]
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(payload)
        if not out.exists():
            os.rename(tmp, out)
            return out
        _replace_entries(tmp, out, {r.parts[0] for r in rels.values()})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _replace_entries(new: Path, out: Path, names: set[str]) -> None:
    """Move each top-level entry of `new` over `out`'s (an earlier export or an empty folder);
    a folder export wrote before (lib/) that the new export has not is removed."""
    trash = new / ".replaced"
    trash.mkdir()
    for name in sorted(names | {"lib", "_mlops_autolog.py"}):
        dest = out / name
        if dest.is_symlink() or dest.exists():
            if dest.is_dir() and not dest.is_symlink():
                os.rename(dest, trash / name)
            elif name not in names:
                if not dest.is_symlink():  # an earlier export's autolog the new one lacks
                    os.rename(dest, trash / name)
                continue
        if name in names:
            os.replace(new / name, dest)
