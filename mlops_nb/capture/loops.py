"""Loop iterations as runs: inside a sweep (`for lr in [0.1, 0.01]:`, `for depth in
range(1, 10):`, which loops are sweeps is decided in sweeps.py) each iteration's metrics become
a child run of the loop's cell run, with the loop variables as its parameters.

An iteration starts when the loop variables change; a metric repeated with the same values (an
epoch or fold loop inside the sweep) keeps its last value. The RNG state at each log is kept
so iteration k can be replayed from where iteration k-1 ended.

A loop variable may hold a model (`for name, model in models.items():`): the iteration keeps
its class and hyper-parameters, by which the export finds that item of the loop again.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from .analysis import is_plain_literal
from .context import CellContext
from .rng import RngWatcher
from .sweeps import loop_value, sweep_loop_metrics, sweep_loop_targets
from .values import jsonable, metric_value, numeric_scalar


def note_iteration(ctx: CellContext, ns: dict[str, Any], key: str, stored: Any,
                   code: Callable[[], str]) -> None:
    """A metric `key` was logged: file it under the current iteration (or start one).

    `code()` gives the cell's Python, analysed once per cell for its sweep loop targets.
    """
    if ctx.loop_names is None:
        try:
            tree = ast.parse(code())
        except (SyntaxError, ValueError):
            tree = ast.Module([], [])
        ctx.loop_names = sweep_loop_targets(tree)
        if ctx.loop_names:
            ctx.loop_metrics = sweep_loop_metrics(tree)
    if not ctx.loop_names:
        return
    values = {n: loop_value(ns[n]) for n in ctx.loop_names if n in ns}
    models = {n: v for n, v in values.items() if _is_model(v)}
    if not values or not all(n in models or is_plain_literal(v) for n, v in values.items()):
        return
    literal = {n: jsonable(v) for n, v in values.items() if n not in models}
    which = (literal, {n: id(v) for n, v in models.items()})
    cur = ctx.iterations[-1] if ctx.iterations else None
    if cur is None or cur["which"] != which:
        _file_bound_metrics(ctx, ns, cur)  # what the iteration that ended bound
        cur = {"which": which, "loop": literal, "models": {n: model_record(v)
                                                       for n, v in models.items()},
               "metrics": {}, "rng_after": None}
        ctx.iterations.append(cur)
    cur["metrics"][key] = stored
    watcher = RngWatcher()  # every state, and the generator objects the cell names
    cur["rng_after"] = {**watcher.changed_states(), **watcher.object_states(ctx.raw, ns)}


def _is_model(value: object) -> bool:
    """Anything the loop can fit: scikit-learn's estimators, and the notebook's own baseline
    class or another library's model without `get_params` (its class then tells the loop's
    items apart). Without it, such an item's metrics were filed under no iteration, and a
    loop over a baseline and a forest came out as one run with both models' metrics."""
    return not isinstance(value, type) and callable(getattr(value, "fit", None))


def model_record(model: Any) -> dict[str, Any]:
    """{'class', 'params'} as namespace.read_estimators records a fitted estimator."""
    params: dict[str, Any] = {}
    if callable(getattr(model, "get_params", None)):
        try:
            params = {k: jsonable(v) for k, v in model.get_params(deep=True).items()
                      if is_plain_literal(v)}
        except Exception:
            params = {}
    cls = type(model)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "params": params}


def _file_bound_metrics(ctx: CellContext, ns: dict[str, Any],
                        it: dict[str, Any] | None) -> None:
    """File under iteration `it` the metric-named variables the loop body bound in it
    (`auc = evaluate(params, df)`): a variable holding the object it held when last looked
    at was not bound again. `it` None (the first iteration starts): what they hold before
    the loop is only remembered."""
    for name in ctx.loop_metrics:
        value = ns.get(name)
        if ctx.loop_metric_seen.get(name, _UNSEEN) is value:
            continue
        ctx.loop_metric_seen[name] = value
        if it is not None and numeric_scalar(value) is not None:
            it["metrics"].setdefault(name, metric_value(value)[0])


_UNSEEN = object()


def recorded_iterations(ctx: CellContext, ns: dict[str, Any]) -> list[dict[str, Any]]:
    """The iterations that become runs: a loop that logged in one iteration only is the cell.
    The last iteration gets the metric-named variables it bound once the cell has ended."""
    if ctx.iterations:
        _file_bound_metrics(ctx, ns, ctx.iterations[-1])
    return ctx.iterations if len(ctx.iterations) > 1 else []


def rename_metrics(ctx: CellContext, renames: dict[str, str]) -> None:
    """Give autologged series their final names once the cell ended (see build.apply_autolog)."""
    for it in ctx.iterations:
        it["metrics"] = {renames.get(k, k): v for k, v in it["metrics"].items()
                         if k in renames or not k.startswith("\0")}  # dropped: not kept


def series_key(call: Any) -> str:
    """An autologged series' key until the cell ends and names are chosen."""
    return "\0" + repr((call.fn, call.site, call.data))
