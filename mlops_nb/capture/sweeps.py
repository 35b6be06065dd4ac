"""Which `for` loops of a cell are parameter sweeps (one run per iteration).

A notebook sweeps a hyperparameter in many spellings: `for k in [1, 5, 15]`, `for depth in
range(1, 10)`, `for C in np.logspace(-3, 3, 7)`, `for i, alpha in enumerate(alphas)`,
`for a, b in zip(alphas, betas)`, nested loops. A loop over epochs, CV folds or data slices
(`for epoch in range(10)`, `for train, test in kf.split(X)`) is one training run whose
metric has steps. What tells them apart is what the loop variable is used for: a sweep
hands it to a model (`DecisionTreeClassifier(max_depth=depth)`, `set_params(C=c)`,
`PolynomialRegression(degree)`); an epoch counter or fold index is not handed to one.

So a loop over a literal list/tuple, or over a variable, stays a sweep as before (its values
are the point of the loop), and any other loop is a sweep when one of its variables is
passed, alone or in simple arithmetic, as a keyword argument or as an argument of a class-
like call (a capitalised callee) inside the loop.

A loop over models (`for name, model in models.items():`) is a sweep too: its variable is the
model itself, fitted or scored inside the loop (`model.fit(...)`, `cross_val_score(model,
...)`). A fold loop's variables are data handed to a fit, never the object fitted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

# Calls whose keyword arguments are presentation or plumbing, never a model's knob.
_NOT_MODEL_CALLS = frozenset({
    "print", "format", "range", "enumerate", "zip", "len", "str", "int", "float", "round",
    "append", "extend", "plot", "scatter", "bar", "barh", "hist", "errorbar", "fill_between",
    "text", "annotate", "title", "set_title", "xlabel", "ylabel", "set_xlabel", "set_ylabel",
    "legend", "subplot", "subplots", "add_subplot", "figure", "imshow", "axhline", "axvline",
    "savefig", "show", "linspace", "arange", "logspace", "zeros", "ones", "full", "empty",
    "DataFrame", "Series", "array", "asarray", "dict", "list", "tuple", "set", "sorted",
    "isclose", "allclose", "display", "log", "info", "debug", "warning", "write",
})


def _callee(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def _plain_use(expr: ast.expr, names: set[str]) -> set[str]:
    """Loop names in `expr` when it is the name itself or simple arithmetic on it."""
    if isinstance(expr, ast.Name):
        return {expr.id} & names
    if isinstance(expr, ast.BinOp):
        return _plain_use(expr.left, names) | _plain_use(expr.right, names)
    if isinstance(expr, ast.UnaryOp):
        return _plain_use(expr.operand, names)
    if isinstance(expr, ast.Call) and _callee(expr) in ("int", "float", "round"):
        return set().union(*(_plain_use(a, names) for a in expr.args)) if expr.args else set()
    return set()


def _handed_to_model(loop: ast.For, names: set[str]) -> bool:
    for stmt in loop.body:
        for node in ast.walk(stmt):
            if not isinstance(node, ast.Call):
                continue
            callee = _callee(node)
            if callee in _NOT_MODEL_CALLS or not callee:
                continue
            for kw in node.keywords:
                if _plain_use(kw.value, names):  # `max_depth=depth`, `Model(**params)`
                    return True
                if kw.arg is None and isinstance(kw.value, ast.Dict) and any(
                        v is not None and _plain_use(v, names) for v in kw.value.values):
                    return True  # set_params(**{"svc__C": c})
            if callee[:1].isupper() and any(_plain_use(a, names) for a in node.args):
                return True
    return False


# Methods only a model has: a loop variable they are called on is the model being swept.
_MODEL_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit", "score",
                            "predict", "predict_proba", "decision_function", "set_params"})
# Functions whose first argument is the model they evaluate or wrap.
_TAKES_MODEL = frozenset({"cross_val_score", "cross_validate", "cross_val_predict",
                          "permutation_test_score", "learning_curve", "validation_curve",
                          "make_pipeline", "clone"})


def _model_variable(loop: ast.For, names: set[str]) -> bool:
    for stmt in loop.body:
        for node in ast.walk(stmt):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr in _MODEL_METHODS
                    and isinstance(f.value, ast.Name) and f.value.id in names):
                return True
            if _callee(node) in _TAKES_MODEL and any(
                    isinstance(a, ast.Name) and a.id in names for a in node.args[:2]):
                return True
    return False


def _targets(node: ast.For) -> list[str]:
    return [n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)]


# Loop variables that count, whatever they are handed to: `partial_fit(..., epoch=epoch)`.
_COUNTERS = frozenset({"_", "epoch", "epochs", "fold", "folds", "step", "batch", "iteration",
                       "it", "n_iter", "trial", "repeat", "rep"})


# Iterables that are parameter settings whatever the body does with them.
_SETTINGS = frozenset({"ParameterGrid", "ParameterSampler"})


def is_sweep(node: ast.For) -> bool:
    if isinstance(node.iter, (ast.List, ast.Tuple, ast.Name)):
        return True
    if isinstance(node.iter, ast.Call) and _callee(node.iter) in _SETTINGS:
        return True
    names = set(_targets(node)) - _COUNTERS
    return bool(names) and (_handed_to_model(node, names) or _model_variable(node, names))


# The top-level statements a sweep loop can be in (`sweep_loop_targets` looks in no other).
_SWEEP_HOLDERS = (ast.For, ast.If, ast.With, ast.Try)
_SWEEP_HOLDER_TYPES = frozenset(_SWEEP_HOLDERS)


def may_sweep(body: list[ast.stmt]) -> bool:
    """Whether a module with these top-level statements can hold a sweep loop at all: when
    not, its loop targets are known without a walk, or, once IPython has let the tree go,
    without parsing the cell again at its first metric.
    A parse makes nodes of exactly these classes: their types are looked up in one C loop,
    where `isinstance` with four classes asks each missed one for the node's `__class__`,
    and a generator resumes once a statement (together 5% of a 50-statement cell's
    recorder, in simulated cycles)."""
    return not _SWEEP_HOLDER_TYPES.isdisjoint(map(type, body))


def sweep_loops(code: str | ast.AST) -> list[ast.For]:
    """The cell's sweep loops (module level, under if/with/try, nested loops too; not in
    functions or classes), outer first."""
    if isinstance(code, str):
        try:
            tree: ast.AST = ast.parse(code)
        except SyntaxError:
            return []
    else:
        tree = code
    body = tree.body if isinstance(tree, ast.Module) else [tree]
    return [node for node in statements_run_now(s for s in body if isinstance(s, _SWEEP_HOLDERS))
            if isinstance(node, ast.For) and is_sweep(node)]


def statements_run_now(body: Iterable[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement of `body` that runs when it does, outer first: those of its loops,
    branches, `with`, `try` and `match` blocks too, not of the functions and classes it
    defines (they run when called). Statements only: a loop or a `print(...)` statement is
    never inside an expression."""
    stack = list(body)
    while stack:
        node = stack.pop(0)
        yield node
        if type(node) not in _COMPOUND:  # most statements: nothing inside to look at
            continue
        for name in _STATEMENT_LISTS:
            inner = getattr(node, name, None)
            if inner:
                stack.extend(inner)
        for handler in getattr(node, "handlers", ()) or ():
            stack.extend(handler.body)
        for case in getattr(node, "cases", ()) or ():
            stack.extend(case.body)


# The statement lists a compound statement holds, and the statements that hold them (not a
# function's or class's body: its loops run when it is called).
_STATEMENT_LISTS = ("body", "orelse", "finalbody")
_COMPOUND = frozenset({ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith,
                       ast.Try, *((ast.TryStar,) if hasattr(ast, "TryStar") else ()),
                       *((ast.Match,) if hasattr(ast, "Match") else ())})


def sweep_loop_targets(code: str | ast.AST) -> list[str]:
    """Names bound by the cell's sweep loops, in order."""
    return loop_targets(sweep_loops(code))


def loop_targets(loops: list[ast.For]) -> list[str]:
    return list(dict.fromkeys(n for loop in loops for n in _targets(loop)))


def sweep_loop_metrics(code: str | ast.AST) -> list[str]:
    """Metric-named variables the bodies of the cell's sweep loops bind, in order: what an
    iteration computed without a metric function scikit-learn's autolog sees (`auc =
    evaluate(params, df)`, a mean over folds of the `roc_auc_score` calls it does see)."""
    return loop_metrics(sweep_loops(code))


def loop_metrics(loops: list[ast.For]) -> list[str]:
    from ..metrics import is_metric_name

    names = [n for loop in loops for stmt in loop.body for n in bound_names(stmt)]
    return [n for n in dict.fromkeys(names) if is_metric_name(n)]


def loop_models(loops: list[ast.For]) -> list[str]:
    """Variables the sweep loops' bodies may hold an iteration's model in: those they bind
    (`m = Ridge(alpha=a).fit(X, y)`), call a model's method on (`model.set_params(C=c)`) or
    hand to a cross-validation (`cross_val_score(clf, ...)`); not the loops' own variables,
    which name their iterations. Which of them hold a model is seen as the loop runs."""
    names: list[str] = []
    for loop in loops:
        for stmt in loop.body:
            names.extend(bound_names(stmt))
            for node in ast.walk(stmt):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                if (isinstance(f, ast.Attribute) and f.attr in _MODEL_METHODS
                        and isinstance(f.value, ast.Name)):
                    names.append(f.value.id)
                elif _callee(node) in _TAKES_MODEL and node.args and isinstance(
                        node.args[0], ast.Name):
                    names.append(node.args[0].id)
    targets = set(loop_targets(loops))
    return [n for n in dict.fromkeys(names) if n not in targets]


def bound_names(stmt: ast.stmt) -> list[str]:
    out: list[str] = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr)):
            targets = [node.target]
        for target in targets:
            out.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        stack.extend(ast.iter_child_nodes(node))
    return out


def loop_value(value: object) -> object:
    """`np.arange`/`np.linspace` yield numpy scalars: the plain number is the parameter."""
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        try:
            return value.item()  # type: ignore[attr-defined]
        except Exception:
            return value
    return value
