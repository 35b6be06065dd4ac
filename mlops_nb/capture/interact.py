"""Inline `interact` widgets: a slider moved after its cell ran is a run of its own.

`ipywidgets.interact(f, x=(0, 10))` (or `@interact`, `interact_manual`) builds an
`interactive` widget whose `update` calls `f(**values)`. Its first call happens inside the
defining cell and is part of that cell's run. Every later call comes from the frontend's comm
message when the user moves a slider (or clicks "Run Interact"): outside any cell, so IPython
sends no pre/post_run_cell and nothing would be recorded.

After a cell whose code mentions `interact`, the `f` of each `interactive` widget not seen
before is wrapped (through ipywidgets' registry of live widgets, so the order of imports does
not matter). A call outside a cell is recorded as a cell run of the call it amounts to,
`f(x=7)`, with the widget values as its parameters (`Tracker.run_callback`); the export
replays that call. Covered: functions reachable by their own name in the namespace and widget
values that are plain literals (numbers, strings, bools, None, tuples/lists of them).
Not covered: a lambda or an unnamed function, values such as a DataFrame picked in a
Dropdown, `interactive(...)` widgets driven by custom `observe` callbacks.
"""

from __future__ import annotations

import ast
import functools
import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .analysis import is_plain_literal

if TYPE_CHECKING:
    from .recorder import Tracker

_WRAPPED = "_mlops_nb_callback"


def wrap_new_widgets(tracker: Tracker, raw: str) -> None:
    """Wrap the functions of `interactive` widgets created so far (cheap when the cell's
    code does not mention `interact`, or ipywidgets is not loaded)."""
    if "interact" not in raw:
        return
    interaction = sys.modules.get("ipywidgets.widgets.interaction")
    registry = getattr(sys.modules.get("ipywidgets.widgets.widget"), "_instances", None)
    if interaction is None or not isinstance(registry, dict):
        return
    ref = weakref.ref(tracker)
    for w in list(registry.values()):
        if isinstance(w, interaction.interactive) and not hasattr(w.f, _WRAPPED):
            w.f = _wrapped(ref, w.f)


def _wrapped(ref: weakref.ref[Tracker], f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def called(*args: Any, **kwargs: Any) -> Any:
        tracker = ref()
        if tracker is None or args or not tracker.auto or tracker.current_cell is not None:
            return f(*args, **kwargs)  # inside a cell: part of its run
        code = callback_code(tracker.shell.user_ns, f, kwargs)
        if code is None:
            return f(**kwargs)
        return tracker.run_callback(code, kwargs, lambda: f(**kwargs))

    setattr(called, _WRAPPED, f)
    return called


def callback_code(ns: dict[str, Any], f: Callable[..., Any], kwargs: dict[str, Any]
                  ) -> str | None:
    """`f(x=7)`: the call a callback amounts to, by the name `f` has in the namespace; None
    when it has none or a value is not a plain literal."""
    name = getattr(f, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier() or ns.get(name) is not f:
        return None
    if not all(k.isidentifier() and is_plain_literal(v) for k, v in kwargs.items()):
        return None
    code = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    try:
        ast.parse(code)  # `nan` and the like have no literal
    except SyntaxError:
        return None
    return code
