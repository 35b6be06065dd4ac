"""Lineage: which earlier cell runs of a session a cell run depends on.

The session log is the kernel's history: its state is a function of the cell runs in order. We
keep the last definer of each name, so a new cell run's direct dependencies cost O(names it
uses). Calls of notebook-defined functions are followed into the globals those functions read,
write and mutate. A run's lineage is the transitive closure of direct dependencies; its
effective parameters and data are those of its lineage as they stood when it ran, which is why
they are computed here at record time and stored, not recomputed later.

Pure: works on records and analyses, so the same code serves the live recorder and tests.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .capture.analysis import CellAnalysis, FunctionEffects
from .records import CellRun


def through_functions(
    used: set[str],
    mutated: set[str],
    functions: Mapping[str, FunctionEffects],
    *,
    not_mutable: Container[str] = frozenset(),
) -> tuple[set[str], set[str]]:
    """Uses and mutations plus those of every notebook function reachable from them.

    Calling `f()` reads what `f` reads and writes what it writes, transitively through the
    functions it calls; `not_mutable` names (modules) are never counted as mutated.
    """
    used = set(used)
    mutated = {m for m in mutated if m not in not_mutable}
    pending = [n for n in used | mutated if n in functions]
    seen: set[str] = set()
    while pending:
        fname = pending.pop()
        if fname in seen:
            continue
        seen.add(fname)
        fx = functions[fname]
        used |= fx.reads
        mutated |= {m for m in fx.writes | fx.mutates if m not in not_mutable}
        pending.extend(n for n in (*fx.reads, *fx.mutates) if n in functions)
    return used, mutated


@dataclass
class _Entry:
    id: str
    deps: tuple[int, ...]
    params: dict[str, Any]
    data: dict[str, dict[str, Any]]


class SessionLog:
    """The incremental def-use index of one session."""

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.last_def: dict[str, int] = {}
        self.functions: dict[str, FunctionEffects] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def _effective_names(
        self, uses: Iterable[str], mutations: Iterable[str]
    ) -> tuple[set[str], set[str]]:
        return through_functions(set(uses), set(mutations), self.functions)

    def add(self, cr: CellRun, analysis: CellAnalysis) -> None:
        """Append `cr` (its seq must be len(self)); fills deps and, for runs, lineage."""
        seq = len(self.entries)
        if cr.seq != seq:
            raise ValueError(f"cell run seq {cr.seq} does not follow the log (expected {seq})")
        used, mutated = self._effective_names(cr.uses, cr.mutations)
        dep_set = {self.last_def[n] for n in used | mutated if n in self.last_def}
        if cr.parent is not None:  # a loop iteration's run depends on its loop's cell run
            dep_set.update(i for i in range(seq - 1, -1, -1) if self.entries[i].id == cr.parent)
        dep_seqs = sorted(dep_set)
        cr.deps = [self.entries[d].id for d in dep_seqs]
        for name in (*cr.defs, *mutated):
            self.last_def[name] = seq
        for name in cr.defs:
            if name in analysis.functions:
                self.functions[name] = analysis.functions[name]
            else:
                self.functions.pop(name, None)
        self.entries.append(_Entry(cr.id, tuple(dep_seqs), cr.params, cr.data))
        if cr.is_run:
            self.fill_run(cr)

    def closure(self, seq: int) -> list[int]:
        """Seqs of every cell run that `seq` depends on, transitively, in execution order."""
        seen: set[int] = set()
        stack = list(self.entries[seq].deps)
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen.add(s)
            stack.extend(self.entries[s].deps)
        return sorted(seen)

    def fill_run(self, cr: CellRun) -> None:
        lineage = self.closure(cr.seq)
        params: dict[str, Any] = {}
        data: dict[str, dict[str, Any]] = {}
        for s in lineage:
            params.update(self.entries[s].params)
            data.update(self.entries[s].data)
        params.update(cr.params)
        data.update(cr.data)
        cr.lineage = [self.entries[s].id for s in lineage]
        cr.effective_params = params
        cr.effective_data = data
