"""What a cell's `%run script.py` binds in the notebook, read from the script itself.

IPython runs the script in a fresh namespace and then copies its globals into the notebook's
(`-i`: runs it in the notebook's namespace). A later cell that calls a function the script
defined depends on the `%run` cell; without the script's names that function looked like
hidden state and the export was refused. The script is read once the cell has ended (or when
it is back-filled), when the file-read watcher is not collecting: IPython's own read of it
during the cell is the one the watcher records.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from ..run_line import parse_run_line
from ..store.blobs import blob_hash
from .analysis import CellAnalysis, analyze

MAX_SCRIPT_BYTES = 4 << 20


def with_run_scripts(analysis: CellAnalysis, cwd: str
                     ) -> tuple[CellAnalysis, list[dict[str, Any]]]:
    """`analysis` with the names its `%run` scripts bind added to its definitions (and,
    for `-i`, the names they read or change to its uses and mutations), and each script as a
    file the cell read (as the file-read watcher records one), which the export checks and
    redirects like data: a `%run` back-filled from before `%track on` was not watched.
    Unchanged when the cell runs no script, or none can be read (run from elsewhere,
    removed since)."""
    if not analysis.run_lines:
        return analysis, []
    defs = list(analysis.defs)
    uses = list(analysis.uses)
    imports = list(analysis.imports)  # its modules: recorded like the cell's own imports
    mutations = list(analysis.mutations)
    hard = list(analysis.hard_mutations)
    counts = dict(analysis.def_counts)
    reads: list[dict[str, Any]] = []
    for line in analysis.run_lines:
        try:
            run = parse_run_line(line)
        except ValueError:
            continue
        full = os.path.abspath(os.path.join(cwd, os.path.expanduser(run.script)))
        data = _read(full)
        if data is None:
            continue
        try:
            script = analyze(data.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        reads.append({"given": run.script, "path": full, "rel": os.path.relpath(full, cwd),
                      "via": "%run", "hash": blob_hash(data),
                      "size": len(data)})
        imports += [m for m in script.imports if m not in imports]
        if run.interactive:  # it reads, and may change, what the notebook holds
            uses += [u for u in script.uses if u not in counts and u not in uses]
            changed = [m for m in script.mutations if m not in counts and m not in mutations]
            mutations += changed
            hard += changed
        for name in script.defs:
            if name not in counts:
                defs.append(name)
            counts[name] = counts.get(name, 0) + 1
    return dataclasses.replace(analysis, defs=defs, uses=uses, imports=imports,
                               mutations=mutations, hard_mutations=hard,
                               def_counts=counts), reads


def _read(path: str) -> bytes | None:
    try:
        if os.stat(path).st_size > MAX_SCRIPT_BYTES:
            return None
        return Path(path).read_bytes()
    except OSError:
        return None
