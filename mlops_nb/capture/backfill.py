"""Back-fill: cells run while tracking was off still shaped the namespace, so they are
recorded from IPython's history when tracking (re)starts; without them a later run's lineage
would have holes and its export would miss code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

_CONTROL_PREFIXES = ("%track", "%load_ext", "%reload_ext", "%unload_ext")


def is_control_cell(raw: str) -> bool:
    """A cell that only drives mlops-nb itself (`%track on`, `%load_ext mlops_nb`): every
    line that is not blank or a comment is such a magic. Checked before every cell, so it
    stops at the first line that is not (usually the first), without splitting the cell:
    the first line's text starts where the leading whitespace ends."""
    head = raw.lstrip()
    if not head.startswith("#") and (not head.startswith(_CONTROL_PREFIXES)
                                     or head.startswith("%%")):
        return not head  # True only for a blank cell, as the loop below finds too
    for ln in raw.splitlines():
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        if not ln.startswith(_CONTROL_PREFIXES) or ln.startswith("%%"):
            return False
        if "mlops_nb" not in ln and not ln.startswith("%track"):
            return False
    return True


def history_cells(shell: Any, after: int, upto: int,
                  transform: Callable[[str], str]) -> Iterator[tuple[int, str, str]]:
    """(execution count, raw text, Python) of the inputs `after+1 .. upto` in the shell's
    history, control cells left out."""
    hm = getattr(shell, "history_manager", None)
    if hm is None:
        return
    raw_hist = hm.input_hist_raw
    parsed_hist = hm.input_hist_parsed
    for n in range(after + 1, min(upto, len(raw_hist) - 1) + 1):
        raw = raw_hist[n]
        if is_control_cell(raw):
            continue
        code = parsed_hist[n] if n < len(parsed_hist) else transform(raw)
        yield n, raw, code
