"""`%run script.py args`: which script, with which arguments, in which namespace.

Shared by capture (what the script binds in the notebook) and export (the same run in
`train.py`), so both read the line alike. Pure: no file is opened here.
"""

from __future__ import annotations

import shlex
from typing import NamedTuple


class RunLine(NamedTuple):
    script: str
    argv: list[str]
    interactive: bool  # `-i`: the script runs in the notebook's namespace, reading it


def parse_run_line(line: str) -> RunLine:
    """The script `%run` runs and how; ValueError for what a plain script cannot do the same
    way (`-m module`, the profiler, the debugger, timing, `$` expansion) or a line that names
    no script."""
    if "$" in line or "{" in line:
        raise ValueError(f"%run {line.strip()}: a line IPython expands")
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ValueError(f"%run {line.strip()}: {exc}") from exc
    interactive = False
    while words and words[0].startswith("-"):
        option = words.pop(0)
        if option == "-i":
            interactive = True
        elif option != "-e":  # -e: a SystemExit is not reported; the script runs the same
            raise ValueError(f"%run option {option}")
    if not words or not words[0].endswith(".py"):
        raise ValueError(f"%run {line.strip()}: not a Python script")
    return RunLine(words[0], words[1:], interactive)
