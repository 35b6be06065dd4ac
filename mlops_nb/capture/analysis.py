"""What a cell does to the namespace, read from its AST alone.

Pure: no IPython, no namespace, so it is tested on strings and reused by export and the CLI.
The rules are deliberately conservative where Python cannot be known statically: calling a
method on a name, storing into its subscript or attribute, augmented assignment and `del` all
count as mutating it, because missing a mutation makes lineage (and so an export) wrong, while
an extra one only makes a slice longer. Each call site is kept too, so the recorder can drop
a method-call mutation once it knows the receiver's type and the method is annotated pure
(`clf.score(X, y)`, `df.head()`: see effects.py).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from ..varexpand import names_used
from .effects import ARG_MUTATORS, VIEW_METHODS

# Cell magics whose body is Python run in the user namespace: analyse the body as the cell.
PYTHON_BODY_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
PYTHON_ARG_LINE_MAGICS = frozenset({"time", "timeit", "prun"})

_READ_CALL = re.compile(r"^(read_[a-z0-9_]+|load|loadtxt|genfromtxt|fromfile|open|imread)$")
_WRITE_CALL = re.compile(
    r"^(to_[a-z0-9_]+|savefig|save|savez|savez_compressed|savetxt|dump|imsave|tofile)$"
)


@dataclass(frozen=True)
class FunctionEffects:
    """Globals a notebook-defined function touches when called, followed by lineage."""

    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    mutates: frozenset[str] = frozenset()


class CallSite(NamedTuple):
    """One call in a cell, as far as mutation analysis needs it (see effects.py). A named
    tuple: a cell has many, built between the user's cells, and a frozen dataclass sets each
    field through `object.__setattr__`.

    `receiver` is the name the callee hangs off (`df` in `df["a"].sum()`), None for a call of
    a plain name (`len(df)`, whose name is `func`); `direct` when the callee is exactly
    `receiver.func`; `args` the names whose objects are passed in; `inplace` when the call
    says `inplace=True` or `out=`. `maker` is the class name of `Model(...).fit(X, y)`, a
    method called on a fresh constructor call whose arguments are only constants and names
    (`maker_args`) and none named `copy*`; None otherwise.
    """

    receiver: str | None
    func: str
    direct: bool = True
    args: tuple[str, ...] = ()
    inplace: bool = False
    maker: str | None = None
    maker_args: tuple[str, ...] = ()


@dataclass
class CellAnalysis:
    defs: list[str] = field(default_factory=list)
    uses: list[str] = field(default_factory=list)
    mutations: list[str] = field(default_factory=list)
    # Mutations not explained by a method call alone (stores, `del`, `+=`, `shuffle(a)`): the
    # others are dropped at record time when the call is annotated pure (effects.py).
    hard_mutations: list[str] = field(default_factory=list)
    # Every name bound at cell level, with how often, and every name mutated anywhere in the
    # cell, even right after the cell bound it: what decides if a literal can be a parameter.
    def_counts: dict[str, int] = field(default_factory=dict)
    mutated_any: list[str] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    import_names: list[str] = field(default_factory=list)  # names bound by `import` (modules)
    # How often each name is read from the namespace (a widget read only by `x = w.value`)
    load_counts: dict[str, int] = field(default_factory=dict)
    star_imports: list[str] = field(default_factory=list)
    magics: list[str] = field(default_factory=list)
    # The argument lines of the cell's `%run` magics: what the scripts bind is read from
    # their files when the cell is recorded (capture/run_scripts.py)
    # (a tuple: no container per cell for what few cells have)
    run_lines: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    functions: dict[str, FunctionEffects] = field(default_factory=dict)
    files_read: list[str] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    value_reads: dict[str, str] = field(default_factory=dict)  # `x = w.value`: {x: w}
    # `b = a`, `b = a.x`, `b = a[0]` at top level: (b, a), b may be the very same object as a
    aliases: list[tuple[str, str]] = field(default_factory=list)
    syntax_error: str | None = None


# What the lineage index reads of a cell that defines no function, binds no alias, module or
# widget value: nothing beyond its record. Shared, never changed.
NO_EFFECTS = CellAnalysis()


def for_lineage(analysis: CellAnalysis) -> CellAnalysis:
    """The analysis a record keeps until the writer thread adds it to the lineage index
    (`SessionLog.add`): `NO_EFFECTS` for the commonest cell, where the index would read
    nothing of it. Then the cell's own analysis (its calls, counts, dozens of containers) is
    freed as the cell ends instead of when the writer next runs, which in back-to-back cells
    is after the next cell's parse: held that long, it brought the garbage collector's
    count over its threshold in every second 50-statement cell's parse."""
    if (analysis.functions or analysis.aliases or analysis.import_names
            or analysis.value_reads):
        return analysis
    return NO_EFFECTS


def is_plain_literal(value: Any) -> bool:
    """Numbers, strings, bools, None, and lists/tuples/dicts of them: what counts as a param."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain_literal(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int, float, bool)) and is_plain_literal(v)
                   for k, v in value.items())
    return False


def _json_form(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_json_form(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_form(v) for k, v in value.items()}
    return value


_NOT_PLAIN = object()  # what `_plain_value` gives for a node that is not a plain literal
_SIGNED = (ast.USub, ast.UAdd)
_Name, _Constant, _Load, _BinOp = ast.Name, ast.Constant, ast.Load, ast.BinOp
_List, _Tuple, _Dict, _UnaryOp = ast.List, ast.Tuple, ast.Dict, ast.UnaryOp
_Attribute, _Call = ast.Attribute, ast.Call
_tuple_new = tuple.__new__  # a named tuple built without its Python-level `__new__`
_PLAIN_CONSTANTS = (bool, int, float, str)  # with None: the constants that are parameters
_PLAIN_KEYS = (str, int, float, bool)
_LITERAL_NODES = frozenset({ast.List, ast.Tuple, ast.Dict, ast.UnaryOp})
_NOT_INPUTS = ("get_ipython", "__builtins__")


def _plain_value(node: ast.AST) -> Any:
    """What `ast.literal_eval` gives for a plain literal (numbers, strings, bools, None, and
    lists, tuples, dicts of them), built straight from the nodes; `_NOT_PLAIN` for anything
    else, including what literal_eval could evaluate but `is_plain_literal` rejects (complex
    numbers, sets, bytes, a tuple as a key). A sentinel, not an exception: most containers
    on a right-hand side hold names (`items = [a, b]`), and raising out of the walk for each
    of them was a twentieth of the recorder's time on such cells."""
    cls = type(node)
    if cls is _Constant:
        value = node.value  # type: ignore[attr-defined]
        if value is None or isinstance(value, _PLAIN_CONSTANTS):
            return value
        return _NOT_PLAIN
    if cls is _List or cls is _Tuple:
        items = []
        for elt in node.elts:  # type: ignore[attr-defined]
            value = _plain_value(elt)
            if value is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(value)
        return items if cls is _List else tuple(items)
    if cls is _Dict:
        keys = node.keys  # type: ignore[attr-defined]
        values = node.values  # type: ignore[attr-defined]
        if len(keys) != len(values):
            return _NOT_PLAIN
        out = {}
        for key_node, value_node in zip(keys, values, strict=True):
            if key_node is None:  # `{**other}`
                return _NOT_PLAIN
            key = _plain_value(key_node)
            if not isinstance(key, _PLAIN_KEYS):  # None, a tuple or a list as a key
                return _NOT_PLAIN
            value = _plain_value(value_node)
            if value is _NOT_PLAIN:
                return _NOT_PLAIN
            out[key] = value
        return out
    if cls is _UnaryOp and isinstance(node.op, _SIGNED):  # type: ignore[attr-defined]
        operand = node.operand  # type: ignore[attr-defined]
        # literal_eval signs a number constant only: not `-True`, `-(-1)` or `-x`
        if type(operand) is _Constant and type(operand.value) in (int, float):
            return -operand.value if isinstance(node.op, ast.USub) else +operand.value  # type: ignore[attr-defined]
    return _NOT_PLAIN  # BinOp (complex numbers only), sets, calls, names...


def _literal(node: ast.AST) -> tuple[bool, Any]:
    """(True, its JSON form) when `node` is a plain literal, the way `ast.literal_eval` then
    `is_plain_literal` would judge it (tests/test_analysis.py holds the two equal)."""
    if type(node) is _Constant:  # the common case
        value = node.value  # type: ignore[attr-defined]
        ok = value is None or isinstance(value, _PLAIN_CONSTANTS)
        return ok, (value if ok else None)
    if type(node) not in _LITERAL_NODES:
        return False, None  # a name, a call, arithmetic: what most right-hand sides are
    try:
        value = _plain_value(node)
    except (RecursionError, MemoryError):
        return False, None
    if value is _NOT_PLAIN:
        return False, None
    return True, _json_form(value)


def _root_name(node: ast.AST) -> str | None:
    """`a` for `a`, `a.b`, `a[0].c`: the name an attribute/subscript chain hangs off.

    A chain through a call result (`f().x`, `open(p).read`) has no root: what the call returns
    is not a name of the namespace; the call itself is analysed on its own.
    """
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _maker(func: ast.expr) -> tuple[str | None, tuple[str, ...]]:
    """(`Model`, names passed) for a callee `Model(C=C, n=3).method`; (None, ()) for any
    other callee, or when a constructor argument is not a constant or a name, is `**`-spread,
    or is named `copy*` (`copy_X=False` lets `fit` work in its input)."""
    inner = func.value if isinstance(func, ast.Attribute) else None
    if not (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)):
        return None, ()
    names: list[str] = []
    for kw in inner.keywords:
        if kw.arg is None or kw.arg.startswith("copy"):
            return None, ()
    for value in (*inner.args, *(kw.value for kw in inner.keywords)):
        if isinstance(value, ast.Name):
            names.append(value.id)
        elif not isinstance(value, ast.Constant):
            return None, ()
    return inner.func.id, tuple(names)


def _magic_call(node: ast.Call) -> tuple[str, str, list[ast.expr]] | None:
    """('line'|'cell'|'system', magic name, args) for `get_ipython().run_*_magic(...)` calls."""
    func = node.func
    if not (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "get_ipython"
    ):
        return None
    if func.attr in ("run_line_magic", "run_cell_magic") and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            kind = "line" if func.attr == "run_line_magic" else "cell"
            return kind, first.value, list(node.args[1:])
    if func.attr in ("system", "getoutput"):
        return "system", "!", list(node.args)
    return None


def _capture_output_name(line: str) -> str | None:
    """The variable `%%capture [--no-stdout] [--no-stderr] [--no-display] out` assigns."""
    import shlex

    try:
        words = shlex.split(line)
    except ValueError:
        return None
    names = [w for w in words if not w.startswith("-") and w.isidentifier()]
    return names[0] if names else None


class _CellVisitor(ast.NodeVisitor):
    """Walks top-level statements in execution order, separating reads before writes."""

    def __init__(self, out: CellAnalysis) -> None:
        self.out = out
        self.defined: set[str] = set()
        self._uses: dict[str, None] = {}
        self._muts: dict[str, None] = {}
        self._hard: dict[str, None] = {}
        self._any_mut: dict[str, None] = {}
        self._loads = out.load_counts
        # every name bound, in the order first bound: the cell's defs are its keys
        self._def_counts = out.def_counts
        # The top-level statement being visited: its bindings (literal parameters, widget
        # reads, aliases, lambdas) are read in the same pass. Lambdas bound at top level are
        # kept apart and win over a `def` of the same name, whatever the order.
        self.top: ast.AST | None = None
        self.lambdas: dict[str, FunctionEffects] = {}
        # The keywords of constructor-like calls that run now, found in this walk as
        # `constructor_keywords` finds them: (owner, callee, keyword), in the order visited.
        # `_owner` is the name the top-level statement binds its call to, while it applies
        # (not below a constructor-like call, whose arguments are keyed by their own
        # callee); `_not_now` counts the bodies that walk skips (a def's decorators and
        # defaults, a class's bases, a lambda's defaults, a magic's parsed body).
        self.keywords: list[tuple[str | None, str, ast.keyword]] = []
        self._owner: str | None = None
        self._owner_call: ast.AST | None = None
        self._not_now = 0
        # `constructor_keywords` must walk the cell itself: it has code this visitor does
        # not descend into and that walk does (comprehensions, annotations, a magic's
        # arguments)...
        self.must_walk = False
        # ... or visited in another order than that walk's (an assignment's subscripted
        # target after its value, `a[i][j]`'s indices inner last), which matters once two
        # keywords were found (the first of a key wins, and the parameters keep their order)
        self.reordered = False

    # NodeVisitor builds a method name string and looks it up for every node; this runs
    # between the user's cells, so dispatch through a per-class table instead.
    _dispatch: ClassVar[dict[type, Any]] = {}

    def visit(self, node: ast.AST) -> Any:
        cls = node.__class__
        if cls is _Name:  # most nodes are names and constants: no dispatch for them
            if node.ctx.__class__ is _Load:  # type: ignore[attr-defined]
                self.use(node.id)  # type: ignore[attr-defined]
            else:
                self.visit_Name(node)  # type: ignore[arg-type]
            return None
        if cls is _Constant:
            return None
        method = self._dispatch.get(cls)
        if method is None:
            method = getattr(type(self), "visit_" + cls.__name__, type(self).generic_visit)
            self._dispatch[cls] = method
        return method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        for field_name in node._fields:
            value = getattr(node, field_name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    def visit_Constant(self, node: ast.Constant) -> None:
        pass

    # The commonest expressions, visited as `generic_visit` would (fields in order) without
    # a dispatch per context or operator node, which records nothing.
    def visit_BinOp(self, node: ast.BinOp) -> None:
        left, right = node.left, node.right
        cls = left.__class__  # `a * 2 + b`: the operands are mostly names, constants and
        if cls is _Name:      # more arithmetic; a name is always a load in an expression
            name = left.id  # type: ignore[attr-defined]
            loads = self._loads  # `use`, inlined
            loads[name] = loads.get(name, 0) + 1
            if name not in self.defined:
                self._uses.setdefault(name)
        elif cls is _BinOp:
            self.visit_BinOp(left)  # type: ignore[arg-type]
        elif cls is not _Constant:
            self.visit(left)
        cls = right.__class__
        if cls is _Name:
            self.use(right.id)  # type: ignore[attr-defined]
        elif cls is _BinOp:
            self.visit_BinOp(right)  # type: ignore[arg-type]
        elif cls is not _Constant:
            self.visit(right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        self.visit(node.operand)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        for value in node.values:
            self.visit(value)

    def visit_Compare(self, node: ast.Compare) -> None:
        self.visit(node.left)
        for value in node.comparators:
            self.visit(value)

    def visit_List(self, node: ast.List | ast.Tuple | ast.Set) -> None:
        for elt in node.elts:
            self.visit(elt)

    visit_Tuple = visit_Set = visit_List

    def visit_Expr(self, node: ast.Expr) -> None:
        self.visit(node.value)

    # f-strings (`print(f"acc: {acc:.3f}")`) and dict displays are in most real cells: their
    # fields visited as `generic_visit` would, in the same order, without its `getattr`s.
    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        for value in node.values:
            if value.__class__ is not _Constant:
                self.visit(value)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        self.visit(node.value)
        if node.format_spec is not None:
            self.visit(node.format_spec)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key in node.keys:
            if key is not None:
                self.visit(key)
        for value in node.values:
            self.visit(value)

    # -- recording ----------------------------------------------------------------------------
    def use(self, name: str) -> None:
        counts = self._loads
        counts[name] = counts.get(name, 0) + 1
        if name not in self.defined:
            self._uses.setdefault(name)

    def define(self, name: str) -> None:
        counts = self._def_counts
        counts[name] = counts.get(name, 0) + 1
        self.defined.add(name)

    def mutate(self, name: str, *, by_call: bool = False) -> None:
        # Mutating what this cell itself just bound (`m = Model(); m.fit(X)`) changes nothing
        # that came from earlier cells: it is not an input, and lineage must not say it is.
        self._any_mut.setdefault(name)
        if name in self.defined:
            return
        self.use(name)
        self._muts.setdefault(name)
        if not by_call:
            self._hard.setdefault(name)

    def finish(self) -> None:
        for found in (self._uses, self._muts, self._hard):
            for name in _NOT_INPUTS:  # what IPython's own code reads: no cell's input
                if name in found:
                    del found[name]
        self.out.defs = list(self._def_counts)
        self.out.uses = list(self._uses)
        self.out.mutations = list(self._muts)
        self.out.hard_mutations = list(self._hard)
        self.out.mutated_any = list(self._any_mut)
        params = self.out.params
        if params and self._any_mut:
            # `results = {}` then `results[name] = ...`, `total = 0` then `total += score`:
            # the literal is not the value the run had, an accumulator, not a setting
            for name in self._any_mut:
                params.pop(name, None)

    # -- statements ---------------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        value = node.value
        cls = value.__class__  # the commonest values without a dispatch
        if cls is _BinOp:
            self.visit_BinOp(value)  # type: ignore[arg-type]
        elif cls is _Call:
            targets = node.targets
            if node is self.top and len(targets) == 1 and targets[0].__class__ is _Name:
                self._owner = targets[0].id  # type: ignore[attr-defined]
                self._owner_call = value
                self.visit_Call(value)  # type: ignore[arg-type]
                self._owner = self._owner_call = None
            else:
                self.visit_Call(value)  # type: ignore[arg-type]
        elif cls is _Name:
            self.use(value.id)  # type: ignore[attr-defined]
        elif cls is not _Constant:
            self.visit(value)
        targets = node.targets
        if len(targets) == 1 and targets[0].__class__ is _Name:  # `x = ...`: most statements
            name = targets[0].id  # type: ignore[attr-defined]
            counts = self._def_counts  # `define`, inlined
            counts[name] = counts.get(name, 0) + 1
            self.defined.add(name)
            if node is not self.top:
                return
            if cls is _Constant:  # `lr = 0.1`: what `_bind_name` makes of it, inlined
                literal = value.value  # type: ignore[attr-defined]
                if (literal is None or isinstance(literal, _PLAIN_CONSTANTS)) and \
                        not name.startswith("_"):
                    self.out.params[name] = literal
            elif cls in _BINDING_VALUES:
                _bind_name(self.out, name, value, self.lambdas)
            return
        for target in targets:
            self._store_target(target)
        if node is self.top:
            _bind_targets(self.out, targets, value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.must_walk = True  # the annotation is not visited
        if node.value is not None:
            self.visit(node.value)
            self._store_target(node.target)
            if node is self.top:
                _bind_pair(self.out, node.target, node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        root = _root_name(node.target)
        if isinstance(node.target, ast.Name):
            self.mutate(node.target.id)
            self.define(node.target.id)
        elif root is not None:
            self.reordered = True  # the target after the value: that walk goes the other way
            self._visit_subexprs(node.target)
            self.mutate(root)
        else:
            self.must_walk = True  # `f().x += 1`: the target is not visited

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.define(node.target.id)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.mutate(target.id)
                self.defined.discard(target.id)
            else:
                root = _root_name(target)
                self._visit_subexprs(target)
                if root is not None:
                    self.mutate(root)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._store_target(node.target)
        for stmt in (*node.body, *node.orelse):
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._store_target(item.optional_vars)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.define(node.name)
        for stmt in node.body:
            self.visit(stmt)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.out.imports.append(alias.name)
            bound = alias.asname or alias.name.split(".")[0]
            self.out.import_names.append(bound)
            self.define(bound)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        self.out.imports.append(module)
        for alias in node.names:
            if alias.name == "*":
                self.out.star_imports.append(module)
            else:
                self.out.import_names.append(alias.asname or alias.name)
                self.define(alias.asname or alias.name)

    def visit_Global(self, node: ast.Global) -> None:
        pass

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._not_now += 1
        for deco in node.decorator_list:
            self.visit(deco)
        self._visit_defaults(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self._not_now -= 1
        self.out.functions[node.name] = function_effects(node)
        self.define(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._not_now += 1
        for expr in (*node.decorator_list, *node.bases, *(k.value for k in node.keywords)):
            self.visit(expr)
        self._not_now -= 1
        # A class body runs now; its methods run later and are treated like lambdas: their
        # free names count as uses now, which over-approximates safely.
        effects = _free_names_of_body(node.body, set())
        for name in sorted(effects.reads):
            self.use(name)
        for name in sorted(effects.mutates | effects.writes):
            self.mutate(name)
        self.define(node.name)

    # -- expressions --------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.use(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.define(node.id)
        else:
            self.mutate(node.id)

    def visit_Call(self, node: ast.Call) -> None:
        # Calls are most of a real cell's statements: the callee's name and root are found
        # once here, for the parameter test too (`call_param_target`, which it inlines), and
        # a name argument is counted without a call per name.
        func = node.func
        fcls = func.__class__
        # `x().m(...)`: a magic, or a method called on a fresh constructor call (`maker`)
        chained = fcls is _Attribute and func.value.__class__ is _Call  # type: ignore[attr-defined]
        if chained:
            magic = _magic_call(node)  # `get_ipython().run_line_magic(...)`
            if magic is not None:
                if node.keywords or any(type(a) is not ast.Constant for a in node.args):
                    self.must_walk = True
                self._visit_magic(*magic)
                return
        keywords = node.keywords
        inplace = bool(keywords) and any(
            kw.arg == "out" or (kw.arg == "inplace" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False))
            for kw in keywords)
        args = node.args
        if fcls is _Attribute:
            inner = func.value  # type: ignore[attr-defined]
            direct = inner.__class__ is _Name
            root = inner.id if direct else _root_name(inner)
            name = func.attr  # type: ignore[attr-defined]
        else:
            root = None
            direct = fcls is _Name
            name = func.id if direct else ""  # type: ignore[attr-defined]
        owner = self._owner
        if name and _param_callee(name, root):  # what `call_param_target` finds
            # `constructor_keywords`' rule, in its order: this call's keywords before those
            # of the calls below it, which are keyed by their own callee
            if keywords and not self._not_now:
                key = None if (name in PARAM_FUNCTIONS and node is self._owner_call) else owner
                found = self.keywords
                for kw in keywords:
                    if kw.arg is not None and kw.arg not in PLOT_KEYWORDS:
                        found.append((key, name, kw))
            self._owner = None
        if fcls is _Attribute:
            if not direct:
                self._visit_subexprs(func)
            if root is not None:
                self.mutate(root, by_call=not inplace)
        elif direct:
            self.use(name)
        else:
            self.visit(func)
        if args and args[0].__class__ is _Constant and name:
            self._note_file_call(name, node)
        loads, defined, uses = self._loads, self.defined, self._uses
        roots: dict[str, None] = {}  # the names the arguments are rooted at, in order, once
        for arg in args:
            cls = arg.__class__
            if cls is _Name:
                used = arg.id  # type: ignore[attr-defined]
                loads[used] = loads.get(used, 0) + 1  # `use`, inlined
                if used not in defined:
                    uses.setdefault(used)
                roots[used] = None
                continue
            if cls is not _Constant:
                self.visit(arg)
                r = _root_name(arg.value if cls is ast.Starred else arg)  # type: ignore[attr-defined]
                if r is not None:
                    roots[r] = None
        for kw in keywords:
            self.visit(kw.value)
            if kw.arg == "out":  # `np.add(a, b, out=c)` writes into c
                for target in ast.walk(kw.value):
                    if isinstance(target, ast.Name):
                        self.mutate(target.id)
            r = _root_name(kw.value)
            if r is not None:
                roots[r] = None
        maker, maker_args = _maker(func) if chained else (None, ())
        self.out.calls.append(_tuple_new(CallSite, (root, name, direct, tuple(roots), inplace,
                                                    maker, maker_args)))
        if name in ARG_MUTATORS and args:  # `rng.shuffle(a)` changes `a`
            first = _root_name(args[0])
            if first is not None:
                self.mutate(first)
        self._owner = owner

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._not_now += 1
        self._visit_defaults(node.args)
        self._not_now -= 1
        self._use_free(node)

    def _visit_comprehension(self, node: ast.AST) -> None:
        self.must_walk = True
        self._use_free(node)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comprehension

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._visit_subexprs(node)
            root = _root_name(node)
            if root is not None:
                self.mutate(root)
        else:
            self.visit(node.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._visit_subexprs(node)
            root = _root_name(node)
            if root is not None:
                self.mutate(root)
        else:
            self.visit(node.value)
            self.visit(node.slice)

    # -- helpers ------------------------------------------------------------------------------
    def _store_target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.define(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._store_target(elt)
        elif isinstance(target, ast.Starred):
            self._store_target(target.value)
        else:
            self.reordered = True  # `d[f(x)] = ...`: visited after the value, walked before it
            self.visit(target)

    def _visit_subexprs(self, node: ast.AST) -> None:
        """Visit what a chain like `a[i].b` evaluates besides its root name: the indices, and
        whatever non-name expression (a call) the chain starts from."""
        visited = 0  # two or more: visited innermost last, where that walk takes it first
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Subscript):
                self.visit(node.slice)
                visited += 1
            node = node.value
        if not isinstance(node, ast.Name):
            self.visit(node)
            visited += 1
        if visited > 1:
            self.reordered = True

    def _visit_defaults(self, args: ast.arguments) -> None:
        for default in (*args.defaults, *(d for d in args.kw_defaults if d is not None)):
            self.visit(default)

    def _use_free(self, node: ast.AST) -> None:
        effects = _free_names_of_body([node], set())
        for name in sorted(effects.reads):
            self.use(name)
        for name in sorted(effects.mutates):
            self.mutate(name)

    def _visit_magic(self, kind: str, name: str, args: list[ast.expr]) -> None:
        self.out.magics.append(name)
        texts = [a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if kind == "line" and name in ("env", "set_env") and texts:  # `%env DATA=$root`
            for used in names_used(texts[0]):
                self.use(used)
        if kind == "line" and name == "run" and texts:
            self.out.run_lines = (*self.out.run_lines, texts[0])
        body: str | None = None
        if kind == "cell" and name in PYTHON_BODY_CELL_MAGICS and len(texts) == 2:
            body = texts[1]
        elif kind == "line" and name in PYTHON_ARG_LINE_MAGICS and texts:
            body = texts[0]
        if body is None:
            return
        try:
            tree = ast.parse(body)
        except SyntaxError:
            return
        if name == "timeit":
            # IPython times the body inside a function of its own: what it assigns stays
            # there, so the cell binds none of it (a later cell reading `acc` depends on
            # the cell that did bind it); it reads and changes the namespace's objects only
            effects = _free_names_of_body(tree.body, set())
            for used in sorted(effects.reads):
                self.use(used)
            for changed in sorted(effects.mutates | effects.writes):
                self.mutate(changed)
            self.out.params.update(_timed_literals(tree.body))  # the run's, in there
            return
        self._not_now += 1  # the body is a string to the walk of the cell's constructors
        top = self.top
        for stmt in tree.body:  # its statements are the cell's: `%%time` then `lr = 0.1`
            self.top = stmt
            self.visit(stmt)
        self.top = top
        self._not_now -= 1
        if kind == "cell" and name == "capture":
            # `%%capture out` binds `out` once the body ran: later cells parse `out.stdout`
            out = _capture_output_name(texts[0])
            if out is not None:
                self.define(out)

    def _note_file_call(self, fname: str, node: ast.Call) -> None:
        if not node.args:
            return
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            return
        path = first.value
        if fname == "open":
            mode = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "mode"), None
            )
            text_mode = mode.value if isinstance(mode, ast.Constant) else "r"
            if isinstance(text_mode, str) and any(c in text_mode for c in "wax+"):
                self.out.files_written.append(path)
            else:
                self.out.files_read.append(path)
        elif _READ_CALL.match(fname):
            self.out.files_read.append(path)
        elif _WRITE_CALL.match(fname):
            self.out.files_written.append(path)


def _arg_names(args: ast.arguments) -> set[str]:
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    return names


def _local_names(body: list[ast.AST], params: set[str]) -> tuple[set[str], set[str]]:
    """(locals, declared globals) of a function body, not descending into nested scopes."""
    declared_global: set[str] = set()
    assigned: set[str] = set(params)
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            assigned.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            assigned.add(node.name)
            continue
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    assigned.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            assigned.add(node.name)
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return assigned - declared_global, declared_global


def _timed_literals(body: list[ast.stmt]) -> dict[str, Any]:
    """`lr = 0.1` in a `%%timeit` body: a setting of the code it times, so the cell's run
    has it, though the name stays in IPython's function; an accumulator (`total = 0` then
    `total += 1`) is not one, as in a plain cell."""
    changed = {t.id for node in ast.walk(ast.Module(body, [])) if isinstance(node, ast.AugAssign)
               for t in [node.target] if isinstance(t, ast.Name)}
    out: dict[str, Any] = {}
    for stmt in body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Constant)):
            continue
        name, literal = stmt.targets[0].id, stmt.value.value
        if (literal is None or isinstance(literal, _PLAIN_CONSTANTS)) and \
                not name.startswith("_") and name not in changed:
            out[name] = literal
    return out


def _free_names_of_body(body: list[ast.AST], params: set[str]) -> FunctionEffects:
    """Globals read, written (via `global`) and mutated by code that runs in its own scope."""
    local, declared_global = _local_names(body, params)
    reads: set[str] = set()
    writes: set[str] = set()
    mutates: set[str] = set()

    def visit(node: ast.AST, bound: set[str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inner_params = _arg_names(node.args)
            for d in (*node.args.defaults, *(k for k in node.args.kw_defaults if k)):
                visit(d, bound)
            inner_body = node.body if isinstance(node.body, list) else [node.body]
            inner_local, _ = _local_names(inner_body, inner_params)
            for stmt in inner_body:
                visit(stmt, bound | inner_local)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            targets = {
                n.id
                for gen in node.generators
                for n in ast.walk(gen.target)
                if isinstance(n, ast.Name)
            }
            for child in ast.iter_child_nodes(node):
                visit(child, bound | targets)
            return
        if isinstance(node, ast.Name):
            if node.id in bound:
                return
            if isinstance(node.ctx, ast.Load):
                reads.add(node.id)
            elif node.id in declared_global:
                writes.add(node.id)
            return
        if isinstance(node, ast.Call):
            magic = _magic_call(node)
            if magic is None and isinstance(node.func, ast.Attribute):
                root = _root_name(node.func)
                if root is not None and root not in bound:
                    mutates.add(root)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(
            node.ctx, (ast.Store, ast.Del)
        ):
            root = _root_name(node)
            if root is not None and root not in bound:
                mutates.add(root)
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id in declared_global
        ):
            writes.add(node.target.id)
            reads.add(node.target.id)
        for child in ast.iter_child_nodes(node):
            visit(child, bound)

    for stmt in body:
        visit(stmt, local)
    reads.discard("get_ipython")
    mutates.discard("get_ipython")
    return FunctionEffects(frozenset(reads), frozenset(writes), frozenset(mutates))


def function_effects(node: ast.FunctionDef | ast.AsyncFunctionDef) -> FunctionEffects:
    return _free_names_of_body(list(node.body), _arg_names(node.args))


def _bind_name(out: CellAnalysis, name: str, value: ast.AST,
               lambdas: dict[str, FunctionEffects]) -> None:
    """What a top-level `name = value` binds beyond the name: a literal parameter, a widget
    read (`x = w.value`), an alias (`b = a[0]`), a lambda (binds late, like a def)."""
    cls = value.__class__
    if cls is ast.Lambda:
        lambdas[name] = _free_names_of_body([value], set())
        return
    if cls is ast.Attribute or cls is ast.Subscript or cls is ast.Call:
        root = _aliased_root(value)
        if root is not None and root != name:
            out.aliases.append((name, root))
        if cls is not ast.Attribute:
            return  # neither a literal nor a widget's `.value`
    elif cls is _Name:
        if value.id != name:  # type: ignore[attr-defined]
            out.aliases.append((name, value.id))  # type: ignore[attr-defined]
        return
    _bind_value(out, name, value)


# The values `_bind_name` finds something in (not arithmetic, comparisons, f-strings...).
_BINDING_VALUES = frozenset({ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.UnaryOp,
                             ast.Lambda, ast.Attribute, ast.Subscript, ast.Call, ast.Name})


def _bind_targets(out: CellAnalysis, targets: list[ast.expr], value: ast.expr) -> None:
    """The bindings of a top-level assignment to several targets or to a tuple."""
    for target in targets:
        if (type(target) is ast.Tuple and type(value) is ast.Tuple
                and len(target.elts) == len(value.elts)):
            for t, v in zip(target.elts, value.elts, strict=False):
                _bind_pair(out, t, v)
        else:
            _bind_pair(out, target, value)


def _bind_pair(out: CellAnalysis, target: ast.AST, value: ast.AST) -> None:
    """A literal parameter or a widget read bound to one target, when it is a name."""
    if type(target) is _Name:
        _bind_value(out, target.id, value)  # type: ignore[attr-defined]


def _bind_value(out: CellAnalysis, name: str, value: ast.AST) -> None:
    """`name = <plain literal>` is a parameter, `name = w.value` a widget read."""
    if name.startswith("_"):
        return
    ok, literal = _literal(value)
    if ok:
        out.params[name] = literal
    elif (type(value) is ast.Attribute and value.attr == "value"  # type: ignore[attr-defined]
          and type(value.value) is _Name):  # type: ignore[attr-defined]
        out.value_reads[name] = value.value.id  # type: ignore[attr-defined]


def _aliased_root(value: ast.AST) -> str | None:
    """`a` for `b = a[0]`, `b = a.x` and `b = a.reshape(-1)` (a view of a): the name `b` may
    be the very object of; None when the value is not such a chain."""
    root = value
    while True:
        cls = type(root)
        if cls is ast.Attribute or cls is ast.Subscript:
            root = root.value  # type: ignore[attr-defined]
        elif (cls is ast.Call and type(root.func) is ast.Attribute  # type: ignore[attr-defined]
              and root.func.attr in VIEW_METHODS):  # type: ignore[attr-defined]
            root = root.func.value  # type: ignore[attr-defined]
        else:
            break
    return root.id if type(root) is ast.Name else None  # type: ignore[attr-defined]


# Keyword arguments that style a plot rather than configure a model: never parameters.
PLOT_KEYWORDS = frozenset({
    "color", "colors", "c", "cmap", "palette", "figsize", "dpi", "alpha_plot", "s", "marker",
    "markersize", "linestyle", "ls", "linewidth", "lw", "label", "labels", "title", "fontsize",
    "edgecolor", "edgecolors", "facecolor", "hue", "style", "size", "ax", "xlabel", "ylabel",
    "xlim", "ylim", "legend", "grid", "bins", "kind", "annot", "fmt", "rotation", "loc",
    "zorder", "width", "height", "aspect", "orientation", "interpolation", "vmin", "vmax",
    "ncols", "nrows", "sharex", "sharey", "squeeze", "display_labels", "xticklabels",
    "yticklabels", "verbose", "n_jobs", "random_state_plot",
})
# Roots of calls that draw: their keywords are styling even when they look like knobs.
PLOT_ROOTS = frozenset({"plt", "pyplot", "ax", "axes", "axs", "ax1", "ax2", "fig", "sns",
                        "seaborn", "matplotlib", "px", "go", "display", "print", "mpl"})
# Functions (not classes) whose literal keywords are run parameters.
PARAM_FUNCTIONS = frozenset({
    "train_test_split", "cross_val_score", "cross_validate", "cross_val_predict",
    "validation_curve", "learning_curve", "make_classification", "make_regression",
    "make_blobs", "make_moons", "make_circles", "permutation_importance",
})


def call_param_target(call: ast.Call) -> str | None:
    """The callee name for `RandomForestRegressor(...)` or `train_test_split(...)`, or None.

    Constructors (CapWords) and a few scikit-learn functions carry hyper-parameters; calls on
    plotting modules and axes (`plt.scatter(..., color=...)`) do not.
    """
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else (
        func.id if isinstance(func, ast.Name) else None)
    if not name:
        return None
    root = _root_name(func.value) if isinstance(func, ast.Attribute) else None
    return name if _param_callee(name, root) else None


def _param_callee(name: str, root: str | None) -> bool:
    """The rule of `call_param_target` for a callee `name` hanging off `root` (None for a
    plain name, whose own name is then its root: no plot root is CapWords or a parameter
    function, so it needs no test)."""
    return (name[0] != "_"
            and (name in PARAM_FUNCTIONS or (name[0].isupper() and not name.isupper()))
            and (root is None or root not in PLOT_ROOTS))


def constructor_keywords(body: list[ast.stmt]) -> Iterator[tuple[str | None, str, ast.keyword]]:
    """(owner, callee, keyword) for each keyword of a constructor-like call that runs now.

    The owner is the name a top-level assignment binds the call to (`model = Forest(...)`),
    else None; function, class and lambda bodies do not run now and are skipped, plotting
    keywords and `**kwargs` never count. The export's constructor options walk this; capture
    finds the same keywords in its own visit of the cell (`_CellVisitor.visit_Call`), one walk
    of the cell instead of two, and walks this only where that visit cannot see them or sees
    them in another order. tests/test_analysis.py holds the two equal, order included.
    """
    found: list[tuple[str | None, str, ast.keyword]] = []
    # An explicit stack in `ast.iter_child_nodes` order (pre-order, as a recursive walk would
    # go), stepping over the nodes that cannot hold a call: names, constants, contexts and
    # operators are most of a cell's nodes. This walk runs for every recorded cell.
    stack: list[tuple[ast.AST, str | None]] = []
    for stmt in reversed(body):
        owner = None
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Call)
                and call_param_target(stmt.value) not in PARAM_FUNCTIONS):
            owner = stmt.targets[0].id
        stack.append((stmt, owner))
    fields_of = _CHILD_FIELDS
    while stack:
        node, owner = stack.pop()
        cls = type(node)
        if cls in _NOT_RUN_NOW:
            continue
        if cls is ast.Call:
            callee = call_param_target(node)  # type: ignore[arg-type]
            if callee is not None:
                for kw in node.keywords:  # type: ignore[attr-defined]
                    if kw.arg is not None and kw.arg not in PLOT_KEYWORDS:
                        found.append((owner, callee, kw))
                owner = None  # calls nested in its arguments are keyed by their own callee
        fields = fields_of.get(cls)
        if fields is None:
            fields = fields_of[cls] = tuple(f for f in cls._fields if f not in _NO_CALL_FIELDS)
        children: list[ast.AST] = []
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                children.extend(v for v in value
                                if type(v) not in _NO_CALL_NODES and isinstance(v, ast.AST))
            elif type(value) not in _NO_CALL_NODES and isinstance(value, ast.AST):
                children.append(value)
        for child in reversed(children):
            stack.append((child, owner))
    yield from found


# What `constructor_keywords` never descends into: bodies that do not run now, and nodes that
# hold no call (leaves; fields holding names, contexts and operators only).
_NOT_RUN_NOW = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda})
_NO_CALL_NODES = frozenset({type(None), ast.Name, ast.Constant, ast.alias})
_NO_CALL_FIELDS = frozenset({"ctx", "op", "ops", "id", "attr", "arg", "names", "module",
                             "level", "kind", "conversion", "type_comment", "is_async",
                             "simple"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def constructor_params(tree: ast.Module) -> dict[str, Any]:
    """Literal keyword arguments of constructor calls: `model.n_estimators`, `GridSearchCV.cv`,
    keyed by the owner the call is bound to, else by the callee. (What `analyze` adds to a
    cell's literal parameters, found in its visit: this is the reference it is tested
    against.)"""
    out: dict[str, Any] = {}
    for owner, callee, kw in constructor_keywords(tree.body):
        ok, value = _literal(kw.value)
        if ok:
            out.setdefault(f"{owner or callee}.{kw.arg}", value)
    return out


def analyze(code: str | ast.Module) -> CellAnalysis:
    """Analyse a cell's Python (after IPython's transforms) or its already-parsed module."""
    out = CellAnalysis()
    if isinstance(code, str):
        try:
            tree = ast.parse(code)
        except SyntaxError as exc:
            out.syntax_error = f"{exc.msg} (line {exc.lineno})"
            return out
    else:
        tree = code
    visitor = _CellVisitor(out)
    dispatch = visitor._dispatch
    for stmt in tree.body:
        visitor.top = stmt
        method = dispatch.get(stmt.__class__)
        if method is None:
            visitor.visit(stmt)  # finds the method and remembers it
        else:
            method(visitor, stmt)
    visitor.finish()
    out.functions.update(visitor.lambdas)
    found = visitor.keywords
    if visitor.must_walk or (visitor.reordered and len(found) > 1):
        found = list(constructor_keywords(tree.body))  # what the visit could not see
    params = out.params
    for owner, callee, kw in found:  # `constructor_params`, into the literal parameters
        ok, value = _literal(kw.value)
        if ok:
            params.setdefault(f"{owner or callee}.{kw.arg}", value)
    return out


def literal_loop_targets(code: str) -> list[str]:
    """Names bound by top-level `for` loops over a literal list/tuple (or a name), nested too.

    `for lr in [0.1, 0.01]:` is a sweep (each iteration a run); `for epoch in range(10):` is a
    training curve (steps of one run), so calls like `range(...)` do not count.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names: list[str] = []
    stack: list[ast.AST] = [s for s in tree.body if isinstance(s, ast.For)]
    while stack:
        node = stack.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.For) and isinstance(node.iter, (ast.List, ast.Tuple, ast.Name)):
            names.extend(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
        stack.extend(ast.iter_child_nodes(node))
    return list(dict.fromkeys(names))
