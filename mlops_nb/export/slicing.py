"""The lineage slice of a run: which earlier cell runs its numbers depend on, and why.

Replays the session log up to the run's position (not the session's end: later cells that
overwrote `df` do not matter), re-analysing the code each cell run executed. A cell run joins
the slice when it last defined or mutated a name the slice uses, transitively; conservative on
mutation (method calls, subscript/attribute stores, `global` writes of notebook functions the
slice calls, and mutation through an alias made by `b = a`); a file written by one cell run
and read by a later one keeps its writer; `%cd`/`%env` cells always stay. Names that no
recorded cell run defined are *unresolved*: hidden state the script cannot recreate.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import shlex
from dataclasses import dataclass, field
from typing import Any

from ..capture.analysis import CellAnalysis, FunctionEffects, analyze
from ..lineage import through_functions
from ..records import CellRun

BUILTIN_NAMES = frozenset(dir(builtins))
# What a script provides itself: the tracking shim replaces mlops_nb, display() prints.
SCRIPT_PROVIDED = frozenset({"display"})
ENV_MAGICS = frozenset({"cd", "env"})


@dataclass
class SliceCell:
    run: CellRun
    code: str
    analysis: CellAnalysis
    reasons: list[str] = field(default_factory=list)  # "df -> seq 7"
    external_reads: list[str] = field(default_factory=list)
    # Files the cell really read (recorded at run time) that no earlier slice cell wrote.
    runtime_reads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seq(self) -> int:
        return self.run.seq


@dataclass
class Slice:
    target: CellRun  # the run asked for (a loop iteration's run keeps its own record)
    anchor: CellRun  # the cell run whose code produced it (the loop's cell run for iterations)
    cells: list[SliceCell]
    unresolved: dict[str, list[int]]  # name -> seqs of slice cells that used it
    missing_code: list[int]
    rng_before: dict[int, dict[str, str]]  # seq -> {generator: blob hash} restored before it


@functools.lru_cache(maxsize=128)
def _module_names(module: str) -> frozenset[str] | None:
    """Public names `from module import *` binds; None when it cannot be imported here."""
    if module.startswith("."):
        return None
    try:
        mod = importlib.import_module(module)
    except Exception:
        return None
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    return frozenset(str(n) for n in names)


def _import_bound(tree: ast.Module) -> set[str]:
    bound: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                if alias.name != "*":
                    bound.add(alias.asname or alias.name.split(".")[0])
    return bound


def _capture_outputs(tree: ast.Module) -> list[str]:
    """`%%capture out` binds `out` (IPython assigns it after the cell body ran)."""
    names: list[str] = []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "run_cell_magic" and len(call.args) >= 2
                and all(isinstance(a, ast.Constant) for a in call.args[:2])
                and call.args[0].value == "capture"):
            continue
        try:
            words = shlex.split(str(call.args[1].value))
        except ValueError:
            continue
        names += [w for w in words if not w.startswith("-") and w.isidentifier()][:1]
    return names


def compute_slice(log: list[CellRun], target: CellRun, code_of: dict[int, str | None],
                  star_names: dict[str, frozenset[str] | None] | None = None) -> Slice:
    """The slice of `target` over `log` (one session, by seq); `code_of[seq]` its Python.

    `star_names`: what `from m import *` binds for the notebook's own modules, from their
    recorded source (importing them here could find another module of the same name).
    """
    known_stars = star_names or {}

    def names_of(module: str) -> frozenset[str] | None:
        if module in known_stars:
            return known_stars[module]
        return _module_names(module)

    anchor = target
    if target.parent is not None:
        found = [cr for cr in log if cr.id == target.parent]
        if found:
            anchor = found[0]
    end = anchor.seq
    prefix = [cr for cr in log if cr.seq <= end and cr.parent is None]

    last_def: dict[str, int] = {}
    last_writer: dict[str, int] = {}
    functions: dict[str, FunctionEffects] = {}
    import_bound: set[str] = set()
    stars: list[tuple[int, str]] = []
    groups: dict[str, set[str]] = {}
    deps: dict[int, dict[int, list[str]]] = {}
    unresolved: dict[int, set[str]] = {}
    external: dict[int, list[str]] = {}
    runtime: dict[int, list[dict[str, Any]]] = {}
    analyses: dict[int, CellAnalysis] = {}
    env_cells: list[int] = []
    missing: list[int] = []
    by_seq = {cr.seq: cr for cr in prefix}

    for cr in prefix:
        seq = cr.seq
        code = code_of.get(seq)
        if code is None:
            missing.append(seq)
            code = ""
        try:
            tree = ast.parse(code)
        except SyntaxError:
            tree = ast.Module([], [])
        a = analyze(tree)
        for name in _capture_outputs(tree):
            if name not in a.defs:
                a.defs.append(name)
        analyses[seq] = a
        d: dict[int, list[str]] = {}
        unres: set[str] = set()
        recorded_muts = set(cr.mutations) if not cr.backfilled else set(a.mutations)
        used = set(a.uses)
        for src in {a.value_reads[n] for n in cr.widget_values if n in a.value_reads}:
            # `x = slider.value` frozen as a literal no longer needs the slider itself
            loads = sum(isinstance(n, ast.Name) and n.id == src for n in ast.walk(tree))
            if loads == sum(a.value_reads.get(n) == src for n in cr.widget_values):
                used.discard(src)
        used, mutated = through_functions(used, recorded_muts, functions,
                                          not_mutable=import_bound)
        for name in sorted(used | (mutated - set(a.defs))):  # own defs need no definer
            if name in last_def:
                d.setdefault(last_def[name], []).append(name)
            elif name in BUILTIN_NAMES or name in SCRIPT_PROVIDED:
                continue
            else:
                provider = next((s for s, m in reversed(stars)
                                 if (names_of(m) is None or name in names_of(m))), None)
                if provider is not None:
                    d.setdefault(provider, []).append(name)
                else:
                    unres.add(name)
        seen_given = {r.get("given") for r in cr.reads if isinstance(r, dict)}
        for path in cr.files_read:
            if path in seen_given:
                continue  # the run-time record of this read decides (below)
            if path in last_writer:
                d.setdefault(last_writer[path], []).append(f"file:{path}")
            else:
                external.setdefault(seq, []).append(path)
        for read in cr.reads:
            full = read.get("path") if isinstance(read, dict) else None
            if not isinstance(full, str):
                continue
            writer = last_writer.get(full)
            if writer is None and isinstance(read.get("given"), str):
                writer = last_writer.get(read["given"])
            if writer is not None:
                d.setdefault(writer, []).append(f"file:{read.get('given', full)}")
            else:
                runtime.setdefault(seq, []).append(read)
        if ENV_MAGICS & set(a.magics):
            env_cells.append(seq)
        deps[seq] = d
        unresolved[seq] = unres
        # -- effects of this cell run on the index
        bound = _import_bound(tree)
        for name in a.defs:
            old = groups.pop(name, None)
            if old is not None:
                old.discard(name)
        for new, old in a.aliases:
            group = groups.setdefault(old, {old})
            group.add(new)
            groups[new] = group
        for name in set(a.defs) | mutated:
            last_def[name] = seq
        for name in mutated:
            for other in groups.get(name, ()):
                last_def[other] = seq
        for name in a.defs:
            if name in a.functions:
                functions[name] = a.functions[name]
            else:
                functions.pop(name, None)
            if name in bound:
                import_bound.add(name)
            else:
                import_bound.discard(name)
        for path in [*cr.files_written, *cr.writes]:
            if isinstance(path, str):
                last_writer[path] = seq
        stars.extend((seq, m) for m in a.star_imports)

    included: dict[int, list[str]] = {end: ["the run"]}
    stack = [end, *[s for s in env_cells if s < end]]
    for s in env_cells:
        if s < end:
            included.setdefault(s, []).append("changes the working directory or environment")
    expanded: set[int] = set()
    while stack:
        s = stack.pop()
        if s in expanded:
            continue
        expanded.add(s)
        for dep, names in deps.get(s, {}).items():
            included.setdefault(dep, []).extend(f"{n} -> seq {s}" for n in names)
            if dep not in expanded:
                stack.append(dep)
    order = sorted(included)
    cells = [SliceCell(by_seq[s], code_of.get(s) or "", analyses[s], included[s],
                       external.get(s, []), runtime.get(s, [])) for s in order]
    names: dict[str, list[int]] = {}
    for s in order:
        for n in sorted(unresolved.get(s, ())):
            names.setdefault(n, []).append(s)

    # RNG: before each slice cell, the state of the latest record at or before it.
    rng_before: dict[int, dict[str, str]] = {}
    latest: dict[str, tuple[int, str]] = {}
    applied: dict[str, int] = {}
    records = sorted((cr.seq, cr.rng) for cr in prefix if cr.rng)
    i = 0
    for s in order:
        while i < len(records) and records[i][0] <= s:
            for gen, digest in (records[i][1] or {}).items():
                latest[gen] = (records[i][0], digest)
            i += 1
        todo = {gen: digest for gen, (rseq, digest) in latest.items() if applied.get(gen) != rseq}
        if todo:
            rng_before[s] = todo
            for gen in todo:
                applied[gen] = latest[gen][0]
    return Slice(target, anchor, cells, names, missing, rng_before)

