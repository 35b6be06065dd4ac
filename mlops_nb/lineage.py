"""Lineage: which earlier cell runs of a session a cell run depends on.

The session log is the kernel's history: its state is a function of the cell runs in order.
One def-use index (`DefUseIndex`) keeps the last definer of each name, so a new cell run's
direct dependencies cost O(names it uses); calls of notebook-defined functions are followed
into the globals those functions read, write and mutate. The recorder feeds it live
(`SessionLog`) and the export slice replays it over the stored records (export/slicing.py),
so `mlops-nb show`, the diff and `train.py` agree on what a run depends on.

Only DIRECT dependencies are stored (`CellRun.deps`); a run's lineage is their transitive
closure, derived when read (`lineage_ids`), so a session's store grows linearly with its cells
whatever their dependency chains. The *effective* parameters and data of a run (those of its
lineage as they stood when it ran) cannot be derived later without replaying the log, so they
are computed here at record time and stored; values above a size are stored once as blobs and
referred to (`externalize_large_values`).

Pure: works on records and analyses, so the same code serves the live recorder and tests.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .capture.analysis import CellAnalysis, FunctionEffects
from .records import BLOB_REF, CellRun, is_value_ref, measured_model

# A parameter whose JSON is longer than this is stored as a blob, referred to by hash.
LARGE_VALUE_BYTES = 1024
PREVIEW_CHARS = 60


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


def cell_effects(
    uses: Iterable[str],
    mutations: Iterable[str],
    analysis: CellAnalysis,
    functions: Mapping[str, FunctionEffects],
    *,
    not_mutable: Container[str] = frozenset(),
) -> tuple[set[str], set[str]]:
    """What a cell run read and may have mutated, through every notebook function it called,
    including one it defined itself (`def edit(): df.loc[0] = 1` then `edit()`)."""
    called_here: set[str] = set()
    if analysis.functions:
        called_here = {c.func for c in analysis.calls
                       if c.receiver is None and c.func in analysis.functions}
        # passed, not called (`cross_val_score(..., scoring=my_scorer)`): it runs all the same
        called_here |= {f for f in analysis.functions if analysis.load_counts.get(f, 0)}
    if called_here:
        functions = {**functions, **analysis.functions}
    return through_functions(set(uses) | called_here, set(mutations), functions,
                             not_mutable=not_mutable)


def frozen_widget_sources(analysis: CellAnalysis, widget_values: Iterable[str]) -> set[str]:
    """Widgets a cell no longer needs: `x = slider.value` frozen as a literal at run time,
    when the cell reads the widget nowhere else."""
    frozen = [n for n in widget_values if n in analysis.value_reads]
    out: set[str] = set()
    for src in {analysis.value_reads[n] for n in frozen}:
        if analysis.load_counts.get(src, 0) == sum(analysis.value_reads[n] == src
                                                     for n in frozen):
            out.add(src)
    return out


@dataclass
class Step:
    """What one cell run added to the index: its direct deps and why."""

    deps: dict[int, list[str]]  # dep seq -> names (or `file:path`) that tie them
    unresolved: set[str]  # names used that no earlier cell run defined
    external_reads: list[str]  # literal paths read that no earlier cell run wrote
    # Files the cell really read (recorded at run time, however the path was built) that no
    # earlier cell run wrote: what an export maps to `--data-*` options.
    runtime_reads: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DefUseIndex:
    """The incremental def-use index of one session, shared by lineage and the export slice.

    `add` takes a cell run's recorded facts (uses, mutations, defs, files) and the analysis of
    its code (aliases, functions, imports, widget reads), in execution order.
    """

    last_def: dict[str, int] = field(default_factory=dict)
    functions: dict[str, FunctionEffects] = field(default_factory=dict)
    last_writer: dict[str, int] = field(default_factory=dict)  # file path -> its last writer
    groups: dict[str, set[str]] = field(default_factory=dict)  # names maybe one object
    import_bound: set[str] = field(default_factory=set)  # names a cell bound by `import`
    seq_of: dict[str, int] = field(default_factory=dict)

    def add(self, cr: CellRun, analysis: CellAnalysis, *, ignore: Container[str] = ()) -> Step:
        seq = cr.seq
        uses, defs, mutations = cr.uses, cr.defs, cr.mutations
        used = set(uses)
        if cr.widget_values:
            used -= frozen_widget_sources(analysis, cr.widget_values)
        functions = self.functions
        if analysis.functions or (functions and not (
                used.isdisjoint(functions) and functions.keys().isdisjoint(mutations))):
            used, mutated = cell_effects(used, mutations, analysis, functions,
                                         not_mutable=self.import_bound)
        else:  # no notebook function runs: what the cell itself read and mutated (the replay
            # of a long session is mostly such cells, and this is cell_effects' result then)
            mutated = {m for m in mutations if m not in self.import_bound} if mutations \
                else set()
        deps: dict[int, list[str]] = {}
        unresolved: set[str] = set()
        own = set(defs)
        # own defs need no definer, unless read before the cell bound them (`x = x + 1`):
        # a function defined and called in one cell reads the cell's own names
        needed = (used - (own - set(uses))) | (mutated - own) if own else used | mutated
        last_def = self.last_def
        for name in sorted(needed) if len(needed) > 1 else needed:
            d = last_def.get(name)
            if d is not None:
                deps.setdefault(d, []).append(name)
            elif name not in ignore:
                unresolved.add(name)
        external: list[str] = []
        runtime: list[dict[str, Any]] = []
        if cr.files_read or cr.reads:
            self._file_deps(cr, deps, external, runtime)
        if cr.parent is not None and cr.parent in self.seq_of:
            deps.setdefault(self.seq_of[cr.parent], []).append("loop")  # an iteration
        # -- this cell run's effects on the index
        groups = self.groups
        if groups:
            for name in defs:  # rebinding a name detaches it from what it aliased
                group = groups.pop(name, None)
                if group is not None:
                    group.discard(name)
        for new, old in analysis.aliases:
            group = groups.setdefault(old, {old})
            group.add(new)
            groups[new] = group
        for name in defs:
            last_def[name] = seq
        for name in mutated:
            last_def[name] = seq
        if groups:
            for name in mutated:  # `b.append(2)` after `b = a` changes a too
                for other in groups.get(name, ()):
                    last_def[other] = seq
        if defs:
            note_functions(functions, defs, analysis.functions)
            bound = analysis.import_names
            for name in defs:
                if name in bound:
                    self.import_bound.add(name)
                else:
                    self.import_bound.discard(name)
        if cr.files_written or cr.writes:
            for path in (*cr.files_written, *cr.writes):
                if isinstance(path, str):
                    self.last_writer[path] = seq
        self.seq_of[cr.id] = seq
        return Step(deps, unresolved, external, runtime)

    def _file_deps(self, cr: CellRun, deps: dict[int, list[str]], external: list[str],
                   runtime: list[dict[str, Any]]) -> None:
        """A file written then read ties the cells like a name: deps on its last writer; a
        file no earlier cell run wrote is external (static paths) or a runtime read."""
        given = {r.get("given") for r in cr.reads if isinstance(r, dict)} if cr.reads else ()
        for path in cr.files_read:
            if path in given:
                continue  # the run-time record of this read decides (below)
            w = self.last_writer.get(path)
            if w is not None:
                deps.setdefault(w, []).append(f"file:{path}")
            else:
                external.append(path)
        for read in cr.reads:
            full = read.get("path") if isinstance(read, dict) else None
            if not isinstance(full, str):
                continue
            w = self.last_writer.get(full)
            if w is None and isinstance(read.get("given"), str):
                w = self.last_writer.get(read["given"])
            if w is not None:
                deps.setdefault(w, []).append(f"file:{read.get('given', full)}")
            else:
                runtime.append(read)


def note_functions(functions: dict[str, FunctionEffects], defs: Iterable[str],
                   defined: Mapping[str, FunctionEffects]) -> None:
    """A cell binding a name replaces what `functions` knew of it: its effects when the cell
    bound a function to it, else nothing. (Set operations, not a loop over `defs`: a cell
    binds dozens of names and defines a function seldom.)"""
    if functions:
        for name in functions.keys() & defs:
            if name not in defined:
                del functions[name]
    if defined:
        for name in defined.keys() & defs:
            functions[name] = defined[name]


@dataclass
class _Entry:
    id: str
    deps: tuple[int, ...]
    # What is in effect after this cell run along its lineage: name -> (seq that set it, value).
    # Shared, not copied, when a cell run adds nothing of its own.
    params: dict[str, tuple[int, Any]]
    data: dict[str, tuple[int, dict[str, Any]]]
    # The class of each fitted model in effect, by name, as the params of its estimators are
    models: dict[str, tuple[int, str]]


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


def _split_read(params: dict[str, tuple[int, Any]], seq: int, names: list[str]
                ) -> tuple[dict[str, tuple[int, Any]], dict[str, tuple[int, Any]]]:
    """(what a cell run takes from the dep at `seq` as read, what only as bound there). All
    that was in effect there is read when it read something that cell computed (its
    parameters may have gone into it); when it read only parameters of that cell, the others
    that cell set were bound but not read by this run."""
    if not params:
        return params, _EMPTY
    for name in names:
        set_by = params.get(name)
        if set_by is None or set_by[0] != seq:
            return params, _EMPTY  # a value it computed, a file, a loop: all it had in effect
    wanted = set(names)
    read = {k: v for k, v in params.items() if v[0] != seq or k in wanted}
    if len(read) == len(params):
        return params, _EMPTY
    return read, {k: v for k, v in params.items() if k not in read}


def _params_in_effect(entries: list[_Entry], seqs: list[int], why: dict[int, list[str]],
                      own: dict[str, Any], seq: int) -> dict[str, tuple[int, Any]]:
    """What the deps had in effect, as `_in_effect` merges it, except that a value the run's
    cells read wins over one a cell only bound: a parameters cell edited and re-run
    (`test_frac = 0.2`, `C = 2.0`), then only the model cell re-run, reading `C`: the split
    it used was made with the 0.3 its data cell read from the cell's first run, and the table
    said 0.2 (and named the run by it). A parameter nothing else sets stays, as bound."""
    read: list[dict[str, tuple[int, Any]]] = []
    bound: dict[str, tuple[int, Any]] = {}
    for d, e in zip(seqs, entries, strict=True):
        taken, only_bound = _split_read(e.params, d, why[d])
        read.append(taken)
        bound.update(only_bound)
    merged = _in_effect(read, own, seq)
    missing = {k: v for k, v in bound.items() if k not in merged}
    return {**merged, **missing} if missing else merged


class SessionLog:
    """The live index of one session: deps and effective values of each new cell run."""

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.index = DefUseIndex()

    @property
    def seq_of(self) -> dict[str, int]:
        return self.index.seq_of

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, cr: CellRun, analysis: CellAnalysis) -> None:
        """Append `cr` (its seq must be len(self)); fills its direct deps and, for runs, the
        effective params and data. The lineage itself is derived when read."""
        seq = len(self.entries)
        if cr.seq != seq:
            raise ValueError(f"cell run seq {cr.seq} does not follow the log (expected {seq})")
        why = self.index.add(cr, analysis).deps
        dep_seqs = sorted(why)
        cr.deps = [self.entries[d].id for d in dep_seqs]
        deps = [self.entries[d] for d in dep_seqs]
        entry = _Entry(
            cr.id,
            tuple(dep_seqs),
            _params_in_effect(deps, dep_seqs, why, cr.params, seq),
            _in_effect([e.data for e in deps], cr.data, seq),
            _in_effect([e.models for e in deps], _fitted_classes(cr), seq),
        )
        self.entries.append(entry)
        if cr.is_run:
            cr.effective_params = {name: value for name, (_, value) in entry.params.items()}
            cr.effective_data = {name: value for name, (_, value) in entry.data.items()}
            if cr.iteration is not None and cr.estimators:
                _own_models(cr)
            _lineage_model(cr, entry.models)

    def closure(self, seq: int) -> list[int]:
        """Seqs of every cell run that `seq` depends on, transitively, in execution order."""
        return closure_seqs([e.deps for e in self.entries], seq)

    def lineage(self, seq: int) -> list[str]:
        return [self.entries[s].id for s in self.closure(seq)]


def _fitted_classes(cr: CellRun) -> dict[str, str]:
    estimators = cr.estimators
    if not estimators:
        return _EMPTY
    return {name: est["class"] for name, est in estimators.items()
            if isinstance(est, dict) and isinstance(est.get("class"), str)
            and not est.get("cross_validated")}


def _lineage_model(cr: CellRun, models: dict[str, tuple[int, str]]) -> None:
    """A run scoring a model an earlier cell fitted (`r2 = r2_score(y, final.predict(X))`)
    has that model's class, from its lineage: the run index (run_model) reads only the
    record, on the writer thread or a reader rebuilding one segment's summary, which may not
    hold the fitting cell. Here, where the lineage is in hand anyway, it costs a lookup."""
    name = measured_model(cr)
    if name is None or name in (cr.estimators or {}):
        return
    found = models.get(name)
    if found is not None:
        cr.model = found[1]


def _own_models(cr: CellRun) -> None:
    """A loop iteration's models are its own: the hyper-parameters of its loop's cell run
    under their names are the loop's last model's (`m.max_features` of a forest beside this
    iteration's logistic regression)."""
    prefixes = tuple(f"{name}." for name in cr.estimators)
    cr.effective_params = {k: v for k, v in (cr.effective_params or {}).items()
                           if k in cr.params or not k.startswith(prefixes)}


def closure_seqs(deps_of: list[tuple[int, ...]] | Mapping[int, Iterable[int]], seq: int
                 ) -> list[int]:
    """The transitive closure of `seq`'s deps, sorted: O(cell runs in the closure)."""
    seen: set[int] = set()
    stack = list(deps_of[seq])
    while stack:
        s = stack.pop()
        if s in seen:
            continue
        seen.add(s)
        stack.extend(deps_of[s])  # a dep seen already is skipped when popped
    return sorted(seen)


def lineage_ids(log: Iterable[CellRun], run: CellRun) -> list[str]:
    """A cell run's lineage: every earlier cell run of its session it depends on, in
    execution order, derived from the stored direct deps. A record from before direct-deps
    storage carries its lineage list, which is returned as it was."""
    if run.lineage is not None:
        return list(run.lineage)
    log = list(log)
    fast = _closure_in_order(log, run.deps)
    if fast is not None:
        return fast
    return deps_closure(run.deps, {cr.id: cr.deps for cr in log},
                        {cr.id: cr.lineage for cr in log if cr.lineage is not None},
                        {cr.id: cr.seq for cr in log})


def _closure_in_order(log: list[Any], direct: Iterable[Any]) -> list[str] | None:
    """`deps_closure` over a log in execution order (seqs increasing from 0 or more, ids
    unique, no stored closures), walked by position: a chain of 20,000 cell runs is
    reached in one pass and comes out ordered without a sort. None when the log is not such
    a log; `deps_closure` then answers."""
    position = {cr.id: i for i, cr in enumerate(log)}
    if len(position) != len(log) or (log and log[0].seq < 0):
        return None
    previous = -1
    for cr in log:
        if cr.seq <= previous or cr.lineage is not None:
            return None
        previous = cr.seq
    reached = bytearray(len(log))
    unknown: set[str] = set()  # kept as they are, first (as deps_closure sorts them)
    stack = [d for d in direct if isinstance(d, str)]
    while stack:
        rid = stack.pop()
        i = position.get(rid)
        if i is None:
            unknown.add(rid)
        elif not reached[i]:
            reached[i] = 1
            stack.extend([d for d in log[i].deps if isinstance(d, str)])
    return [*sorted(unknown), *(cr.id for cr, hit in zip(log, reached, strict=True) if hit)]


def deps_closure(direct: Iterable[Any], deps: Mapping[str, Iterable[Any]],
                 stored: Mapping[str, Iterable[str]], seq: Mapping[str, int]) -> list[str]:
    """Every cell run reachable from `direct` through `deps` (cell run id -> its direct deps),
    in execution order (`seq`). A cell run in `stored` is an old record whose closure was
    stored whole; an id found in neither (its segment could not be read) is kept as is.
    Shared by `lineage_ids` (over parsed records) and the reader's index (over summaries)."""
    seen: set[str] = set()
    stack = [d for d in direct if isinstance(d, str)]
    while stack:
        rid = stack.pop()
        if rid in seen:
            continue
        seen.add(rid)
        if rid in stored:
            seen.update(stored[rid])
        else:
            stack.extend(d for d in deps.get(rid, ()) if isinstance(d, str) and d not in seen)
    return sorted(seen, key=lambda i: (seq.get(i, -1), i))


# -- large values -------------------------------------------------------------------------------
def value_ref(value: Any, blobs: dict[str, bytes]) -> Any:
    """`value`, or a small reference to it stored once as a blob when its JSON is large."""
    if not isinstance(value, (str, list, dict)):
        return value
    if isinstance(value, str) and len(value) <= LARGE_VALUE_BYTES // 4:
        return value
    text = json.dumps(value, ensure_ascii=False, default=str)
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= LARGE_VALUE_BYTES:
        return value
    from .store.blobs import blob_hash

    digest = blob_hash(data)
    blobs[digest] = data
    return {BLOB_REF: digest, "size": len(data), "preview": preview(value)}


def preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def externalize_large_values(cr: CellRun, blobs: dict[str, bytes]) -> None:
    """Move the cell's large parameter values to blobs before they spread into the effective
    params of every dependent run (a 100 KB prompt must not be copied 300 times)."""
    for name, value in list(cr.params.items()):
        ref = value_ref(value, blobs)
        if ref is not value:
            cr.params[name] = ref


def resolve_value_refs(values: Mapping[str, Any] | None, blobs: Any) -> dict[str, Any]:
    """`values` with each blob reference replaced by the value it stands for (the reference
    stays when its blob is missing); `blobs` has `get_text(hash)`."""
    out: dict[str, Any] = {}
    for name, value in (values or {}).items():
        if is_value_ref(value):
            text = blobs.get_text(value[BLOB_REF])
            if text is not None:
                with contextlib.suppress(ValueError):
                    value = json.loads(text)
        out[name] = value
    return out
