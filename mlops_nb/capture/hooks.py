"""Where the recorder plugs into IPython, and how it unplugs exactly.

Three events (`pre_run_cell`, `post_execute` first in line so figures are seen before the
inline backend closes them, `post_run_cell`) and one wrapper around the compiler's `ast_parse`
that keeps the cell's own parse. Installing is idempotent: `%reload_ext` and `%track on`
twice leave one set of hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .pinned_builtins import pin_builtins

if TYPE_CHECKING:
    from .recorder import Tracker


class ParseHook:
    """Keeps the module IPython parses for a cell, so we never parse a cell twice.

    It wraps the shell's compiler `ast_parse` rather than joining `ast_transformers`: any
    transformer makes IPython run `ast.fix_missing_locations` over every cell, which alone
    cost 0.3 ms per 50-statement cell, tracked or not.
    """

    def __init__(self, tracker: Tracker, original: Any) -> None:
        self.tracker = tracker
        self.original = original

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tree = self.original(*args, **kwargs)
        self.tracker.parsed(tree, args[0] if args else kwargs.get("source"))
        return tree


def parses_through(tracker: Tracker) -> bool:
    """Whether the shell's next parse reaches `tracker.parsed`: our hook is the compiler's
    (no one swapped the compiler or wrapped its parse since)."""
    hook = tracker.shell.compile.__dict__.get("ast_parse")
    return isinstance(hook, ParseHook) and hook.tracker is tracker


def install(tracker: Tracker) -> None:
    """Register the tracker's event handlers and the parse hook once.

    The recorder's modules get their builtins pinned here, before its code runs in a cell
    (pinned_builtins.py): pinned later, the change to each module's dict would make the
    lookups CPython cached by then miss for some fifty calls each."""
    uninstall(tracker)
    pin_builtins()
    shell = tracker.shell
    ev = shell.events
    ev.register("pre_run_cell", tracker.pre_run_cell)
    ev.register("post_run_cell", tracker.post_run_cell)
    ev.callbacks["post_execute"].insert(0, tracker.post_execute)
    compiler = shell.compile
    compiler.ast_parse = ParseHook(tracker, compiler.ast_parse)


def uninstall(tracker: Tracker) -> None:
    """Remove every handler and parse hook of this tracker; others' hooks stay."""
    shell = tracker.shell
    ev = shell.events
    for name, fn in (
        ("pre_run_cell", tracker.pre_run_cell),
        ("post_run_cell", tracker.post_run_cell),
        ("post_execute", tracker.post_execute),
    ):
        callbacks = ev.callbacks.get(name, [])
        while fn in callbacks:
            callbacks.remove(fn)
    compiler = shell.compile
    hook = compiler.__dict__.get("ast_parse")
    while isinstance(hook, ParseHook) and hook.tracker is tracker:
        # Ours is outermost: unwrap. (Wrapped by someone else later, ours stays inert.)
        if getattr(hook.original, "__func__", None) is type(compiler).ast_parse:
            del compiler.ast_parse  # back to the class's own method
        else:
            compiler.ast_parse = hook.original
        hook = compiler.__dict__.get("ast_parse")
