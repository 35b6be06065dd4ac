"""Builtins bound as globals of mlops-nb's own modules, so the recorder's lookups of `len`,
`isinstance` or `getattr` stay cached from one cell to the next.

IPython changes the builtins module around every cell: its `BuiltinTrap` deletes `exit` and
`quit` and adds `get_ipython` when a cell starts, and undoes both when it ends. Each change
gives the builtins dict a new keys version, and CPython (3.11 on) caches a builtin's lookup
(`LOAD_GLOBAL_BUILTIN`) against that version. Code that runs a few times per cell, as the
recorder's does, misses that cache at every builtin it names, takes the generic lookup (two
dict probes) and counts towards re-specialising an instruction that misses again next cell:
11% of the recorder's instructions on a fit-and-score cell (callgrind). A builtin found among
a module's globals is cached against that module's dict instead, which cells do not change.

Only builtin functions and classes are bound, and none that others replace while a kernel
runs: `open` (capture/io_watch.py wraps it during a cell), `print`, `input`, `help`,
`breakpoint`, and IPython's `exit`, `quit`, `get_ipython` and `display`. A module's own
definition of a name always wins.
"""

from __future__ import annotations

import builtins
import sys
import types
from typing import Any

_REPLACED = frozenset({"open", "print", "input", "help", "breakpoint", "exit", "quit",
                       "get_ipython", "display"})


def pinnable() -> dict[str, Any]:
    """The builtins that are safe to bind once: functions and classes nobody replaces."""
    return {name: value for name, value in vars(builtins).items()
            if not name.startswith("_") and name not in _REPLACED
            and isinstance(value, (type, types.BuiltinFunctionType))}


def pin_builtins(package: str = "mlops_nb") -> int:
    """Bind `pinnable()` into every loaded submodule of `package` that lacks the name; the
    package's own namespace (what `import mlops_nb as mnb` shows) is left as it is.
    Idempotent. Returns the number of modules that gained names."""
    names = pinnable()
    prefix = package + "."
    changed = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith(prefix) or not isinstance(module, types.ModuleType):
            continue
        space = vars(module)
        missing = names.keys() - space.keys()
        if missing:
            space.update({key: names[key] for key in missing})
            changed += 1
    return changed
