"""Loop iterations as runs: inside a sweep (`for lr in [0.1, 0.01]:`, `for depth in
range(1, 10):`, which loops are sweeps is decided in sweeps.py) each iteration's metrics become
a child run of the loop's cell run, with the loop variables as its parameters.

An iteration starts when the loop variables change; a metric repeated with the same values (an
epoch or fold loop inside the sweep) keeps its last value. The RNG state at each log is kept
so iteration k can be replayed from where iteration k-1 ended.

A loop variable may hold a model (`for name, model in models.items():`): the iteration keeps
its class and hyper-parameters, by which the export finds that item of the loop again.

Metrics come from two places: autolog's calls and `log_metric` (`note_iteration`, as they
happen), and the metric-named variables the loop's body binds (`val_loss = train(lr)`), read
when an iteration ends. For the second, a sweep loop binding such a variable iterates in the
kernel through `sweep`, which the recorder put in place of its iterable in IPython's parse of
the cell (`rewrite_sweeps`): the only way to see an iteration end without tracing.
"""

from __future__ import annotations

import ast
import contextlib
import weakref
from collections.abc import Callable
from typing import Any

from .analysis import is_plain_literal
from .context import CellContext
from .rng import RngWatcher
from .sweeps import bound_names, loop_metrics, loop_models, loop_targets, loop_value, sweep_loops
from .values import jsonable, metric_value, numeric_scalar


def note_iteration(ctx: CellContext, ns: dict[str, Any], key: str, stored: Any,
                   code: Callable[[], str], model: Any = None,
                   model_name: str | None = None) -> None:
    """A metric `key` was logged: file it under the current iteration (or start one).

    `code()` gives the cell's Python, analysed once per cell for its sweep loop targets.
    `model` made the metric (autolog saw its `score`, or traced its predictions): the
    iteration's model, under its variable's name or, made in the call (`Ridge(alpha=a)
    .fit(X, y).score(...)`), its class's.
    """
    cur = _current(ctx, ns, code, ended=False)
    if cur is None:
        return
    if model is not None:
        _metric_model(cur, model, model_name)
    cur["metrics"][key] = stored
    cur["marked"] = False
    _rng_after(ctx, ns, cur)


def mark_iteration(ctx: CellContext, ns: dict[str, Any], code: Callable[[], str]) -> None:
    """An iteration of a sweep loop the recorder rewrote (`sweep`) has ended: the metric-named
    variables its body bound are its metrics, with no metric function called at all
    (`val_loss = train(lr)` in PyTorch or numpy)."""
    cur = _current(ctx, ns, code, ended=True)
    if cur is None:
        return
    _file_bound_metrics(ctx, ns, cur)
    _rng_after(ctx, ns, cur)


def _current(ctx: CellContext, ns: dict[str, Any], code: Callable[[], str], *,
             ended: bool) -> dict[str, Any] | None:
    """The iteration the loop variables' values name, started if new. A switch seen at a
    metric log (not `ended`) is the next iteration's start: the variables still hold what
    the one before bound, filed under it; seen at an iteration's end they are the new one's."""
    if ctx.loop_names is None:
        try:
            tree = ast.parse(code())
        except (SyntaxError, ValueError):
            tree = ast.Module([], [])
        found = sweep_loops(tree)
        ctx.loop_names = loop_targets(found)
        if ctx.loop_names:
            ctx.loop_metrics, ctx.loop_models = loop_metrics(found), loop_models(found)
    if not ctx.loop_names:
        return None
    values = {n: loop_value(ns[n]) for n in ctx.loop_names if n in ns}
    models = {n: v for n, v in values.items() if _is_model(v)}
    if not values or not all(n in models or is_plain_literal(v) for n, v in values.items()):
        return None
    literal = {n: jsonable(v) for n, v in values.items() if n not in models}
    which = (literal, {n: id(v) for n, v in models.items()})
    cur = ctx.iterations[-1] if ctx.iterations else None
    if cur is None or cur["which"] != which:
        stale: dict[str, Any] = {}
        if not ended:
            _file_bound_metrics(ctx, ns, cur)  # what the iteration that ended bound
        if cur is not None:
            if ctx.loop_models:
                stale = _file_ended_models(ctx, ns, cur)
            cur["held"] = {}  # its models are not kept alive for the rest of the loop
        cur = {"which": which, "loop": literal, "models": {n: model_record(v)
                                                       for n, v in models.items()},
               "metrics": {}, "rng_after": None, "marked": ended, "held": dict(models),
               "stale": stale}
        ctx.iterations.append(cur)
    if ctx.loop_models:
        _body_models(ctx, ns, cur)
    return cur


def _metric_model(cur: dict[str, Any], model: Any, name: str | None) -> None:
    if any(v is model for v in cur["held"].values()):
        return
    name = name if name and name.isidentifier() else type(model).__name__
    if name not in cur["models"]:
        _file_model(cur, name, model)


def _file_model(cur: dict[str, Any], name: str, value: Any) -> None:
    """`value`, held by `name`, is one of the iteration's models when it can be fitted."""
    if name.isidentifier() and _is_model(value):
        cur["held"][name] = value
        cur["models"][name] = model_record(value)


def _body_models(ctx: CellContext, ns: dict[str, Any], cur: dict[str, Any]) -> None:
    """The models the iteration's body fitted (`m = Ridge(alpha=a).fit(X, y)`), as they are
    when its metrics are logged or it ends: without them each iteration's run showed the
    hyper-parameters of the loop's last model, which the cell's run has (`m.alpha=10.0` beside
    `a=0.1`), and no model. Read again only when the variable holds another object; not
    while it still holds the model the iteration before bound after its metrics (`stale`)."""
    stale = cur.get("stale")
    for name in ctx.loop_models:
        value = ns.get(name)
        if value is None or cur["held"].get(name) is value:
            continue
        if stale and name in stale:
            if stale[name]() is value:
                continue
            del stale[name]  # bound again: this iteration's from now on
        _file_model(cur, name, value)


def _file_ended_models(ctx: CellContext, ns: dict[str, Any],
                       ended: dict[str, Any]) -> dict[str, Any]:
    """File under the iteration that `ended` the body's variables holding a model its
    metrics were made by: bound after them (`m, s = fit_eval(a)` returns the model its
    `r2_score` measured), so seen only once the next iteration logs (or the cell ends).
    Read as the next iteration's, each iteration showed the one before's hyper-parameters
    (`alpha=1 · m.alpha=0.01`). A variable bound before the metrics (`m = Ridge(alpha=a)
    .fit(...)`, the usual order) holds the new iteration's model by then, not one of these,
    so it is left to that iteration. Returns those variables, weakly, for the next iteration
    to pass over until they are bound again."""
    made = list(ended["held"].values())
    stale: dict[str, Any] = {}
    if not made:
        return stale
    for name in ctx.loop_models:
        value = ns.get(name)
        if value is None or not any(value is v for v in made):
            continue
        if ended["held"].get(name) is not value:
            _file_model(ended, name, value)
        with contextlib.suppress(TypeError):  # not weakly referable: the next may take it
            stale[name] = weakref.ref(value)
    return stale


def _rng_after(ctx: CellContext, ns: dict[str, Any], cur: dict[str, Any]) -> None:
    watcher = RngWatcher()  # every state, and the generator objects the cell names
    cur["rng_after"] = {**watcher.changed_states(), **watcher.object_states(ctx.raw, ns)}


# A loop longer than this is going over data, not settings: the iterations only its ends
# made are dropped, and its later iterations are not marked at all.
MAX_SWEEP_ITERATIONS = 100
# The recorder's callbacks while a tracked cell runs, for `sweep`: (begin, end, overflow).
SWEEP_HOOKS: list[Any] = [None]


def sweep(iterable: Any) -> Any:
    """Stands for the iterable of a sweep loop whose body binds metric-named variables (the
    recorder rewrites `for lr in lrs:` to iterate through this, in the kernel only: the
    recorded code and the export are the notebook's). It yields the same items; after each
    iteration's body, and when `break` or an error leaves the loop, it tells the recorder the
    iteration ended. The cell it started in is passed back: a generator closed later (a
    traceback kept its frame) must not mark another cell's loop."""
    hooks = SWEEP_HOOKS[0]
    cell = _call(hooks[0]) if hooks is not None else None
    for n, item in enumerate(iterable):
        try:
            yield item
        except GeneratorExit:  # `break`, or an error in the body: this iteration ended
            if hooks is not None and n < MAX_SWEEP_ITERATIONS:
                _call(hooks[1], cell)
            raise
        if hooks is not None and n < MAX_SWEEP_ITERATIONS:
            _call(hooks[1], cell)
        elif hooks is not None and n == MAX_SWEEP_ITERATIONS:
            _call(hooks[2], cell)


def _call(hook: Callable[..., Any], *args: Any) -> Any:
    with contextlib.suppress(Exception):  # capture must never break the user's loop
        return hook(*args)
    return None


def begin_sweep(ctx: CellContext, ns: dict[str, Any]) -> None:
    """A rewritten loop starts: what its metric variables hold now is the session's, not an
    iteration's."""
    if not ctx.iterations:
        _file_bound_metrics(ctx, ns, None)


def drop_marked(ctx: CellContext) -> None:
    """A rewritten loop ran past MAX_SWEEP_ITERATIONS: the iterations only its ends made go."""
    ctx.iterations = [it for it in ctx.iterations if not it.get("marked")]


def rewrite_sweeps(found: list[ast.For], metrics: list[str]) -> int:
    """Make the cell's sweep loops (`sweeps.sweep_loops`) whose bodies bind any of `metrics`
    iterate through `sweep`. Returns how many loops were rewritten."""
    wanted = set(metrics)
    count = 0
    for loop in found:
        if wanted.intersection(n for stmt in loop.body for n in bound_names(stmt)):
            rewritten = _through_sweep(loop.iter)
            try:  # what IPython compiles next must compile: else the loop stays as written
                compile(ast.Expression(rewritten), "<mlops-nb sweep>", "eval")
            except Exception:
                continue
            loop.iter = rewritten
            count += 1
    return count


def _through_sweep(iterable: ast.expr) -> ast.expr:
    """`__import__('mlops_nb.capture.loops', fromlist=['sweep']).sweep(<iterable>)`: no name
    the notebook could have rebound, deleted or `%reset`; at the iterable's place in the
    cell, so a traceback points where it did."""
    def at(node: Any) -> Any:
        return ast.copy_location(node, iterable)

    module = at(ast.Call(at(ast.Name("__import__", ast.Load())), [at(ast.Constant(__name__))],
                         [at(ast.keyword("fromlist", at(ast.List([at(ast.Constant("sweep"))],
                                                                 ast.Load()))))]))
    return at(ast.Call(at(ast.Attribute(module, "sweep", ast.Load())), [iterable], []))


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


_UNSEEN = object()  # a variable not looked at yet in this cell


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


def recorded_iterations(ctx: CellContext, ns: dict[str, Any]) -> list[dict[str, Any]]:
    """The iterations that become runs: a loop that logged in one iteration only is the cell.
    The last iteration gets the metric-named variables it bound once the cell has ended."""
    if ctx.sweep_overflow:
        drop_marked(ctx)
    elif ctx.iterations:
        _file_bound_metrics(ctx, ns, ctx.iterations[-1])
        if ctx.loop_models:  # what the last iteration bound after its metrics
            _file_ended_models(ctx, ns, ctx.iterations[-1])
    if ctx.loop_metrics:  # the names the notebook gave first, as a cell's own run has them
        for it in ctx.iterations:
            mine = {k: v for k, v in it["metrics"].items() if k in ctx.loop_metrics}
            it["metrics"] = {**mine, **it["metrics"]}
    return ctx.iterations if len(ctx.iterations) > 1 else []


def rename_metrics(ctx: CellContext, renames: dict[str, str]) -> None:
    """Give autologged series their final names once the cell ended (see build.apply_autolog)."""
    for it in ctx.iterations:
        it["metrics"] = {renames.get(k, k): v for k, v in it["metrics"].items()
                         if k in renames or not k.startswith("\0")}  # dropped: not kept


def series_key(call: Any) -> str:
    """An autologged series' key until the cell ends and names are chosen."""
    return "\0" + repr((call.fn, call.site, call.data))
