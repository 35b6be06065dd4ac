"""Figures a cell drew, kept as the PNGs the frontend was sent.

Rendering a figure again costs as much as drawing it (seconds for a busy plot), so the PNG the
kernel publishes to the frontend is what we keep. Only when nothing was published (the Agg
backend, a script) are the figures the cell drew or changed rendered here, each within the
per-object budget: a pathological figure is skipped with a warning on the run, never hangs
the kernel, and the cell's own output is untouched.
"""

from __future__ import annotations

import sys
from typing import Any

from .context import CellContext
from .guard import ObjectTimeout, object_budget, time_budget


def open_figures() -> dict[int, Any]:
    """The pyplot figures open before the cell, so a figure it did not touch is not stored."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None:
        return {}
    return {id(m.canvas.figure): m.canvas.figure for m in helpers.Gcf.get_all_fig_managers()}


def note_drawn(ctx: CellContext) -> None:
    """After the cell: remember the figures it drew or changed (rendered only if needed)."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None:
        return
    try:
        for manager in helpers.Gcf.get_all_fig_managers():
            fig = manager.canvas.figure
            key = id(fig)
            if key in ctx.seen_figs:
                continue
            if key in ctx.figs_before and not fig.stale:
                continue
            ctx.seen_figs.add(key)
            ctx.candidates.append(fig)
            fig.stale = False  # seen: only a later change makes it new again
    except Exception as exc:
        ctx.warnings.append(f"figure capture failed: {exc!r}")


def rendered(ctx: CellContext, warnings: list[str]) -> list[bytes]:
    """The cell's figures as PNG bytes: those published, else those it drew, rendered here;
    what went wrong goes to `warnings` (the run's)."""
    if ctx.published or not ctx.candidates:
        return ctx.published
    out = []
    budget = object_budget()
    for fig in ctx.candidates:  # no frontend took them (Agg, a script): render here
        try:
            with time_budget(budget, ObjectTimeout):
                out.append(png(fig))
            fig.stale = False  # stored: only a later change makes it new again
        except ObjectTimeout:
            warnings.append(
                f"a figure was not stored: rendering it took longer than {budget:g} s; "
                "MLOPS_NB_OBJECT_BUDGET sets the limit")
        except KeyboardInterrupt:
            warnings.append("figure capture skipped: interrupted (KeyboardInterrupt)")
            break
        except Exception as exc:
            warnings.append(f"figure capture failed: {exc!r}")
    return out


class DisplayWatch:
    """Wraps the shell's display publisher to keep the PNGs it sends, and to forget those a
    `clear_output` took off the cell's output (a live training plot redrawn each epoch is its
    last frame, not one figure per epoch); unwraps exactly."""

    def __init__(self) -> None:
        self._installed: tuple[Any, list[tuple[str, Any, Any]]] | None = None

    def watch(self, shell: Any, current: Any) -> None:
        """`current()` is the CellContext of the cell now recorded, or None."""
        pub = getattr(shell, "display_pub", None)
        if pub is None or self._installed is not None:
            return
        original = pub.publish

        def publish(data: Any, *args: Any, **kwargs: Any) -> Any:
            ctx = current()
            if ctx is not None and isinstance(data, dict) and data.get("image/png"):
                try:
                    ctx.published.append(png_bytes(data["image/png"]))
                except Exception as exc:
                    ctx.warnings.append(f"figure capture failed: {exc!r}")
            return original(data, *args, **kwargs)

        wrapped = [("publish", original, publish)]
        clear = getattr(pub, "clear_output", None)
        if callable(clear):
            def clear_output(*args: Any, **kwargs: Any) -> Any:
                ctx = current()
                if ctx is not None:  # `wait=True` too: the next output replaces them
                    ctx.published.clear()
                return clear(*args, **kwargs)

            wrapped.append(("clear_output", clear, clear_output))
        for name, _, ours in wrapped:
            setattr(pub, name, ours)
        self._installed = (pub, wrapped)

    def unwatch(self) -> None:
        if self._installed is None:
            return
        pub, wrapped = self._installed
        for name, original, ours in wrapped:
            if pub.__dict__.get(name) is not ours:
                continue  # someone wrapped it after us: theirs stays
            if getattr(original, "__func__", None) is getattr(type(pub), name, None):
                delattr(pub, name)
            else:
                setattr(pub, name, original)
        self._installed = None


def png_bytes(payload: Any) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        data = bytes(payload)
        if data.startswith(b"\x89PNG"):
            return data
        payload = data.decode("ascii")
    import base64

    return base64.b64decode(payload)


def png(fig: Any) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return buf.getvalue()
