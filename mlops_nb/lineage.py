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

from collections.abc import Container, Mapping
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
    # Bit s is set for every earlier cell run this one depends on, transitively: the closure
    # of a new cell run is an OR over its direct deps, in C, whatever the session's length.
    mask: int
    # What is in effect after this cell run along its lineage: name -> (seq that set it, value).
    # Shared, not copied, when a cell run adds nothing of its own.
    params: dict[str, tuple[int, Any]]
    data: dict[str, tuple[int, dict[str, Any]]]


_EMPTY: dict[str, Any] = {}


def _in_effect(sources: list[dict[str, tuple[int, Any]]], own: dict[str, Any], seq: int
               ) -> dict[str, tuple[int, Any]]:
    """Merge what the deps' lineages had in effect; the value set by the latest cell wins."""
    sources = [src for src in sources if src]
    if not own and len(sources) <= 1:
        return sources[0] if sources else _EMPTY
    sources.sort(key=len, reverse=True)
    merged = dict(sources[0]) if sources else {}
    for src in sources[1:]:
        for name, entry in src.items():
            current = merged.get(name)
            if current is None or current[0] < entry[0]:
                merged[name] = entry
    for name, value in own.items():
        merged[name] = (seq, value)
    return merged


def _set_bits(mask: int) -> list[int]:
    return [i for i, bit in enumerate(bin(mask)[:1:-1]) if bit == "1"]


class SessionLog:
    """The incremental def-use index of one session."""

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.seq_of: dict[str, int] = {}
        self.last_def: dict[str, int] = {}
        self.functions: dict[str, FunctionEffects] = {}
        self.last_writer: dict[str, int] = {}  # file path -> cell run that last wrote it
        self.groups: dict[str, set[str]] = {}  # names that may be one object (`b = a`)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, cr: CellRun, analysis: CellAnalysis) -> None:
        """Append `cr` (its seq must be len(self)); fills deps and, for runs, lineage."""
        seq = len(self.entries)
        if cr.seq != seq:
            raise ValueError(f"cell run seq {cr.seq} does not follow the log (expected {seq})")
        used, mutated = through_functions(set(cr.uses), set(cr.mutations), self.functions)
        dep_set = {self.last_def[n] for n in used | mutated if n in self.last_def}
        # A file written by one cell run and read by a later one ties them like a name does.
        dep_set.update(self.last_writer[p] for p in cr.files_read if p in self.last_writer)
        if cr.parent is not None and cr.parent in self.seq_of:
            dep_set.add(self.seq_of[cr.parent])  # a loop iteration depends on its loop's cell
        dep_seqs = sorted(dep_set)
        cr.deps = [self.entries[d].id for d in dep_seqs]
        for name in cr.defs:  # rebinding a name detaches it from what it aliased
            group = self.groups.pop(name, None)
            if group is not None:
                group.discard(name)
        for new, old in analysis.aliases:
            group = self.groups.setdefault(old, {old})
            group.add(new)
            self.groups[new] = group
        for name in (*cr.defs, *mutated):
            self.last_def[name] = seq
        for name in mutated:  # `b.append(2)` after `b = a` changes a too
            for other in self.groups.get(name, ()):
                self.last_def[other] = seq
        for path in cr.files_written:
            self.last_writer[path] = seq
        for name in cr.defs:
            if name in analysis.functions:
                self.functions[name] = analysis.functions[name]
            else:
                self.functions.pop(name, None)
        mask = 0
        for d in dep_seqs:
            mask |= self.entries[d].mask | (1 << d)
        deps = [self.entries[d] for d in dep_seqs]
        entry = _Entry(
            cr.id,
            tuple(dep_seqs),
            mask,
            _in_effect([e.params for e in deps], cr.params, seq),
            _in_effect([e.data for e in deps], cr.data, seq),
        )
        self.entries.append(entry)
        self.seq_of[cr.id] = seq
        if cr.is_run:
            self.fill_run(cr)

    def closure(self, seq: int) -> list[int]:
        """Seqs of every cell run that `seq` depends on, transitively, in execution order."""
        return _set_bits(self.entries[seq].mask)

    def fill_run(self, cr: CellRun) -> None:
        entry = self.entries[cr.seq]
        cr.lineage = [self.entries[s].id for s in _set_bits(entry.mask)]
        cr.effective_params = {name: value for name, (_, value) in entry.params.items()}
        cr.effective_data = {name: value for name, (_, value) in entry.data.items()}
