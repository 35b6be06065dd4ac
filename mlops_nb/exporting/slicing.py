"""The lineage slice of a run: which earlier cell runs its numbers depend on, and why.

Replays the session log up to the run's position (not the session's end: later cells that
overwrote `df` do not matter) through the same def-use index the recorder's lineage uses
(lineage.DefUseIndex), fed the same recorded facts, so the slice always holds the recorded
lineage. Only what a script needs on top is added here: the cell of a `from m import *` that
provides a name, `%cd`/`%env` cells (they always stay), and names no recorded cell run defined,
which are *unresolved*: hidden state the script cannot recreate.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import itertools
import operator
from dataclasses import dataclass, field
from typing import Any

from ..capture.analysis import CellAnalysis, analyze
from ..capture.rng import OBJ_PREFIX, is_object_key
from ..lineage import DefUseIndex, closure_seqs
from ..records import CellRun

BUILTIN_NAMES = frozenset(dir(builtins))
# What a script provides itself: the tracking shim replaces mlops_nb, display() prints.
SCRIPT_PROVIDED = frozenset({"display"})
ENV_MAGICS = frozenset({"cd", "env"})
_PROVIDED = BUILTIN_NAMES | SCRIPT_PROVIDED


@dataclass
class SliceCell:
    run: CellRun
    code: str
    analysis: CellAnalysis
    reasons: list[str] = field(default_factory=list)  # "df -> seq 7"
    external_reads: list[str] = field(default_factory=list)
    # Files the cell really read (recorded at run time) that no earlier slice cell wrote.
    runtime_reads: list[dict[str, Any]] = field(default_factory=list)
    # The same cell run again right after it in the slice, replayed as a loop
    # (`collapse_reruns`): the script does each step's work once, not once per re-run.
    reruns: list[SliceCell] = field(default_factory=list)
    # With reruns: how many slice cells, from this one, the loop replays (0: inside the loop
    # an earlier cell opens).
    span: int = 1

    @property
    def seq(self) -> int:
        return self.run.seq

    @property
    def members(self) -> list[SliceCell]:
        """This cell run and the identical re-runs collapsed into it, in order."""
        return [self, *self.reruns]


@dataclass
class Slice:
    target: CellRun  # the run asked for (a loop iteration's run keeps its own record)
    anchor: CellRun  # the cell run whose code produced it (the loop's cell run for iterations)
    cells: list[SliceCell]
    unresolved: dict[str, list[int]]  # name -> seqs of slice cells that used it
    missing_code: list[int]
    rng_before: dict[int, dict[str, str]]  # seq -> {generator: blob hash} restored before it
    # `drawn_after` of the session log, kept for the export's later steps (prune.py)
    drawn: dict[int, set[str] | None] = field(default_factory=dict)
    # The replayed direct deps of each cell run (seq -> dep seqs): `lineage` is their closure.
    lineage_deps: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def lineage(self) -> list[int]:
        """The anchor's lineage as the shared index alone gives it (what `show` and the diff
        say); the cells hold it and add only what a script needs besides. Derived when
        asked: an export writes the stored lineage, not this one."""
        return closure_seqs(self.lineage_deps, self.anchor.seq)


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

    index = DefUseIndex()
    lineage_deps: dict[int, tuple[int, ...]] = {}
    stars: list[tuple[int, str]] = []
    deps: dict[int, dict[int, list[str]]] = {}
    unresolved: dict[int, set[str]] = {}
    external: dict[int, list[str]] = {}
    runtime: dict[int, list[dict[str, Any]]] = {}
    analyses: dict[int, CellAnalysis] = {}
    env_cells: list[int] = []
    missing: list[int] = []
    by_seq = {cr.seq: cr for cr in prefix}
    by_code: dict[str, CellAnalysis] = {}  # re-runs of one cell are analysed once

    for cr in prefix:
        seq = cr.seq
        code = code_of.get(seq)
        if code is None:
            missing.append(seq)
            code = ""
        a = by_code.get(code)
        if a is None:
            a = by_code[code] = analyze(code)
        analyses[seq] = a
        # The same index, fed the same recorded facts, as the recorder's lineage ...
        step = index.add(cr, a, ignore=_PROVIDED)
        d = step.deps
        lineage_deps[seq] = tuple(d)
        # ... plus what only a script needs: names a star import provides, hidden state.
        if step.unresolved:
            unres: set[str] = set()
            for name in sorted(step.unresolved):
                provider = next((s for s, m in reversed(stars)
                                 if (names_of(m) is None or name in names_of(m))), None)
                if provider is not None:
                    d.setdefault(provider, []).append(name)
                else:
                    unres.add(name)
            unresolved[seq] = unres
        if step.external_reads:
            external[seq] = step.external_reads
        if step.runtime_reads:
            runtime[seq] = step.runtime_reads
        if a.magics and ENV_MAGICS & set(a.magics):
            env_cells.append(seq)
        deps[seq] = d
        if a.star_imports:
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
            included.setdefault(dep, []).extend([f"{n} -> seq {s}" for n in names])
            if dep not in expanded:
                stack.append(dep)
    order = sorted(included)
    cells = [SliceCell(by_seq[s], code_of.get(s) or "", analyses[s], included[s],
                       external.get(s, []), runtime.get(s, [])) for s in order]
    names: dict[str, list[int]] = {}
    for s in order:
        if unresolved.get(s):
            for n in sorted(unresolved[s]):
                names.setdefault(n, []).append(s)

    drawn = drawn_after(log)
    rng_before = rng_restores(order, prefix, drawn, analyses)
    return Slice(target, anchor, cells, names, missing, rng_before, drawn, lineage_deps)


def rng_restores(order: list[int], prefix: list[CellRun],
                 drawn: dict[int, set[str] | None],
                 analyses: dict[int, CellAnalysis]) -> dict[int, dict[str, str]]:
    """{seq: {generator: state blob}} to restore before each slice cell (in `order`): a
    global generator's latest state before a cell that drew from it, a generator object's
    before a cell that reads its name; each only when the replay has not put it there yet."""
    rng_before: dict[int, dict[str, str]] = {}
    latest: dict[str, tuple[int, str]] = {}
    applied: dict[str, int] = {}
    records = sorted((cr.seq, cr.rng) for cr in prefix if cr.rng)
    if not records:  # no state recorded: nothing to restore
        return rng_before
    i = 0
    objects = False  # some generator object's state is among the latest
    for s in order:
        while i < len(records) and records[i][0] <= s:
            for gen, digest in (records[i][1] or {}).items():
                latest[gen] = (records[i][0], digest)
                objects = objects or is_object_key(gen)
            i += 1
        draws = drawn.get(s)
        if draws is None:  # the session's last cell: nothing recorded after it, so any call
            draws = {g for g in latest if not is_object_key(g)} if analyses[s].calls else set()
        elif not draws and not objects:
            continue  # drew from no global generator, and no generator object to restore
        # A generator object's state was recorded before each cell naming it, whenever it
        # moved: restore it before a cell that reads the name, unless already in place.
        draws = draws | {OBJ_PREFIX + n for n in analyses[s].uses}
        todo = {gen: digest for gen, (rseq, digest) in latest.items()
                if gen in draws and applied.get(gen) != rseq}
        if todo:
            rng_before[s] = todo
            for gen in todo:
                applied[gen] = latest[gen][0]
    return rng_before


def drawn_after(log: list[CellRun]) -> dict[int, set[str] | None]:
    """{seq: the global generators the cell run drew from}, None when unknown.

    The recorder stores a generator's state before each cell only when it moved since the
    cell before, so the next cell run's record says what this one drew (a first sighting,
    when a module was just imported, counts too: harmless, there is nothing to restore yet).
    Generator objects are left out: their states are recorded only before cells naming them.
    """
    top = sorted((cr for cr in log if cr.parent is None), key=operator.attrgetter("seq"))
    out: dict[int, set[str] | None] = {}
    for cr, nxt in itertools.pairwise(top):
        rng = nxt.rng
        out[cr.seq] = {g for g in rng if not is_object_key(g)} if rng else set()
    if top:
        out[top[-1].seq] = None
    return out


LOOP_FROM = 3  # repeats in a row from which the script replays them as a loop
LOOP_SPAN = 8  # the most cells a repeated block may hold (`x = f(x)`, `y = g(x)`, again...)


def collapse_reruns(sl: Slice) -> None:
    """Fold each run of repeated slice cells into one loop: a cell (or a block of up to
    LOOP_SPAN cells) run LOOP_FROM or more times in a row keeps its first run, which holds
    the later identical runs (`reruns`, per position) and, on the block's first cell, how
    many cells the loop spans (`span`; 0 on the others of the block).

    A cell re-run many times in a row (`x = x + 1` twenty thousand times) makes a slice of
    that many cells, and every export step, paid per cell, made a long chain cost seconds.
    Only cells that replay the same as a loop body fold: the same code, they ran without
    error, nothing restored before them (no RNG state; before the loop's very first cell is
    fine), no data file read, figure or widget value of their own, no import, definition,
    magic or top-level await; the run's own cell never folds (its code carries the run's
    own rewrites)."""
    cells = sl.cells[:-1]
    n = len(cells)
    if n < LOOP_FROM:
        return
    static: dict[tuple[int, str], bool] = {}  # re-runs share their code: judged once
    ok = [_foldable(c, static) for c in cells]
    key = [(c.run.python, c.run.code) for c in cells]
    fresh = [not sl.rng_before.get(c.run.seq) for c in cells]
    out: list[SliceCell] = []
    i = 0
    while i < n:
        best_p, best_k = 0, 0
        for p in range(1, LOOP_SPAN + 1):
            if i + p * LOOP_FROM > n or not ok[i + p - 1] or (p > 1 and not fresh[i + p - 1]):
                break  # every longer block holds this cell too
            k = 1
            if p == 1:  # one cell repeated (the long chains): a plain scan
                first = key[i]
                while i + k < n and key[i + k] == first and ok[i + k] and fresh[i + k]:
                    k += 1
            while p > 1 and i + (k + 1) * p <= n and all(
                    key[i + k * p + j] == key[i + j] and ok[i + k * p + j]
                    and fresh[i + k * p + j] for j in range(p)):
                k += 1
            if k >= LOOP_FROM and k * p > best_k * best_p:
                best_p, best_k = p, k
                if p == 1 or i + k * p == n:
                    break  # one cell repeated, or all the rest: no block does better
        if not best_p:
            out.append(cells[i])
            i += 1
            continue
        block = cells[i:i + best_p]
        for j, cell in enumerate(block):
            cell.reruns = [cells[i + m * best_p + j] for m in range(1, best_k)]
            cell.span = best_p if j == 0 else 0
        out.extend(block)
        i += best_k * best_p
    out.append(sl.cells[-1])
    sl.cells = out


def _foldable(cell: SliceCell, static: dict[tuple[int, str], bool]) -> bool:
    """The cell run may be replayed as a loop's body; `static` keeps what its code alone
    says, by analysis and code."""
    run, a = cell.run, cell.analysis
    if (run.python is None or run.status != "ok" or run.figures or run.widget_values
            or cell.external_reads or cell.runtime_reads):
        return False
    key = (id(a), cell.code)
    code_ok = static.get(key)
    if code_ok is None:
        code_ok = static[key] = not (
            a.magics or a.imports or a.star_imports or a.functions or a.files_read
            or a.value_reads or a.syntax_error) and _loop_safe(cell.code)
    return code_ok


@functools.lru_cache(maxsize=256)
def _loop_safe(code: str) -> bool:
    """The cell's statements mean the same as the body of a loop at module level."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    banned = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
              ast.Global, ast.Nonlocal, ast.Await, ast.Yield, ast.YieldFrom, ast.Return,
              ast.AsyncFor, ast.AsyncWith)
    return bool(tree.body) and not any(isinstance(n, banned) for n in ast.walk(tree))
