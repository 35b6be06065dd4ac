"""From a recorded run to the export's files, in named steps (the way papermill's
`execute_notebook` reads): check the run, slice the session, translate the cells, rewrite
them for a script, plan data files, parameters and RNG restores, render, assemble.

Reads records only (never a live kernel), so the CLI, the server and the notebook share it.
"""

from __future__ import annotations

import ast
import copy
import datetime as _dt
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import redact
from ..capture.analysis import _READ_CALL, constructor_keywords
from ..capture.printed import labelled_values, wrap
from ..capture.sweeps import is_sweep
from ..errors import HiddenState, MlopsNbError, UnsafeExport, UntranslatableMagic
from ..lineage import lineage_ids
from ..records import (
    MODE_CALLBACK,
    CellRun,
    RecordInvalid,
    cell_run_from_lineage,
    check_lineage,
    iso,
    measured_model,
    model_candidates,
    run_view,
)
from ..store.reader import StoreReader, _gc_paused
from .codegen import (
    AUTOLOG_FILE,
    SUPPORT_FILE,
    SUPPORT_MODULE,
    CellCode,
    DataFile,
    Script,
    ScriptPlan,
    WrittenFile,
    check_reserved,
    render,
    rng_restore,
    support_attr,
    support_call,
)
from .export_warnings import (
    DataFileWarning,
    EarlierModuleVersion,
    ErroredCellWarning,
    ExportWarning,
    MissingModuleSource,
    MissingRngState,
)
from .interact import callback_parameters, strip_interact
from .literals import check_name, literal_to_ast, literal_value
from .project import LIB_DIR, earlier_versions, needed_modules, recorded_modules, star_names
from .prune import (
    drop_discarded_results,
    drop_looks_at_data,
    drop_overwritten_literals,
    drop_unused_secrets,
    used_imports,
)
from .requirements import DEPENDENCIES_HEADER, dependency_pins, imported_modules, requirements
from .runjson import dumps_tagged
from .secrets import secret_assignment, secrets_from_env
from .slicing import Slice, SliceCell, collapse_reruns, compute_slice
from .source import statement_text
from .translate import translate

RUN_JSON = "run.json"
SCRIPT = "train.py"
REQUIREMENTS = "requirements.txt"
RNG_FILE = "rng_states.json"
EXPORT_FORMAT = 2


class DataChanged(UserWarning):
    """A data file the run read is missing or differs from the recorded hash."""


@dataclass
class Export:
    """Everything an export writes, before it is written."""

    run: CellRun
    script: Script
    requirements: list[str]
    run_json: dict[str, Any]
    rng_states: dict[str, Any]
    warnings: list[ExportWarning] = field(default_factory=list)
    modules: dict[str, bytes] = field(default_factory=dict)  # lib/... and support files
    dependencies: list[str] = field(default_factory=list)  # what the requirements pull in

    def files(self) -> dict[str, bytes]:
        deps = [f"\n{DEPENDENCIES_HEADER}\n", *(f"{d}\n" for d in self.dependencies)]
        return {
            SCRIPT: self.script.source.encode("utf-8"),
            REQUIREMENTS: "".join([*(f"{r}\n" for r in self.requirements),
                                   *(deps if self.dependencies else [])]).encode("utf-8"),
            RUN_JSON: dumps_tagged(self.run_json).encode(),
            RNG_FILE: json.dumps(self.rng_states).encode(),
            **self.modules,
        }


def _label(cr: CellRun) -> str:
    return f"In [{cr.execution_count}]" if cr.execution_count is not None else f"seq {cr.seq}"


# -- rewrites -------------------------------------------------------------------------------
class _ShimMlopsNb(ast.NodeTransformer):
    """`import mlops_nb as mnb` -> `mnb = _mnb.tracking`: the script logs into itself."""

    def visit_Import(self, node: ast.Import) -> Any:
        keep, out = [], []
        for alias in node.names:
            if alias.name == "mlops_nb" or alias.name.startswith("mlops_nb."):
                name = alias.asname or "mlops_nb"
                out.append(ast.Assign([ast.Name(name, ast.Store())], support_attr("tracking")))
            else:
                keep.append(alias)
        if keep:
            out.insert(0, ast.Import(keep))
        return out or ast.Pass()

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        module = node.module or ""
        if node.level or not (module == "mlops_nb" or module.startswith("mlops_nb.")):
            return node
        out: list[ast.stmt] = []
        for alias in node.names:
            if alias.name == "*":
                raise UnsafeExport("`from mlops_nb import *` cannot be replayed; import names")
            out.append(ast.Assign([ast.Name(alias.asname or alias.name, ast.Store())],
                                  ast.Attribute(support_attr("tracking"), alias.name,
                                                ast.Load())))
        return out or ast.Pass()


def _pyplot_names(bodies: list[list[ast.stmt]]) -> tuple[set[str], set[str]]:
    """(aliases of matplotlib.pyplot, names bound to pyplot.show)."""
    mods, shows = set(), set()
    for body in bodies:
        for node in ast.walk(ast.Module(body, [])):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "matplotlib.pyplot" and a.asname:
                        mods.add(a.asname)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                for a in node.names:
                    if node.module == "matplotlib" and a.name == "pyplot":
                        mods.add(a.asname or "pyplot")
                    elif node.module == "matplotlib.pyplot" and a.name == "show":
                        shows.add(a.asname or "show")
    return mods, shows


class _ShowToSave(ast.NodeTransformer):
    def __init__(self, mods: set[str], shows: set[str]) -> None:
        self.mods, self.shows = mods, shows
        self.count = 0

    def visit_Expr(self, node: ast.Expr) -> Any:
        call = node.value
        if isinstance(call, ast.Call):
            f = call.func
            hit = (isinstance(f, ast.Name) and f.id in self.shows) or (
                isinstance(f, ast.Attribute) and f.attr == "show"
                and (ast.unparse(f.value) in self.mods
                     or ast.unparse(f.value) == "matplotlib.pyplot"))
            if hit:
                self.count += 1
                return ast.copy_location(support_call("save_figures"), node)
        return self.generic_visit(node)


class _DataPaths(ast.NodeTransformer):
    """`pd.read_csv("data.csv")` -> `pd.read_csv(_mnb.DATA["data.csv"])` for external files."""

    def __init__(self, paths: set[str]) -> None:
        self.paths = paths

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if (node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.args[0].value in self.paths and _READ_CALL.match(name)):
            node.args[0] = ast.Subscript(support_attr("DATA"), ast.Constant(node.args[0].value),
                                         ast.Load())
        return node


def _as_load(target: ast.expr) -> ast.expr:
    node = copy.deepcopy(target)
    for n in ast.walk(node):
        if hasattr(n, "ctx"):
            n.ctx = ast.Load()
    return node


def _one_iteration(body: list[ast.stmt], names: set[str],
                   models: dict[str, Any] | None = None,
                   given: dict[str, str] | None = None) -> tuple[list[ast.stmt], int]:
    """Sweep loops whose variables are `names` run once, over the run's own value; a loop
    over models (variables in `models`) runs over the one item that holds the run's model.
    `given` names the parameter holding a variable's value where it is not the variable
    itself (`for alpha in [alpha_2]`: the slice binds `alpha` before the loop too)."""
    hits = 0
    models = models or {}
    given = given or {}

    def value_of(target: ast.expr) -> ast.expr:
        node = _as_load(target)
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                n.id = given.get(n.id, n.id)
        return node

    class _Loop(ast.NodeTransformer):
        def visit_For(self, node: ast.For) -> Any:
            nonlocal hits
            self.generic_visit(node)
            targets = {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
            if not (targets and targets <= names | set(models) and is_sweep(node)):
                return node  # is_sweep: capture/sweeps.py
            if targets & set(models):
                node.iter = ast.Call(support_attr("loop_item"), [
                    node.iter, literal_to_ast(_shape(node.target)),
                    ast.Dict([ast.Constant(n) for n in sorted(targets - set(models))],
                             [ast.Name(given.get(n, n), ast.Load())
                              for n in sorted(targets - set(models))]),
                    literal_to_ast({n: models[n] for n in sorted(targets & set(models))}),
                ], [])
            else:
                node.iter = ast.List([value_of(node.target)], ast.Load())
            hits += 1
            return node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
            return node

        visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    out: list[ast.stmt] = []
    for stmt in body:
        out.append(_Loop().visit(stmt))
        if hits:  # what follows the sweep (a plot of every value) needs every iteration:
            break  # the iteration's metrics were all computed inside the loop
    return out, hits


def _loop_options(loop: dict[str, Any], counts: dict[str, int]) -> dict[str, str]:
    """The parameter of each loop variable the slice also binds elsewhere (`alpha = 1.0` in
    an earlier cell, then `for alpha in [0.1, 10]`): a name of its own (`alpha_2`), or the
    earlier binding, replayed after the parameters block, would be the value the loop ran
    over and every iteration's export the same run."""
    taken = set(counts) | set(loop)
    given: dict[str, str] = {}
    for name in loop:
        if counts.get(name, 0) > 1:  # bound besides by the loop itself
            given[name] = _free_name(name, taken)
    return given


def _free_name(name: str, taken: set[str]) -> str:
    """`name`, else `name_2`, `name_3`...: the first one not in `taken`, now taken."""
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _shape(target: ast.expr) -> Any:
    """`name, (a, b)` -> ("name", ("a", "b")): how support.loop_item unpacks an item."""
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, (ast.Tuple, ast.List)):
        return tuple(_shape(e) for e in target.elts)
    raise UntranslatableMagic("a loop over models binds something other than names",
                              ["loop target"])


def _stores(cells: list[SliceCell]) -> tuple[dict[str, int], set[str]]:
    """How often the slice binds each name at top level, and which names it may mutate
    (anywhere, through notebook functions too): from the same analyses the def-use index
    used, so a parameter is never a name the lineage saw mutated."""
    counts: dict[str, int] = {}
    mutated: set[str] = set()
    for cell in cells:
        a = cell.analysis
        for name, n in a.def_counts.items():
            counts[name] = counts.get(name, 0) + n
        mutated.update(a.mutated_any)
        for member in cell.members:
            mutated.update(member.run.mutations)
        for fx in a.functions.values():
            mutated |= fx.writes | fx.mutates
    return counts, mutated


def _data_files(sl: Slice, cwd: str | None, out_dir: Path | None, root: Path,
                warnings_: list[ExportWarning]) -> list[DataFile]:
    """One `--data-*` option per file the slice read from outside (by its absolute path),
    with every form the code gave its path in, so the replay can redirect each of them."""
    by_path: dict[str, DataFile] = {}
    used: set[str] = set()

    def add(full: str, given: str, rel: str | None, digest: Any, size: Any,
            folder: bool = False) -> None:
        full = os.path.normpath(full)
        d = by_path.get(full)
        if d is None:
            base = "--data-" + _slug(full)
            flag, n = base, 2
            while flag in used:
                flag, n = f"{base}-{n}", n + 1
            used.add(flag)
            digest = digest if isinstance(digest, str) else None
            size = size if isinstance(size, int) and not isinstance(size, bool) else None
            d = DataFile(given, flag, _default_for(full, out_dir, root), digest, size, full,
                         folder=folder)
            by_path[full] = d
            warnings_.extend(_check_data_now(given, full, digest, folder))
        if given not in d.given:
            d.given.append(given)
        if rel and rel not in d.rel:
            d.rel.append(rel)

    for cell in sl.cells:
        for path in cell.external_reads:
            if not isinstance(path, str) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path):
                continue
            full = path if os.path.isabs(path) or cwd is None else os.path.join(cwd, path)
            fp = cell.run.data.get(f"file:{path}") or {}
            if not fp and not os.path.exists(full):
                # `z.open("inner.csv")`: a member of an archive, or any `.open(...)` whose
                # literal was never a file here, then or now. Made a data file, its literal
                # became a path the script cannot open the member by.
                continue
            add(full, path, None, fp.get("hash"), fp.get("size"))
        for read in cell.runtime_reads:
            full, given = read.get("path"), read.get("given")
            if isinstance(full, str) and os.path.isabs(full) and isinstance(given, str):
                rel = read.get("rel") if isinstance(read.get("rel"), str) else None
                add(full, given, rel, read.get("hash"), read.get("size"),
                    folder=read.get("folder") is True)
    return list(by_path.values())


def _written_files(sl: Slice, cwd: str | None) -> list[WrittenFile]:
    """The files the slice's cells wrote (recorded while they ran, or literal paths of
    `to_csv("out.csv")`), each to be written under the script's output folder, `written/`,
    by its path below the folder all of them share (`data/interim/clean.csv`): a replay
    writes nothing where the notebook did (the project's own `data/`), and a file it writes
    then reads back is its own."""
    by_path: dict[str, WrittenFile] = {}
    for cell in sl.cells:
        for member in cell.members:
            here = member.run.cwd or cwd  # where the cell's relative paths started
            for path in (*member.run.writes, *member.run.files_written):
                if not isinstance(path, str) or not path or re.match(
                        r"^[A-Za-z][A-Za-z0-9+.-]*://", path):
                    continue
                if not os.path.isabs(path) and here is None:
                    continue
                full = os.path.normpath(os.path.join(here or "", path))
                w = by_path.setdefault(full, WrittenFile(full, ""))
                for text in (path, full):
                    if text not in w.given:
                        w.given.append(text)
                rel = os.path.relpath(full, here) if here is not None else None
                if rel is not None and rel not in w.rel:
                    w.rel.append(rel)
    if not by_path:
        return []
    base = os.path.commonpath([os.path.dirname(p) for p in by_path])
    for full, w in by_path.items():
        w.to = Path(os.path.relpath(full, base)).as_posix()
    return list(by_path.values())


def _default_for(full: str, out_dir: Path | None, root: Path) -> str:
    """Relative to the export folder when both are inside the project, else absolute."""
    if out_dir is None:
        return full
    try:
        root_r, out_r = root.resolve(), out_dir.resolve()
        inside = Path(full).resolve()
        if root_r in inside.parents and (out_r == root_r or root_r in out_r.parents):
            return os.path.relpath(inside, out_r)
    except (OSError, ValueError):
        pass
    return full


def _slug(path: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "-", Path(path).name.lower()).strip("-")[:40].strip("-")
    return text or "file"


# -- the build ------------------------------------------------------------------------------
@dataclass
class _Build:
    """What the steps of one export hand each other."""

    reader: StoreReader
    target: CellRun
    out_dir: Path | None
    log: list[CellRun] = field(default_factory=list)
    anchor_seq: int = 0
    code_of: dict[int, str | None] = field(default_factory=dict)
    own_modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    sl: Slice | None = None
    bodies: list[list[ast.stmt]] = field(default_factory=list)
    pip_reqs: list[str] = field(default_factory=list)
    secret_env: list[str] = field(default_factory=list)
    warnings: list[ExportWarning] = field(default_factory=list)
    session: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    data_files: list[DataFile] = field(default_factory=list)
    written: list[WrittenFile] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    param_text: dict[str, str] = field(default_factory=dict)
    hoisted: list[ast.stmt] = field(default_factory=list)
    future: list[ast.stmt] = field(default_factory=list)
    rng_states: dict[str, Any] = field(default_factory=dict)
    cells: list[CellCode] = field(default_factory=list)


def build_export(reader: StoreReader, target: CellRun, out_dir: Path | None = None) -> Export:
    """Plan and render the export of `target`; raises ExportRefused/UnsafeExport on problems.

    `out_dir`, where it will be written, lets data paths be given relative to the export.
    """
    b = _Build(reader, target, out_dir)
    check_exportable(target)
    with _gc_paused():  # a long slice is many small acyclic objects, all kept to the end
        slice_session(b)
        translate_cells(b)
        rewrite_for_script(b)
        plan_printed(b)
        if target.mode == MODE_CALLBACK:  # a run an `interact` slider made: interact.py
            strip_interact(b.bodies)
        plan_data_files(b)
        drop_discarded_results(b)  # prune.py
        drop_looks_at_data(b)
        plan_parameters(b)
        if target.mode == MODE_CALLBACK:
            callback_parameters(b.bodies, b.params)
        b.hoisted, b.future, b.bodies = _hoist(b.bodies, _sl(b), _own_tops(b.own_modules))
        b.hoisted = used_imports(b.hoisted, b.bodies)
        plan_rng(b)
        export = assemble(b)
        # The session log and the slice are freed while the collector is still paused: the
        # first collection after it resumes would otherwise walk every one of their objects
        # (a tenth of a second at 20,000 cells) only to find them garbage.
        del b
    return export


def _sl(b: _Build) -> Slice:
    assert b.sl is not None, "slice_session runs first"
    return b.sl


def check_exportable(target: CellRun) -> None:
    """Only runs with metrics, and never a search candidate (its parent refits it)."""
    if not target.is_run:
        raise MlopsNbError(
            f"cell run {target.id[:12]} recorded no metrics: only runs can be exported and "
            "verified; `mlops-nb runs` lists them")
    if target.parent is not None and target.iteration is None:
        raise MlopsNbError(
            f"run {target.id[:12]} is a candidate of a search, recorded from its results, not "
            "a cell of its own: export its parent run (the search), whose best candidate it "
            f"refits: {target.parent[:12]}")


def slice_session(b: _Build) -> None:
    """The cell runs the target depends on; refuses hidden state and missing code."""
    reader, target = b.reader, b.target
    log = reader.lineage_log(target.session)
    if log is not None:
        try:
            _slice_log(b, log)  # b.log is `log`; the slice's cells hold full records
            return
        except RecordInvalid:  # a slice cell's values do not decode: the tolerant read says
            b.code_of.clear()
    _slice_log(b, reader.session_log(target.session, light=True))


def _slice_log(b: _Build, log: list[Any]) -> None:
    """slice_session over `log`: lineage records (the slice's cells completed once sliced
    and folded; `b.log` keeps the lineage records) or full records (the tolerant read). The
    target is read in full either way."""
    reader, target = b.reader, b.target
    b.log = log
    b.anchor_seq = next((cr.seq for cr in b.log if cr.id == target.parent), target.seq)
    texts: dict[str | None, str | None] = {}  # re-runs share their code's blob: read it once
    for cr in b.log:
        if cr.parent is None and cr.seq <= b.anchor_seq:
            if cr.python not in texts:
                texts[cr.python] = reader.blobs.get_text(cr.python)
            b.code_of[cr.seq] = texts[cr.python]
    b.own_modules = recorded_modules(b.log, b.anchor_seq)
    sl = b.sl = compute_slice(b.log, target, b.code_of, star_names(b.own_modules, reader.blobs))
    # Folding re-runs reads only their def-use facts, so it comes first: then only the cells
    # the script writes are completed to full records (a chain of 20,000 `x = x + 1` is
    # three), and the re-runs folded into them are only checked (their measured values are
    # never read, but a damaged one still sends the export down the tolerant read).
    collapse_reruns(sl)
    _complete_slice(sl)
    if sl.missing_code:
        raise UntranslatableMagic(
            f"the code of cell run(s) at seq {sl.missing_code} is missing from the store's "
            "blobs; the slice cannot be written", [f"missing code at seq {sl.missing_code}"])
    if sl.unresolved:
        labels = {m.seq: _label(m.run) for c in sl.cells for m in c.members}
        problems = [f"{name} (used by {', '.join(labels[s] for s in seqs)})"
                    for name, seqs in sl.unresolved.items()]
        raise HiddenState(
            "the run used names that no recorded cell run defined (hidden state: pushed into "
            "the kernel, or defined while not recorded): " + "; ".join(problems)
            + ". Define them in a cell and re-run it, then export again", problems)


def _complete_slice(sl: Slice) -> None:
    """The slice's cells and anchor as full records (lineage records decoded in full; a
    tolerant read's records are already), the re-runs folded into them validated only:
    what is read of those (ids, seqs, execution counts, mutations) a lineage record holds.
    Raises RecordInvalid like a full read would."""
    for cell in sl.cells:
        rec = cell.run
        cell.run = cell_run_from_lineage(rec)
        if rec is sl.anchor:  # a loop iteration's run: its loop's cell run, the last cell
            sl.anchor = cell.run
        for rerun in cell.reruns:
            check_lineage(rerun.run)
    sl.anchor = cell_run_from_lineage(sl.anchor)


def translate_cells(b: _Build) -> None:
    """IPython syntax into plain Python; refuses what has no translation."""
    sl = _sl(b)
    refused: list[str] = []
    for cell in sl.cells:
        raw = b.reader.blobs.get_text(cell.run.code)
        tr = translate(cell.code, raw)
        refused.extend(f"{_label(cell.run)} {r}" for r in tr.refused)
        b.pip_reqs.extend(tr.requirements)
        b.bodies.append(tr.body)
        if cell.run.status != "ok" and cell.run.error:
            b.warnings.append(ErroredCellWarning(
                f"{_label(cell.run)} raised {cell.run.error.get('type')} in the notebook; the "
                "script replays it up to the error", cell.seq))
    in_slice = {m.run.seq for c in sl.cells for m in c.members}
    for cr in b.log:  # `!pip install` anywhere before the run still belongs in requirements
        if cr.seq < b.anchor_seq and cr.seq not in in_slice and cr.parent is None and (
                {"!", "pip"} & set(cr.magics)) and b.code_of.get(cr.seq):
            b.pip_reqs.extend(translate(b.code_of[cr.seq] or "").requirements)
    if refused:
        raise UntranslatableMagic(
            "the slice uses IPython syntax with no plain-Python translation, so the export "
            "cannot claim to reproduce the run: " + "; ".join(refused), refused)


def rewrite_for_script(b: _Build) -> None:
    """Credentials from the environment, mlops_nb -> the script's own tracking, plt.show()
    -> figures/ files."""
    check_reserved(b.bodies)
    drop_unused_secrets(b.bodies)  # prune.py: before they become required variables
    bodies, b.secret_env = secrets_from_env(b.bodies)
    bodies = [_flatten([_ShimMlopsNb().visit(s) for s in body]) for body in bodies]
    mods, shows = _pyplot_names(bodies)
    b.bodies = [[_ShowToSave(mods, shows).visit(s) for s in body] for body in bodies]


def plan_data_files(b: _Build) -> None:
    """One `--data-*` option per file the slice read, its recorded hash checked on load."""
    sl = _sl(b)
    b.session = b.reader.session_info(b.target.session)
    env = b.session.get("environment")
    b.env = env if isinstance(env, dict) else {}
    cwd = b.env.get("cwd") if isinstance(b.env.get("cwd"), str) else None
    b.data_files = _data_files(sl, cwd, b.out_dir, b.reader.home.parent, b.warnings)
    b.written = _written_files(sl, cwd)
    for i, cell in enumerate(sl.cells):
        mine = {*cell.external_reads, *(r.get("given") for r in cell.runtime_reads)}
        static = {p for p in mine
                  if isinstance(p, str) and any(p in d.given for d in b.data_files)}
        if static:
            b.bodies[i] = [_DataPaths(static).visit(s) for s in b.bodies[i]]


def plan_printed(b: _Build) -> None:
    """The run's metrics its cell only printed (capture/printed.py) are read where they are
    computed, as capture read them: `print(f"accuracy: {_mnb.printed('accuracy', ...)}")`.
    A name the cell also binds is its variable's (capture's order), so it stays unread."""
    sl = _sl(b)
    wanted = set(b.target.metrics) - set(sl.cells[-1].analysis.def_counts)
    if not wanted:
        return
    found = [f for f in labelled_values(b.bodies[-1]) if f[0] in wanted]
    wrap(found, lambda name, value: ast.Call(support_attr("printed"),
                                             [ast.Constant(name), value], []))


def plan_parameters(b: _Build) -> None:
    """The parameters block: a loop iteration's own values, literals bound once in the slice
    and never mutated (their recorded value), and constructors' literal keywords."""
    sl, target = _sl(b), b.target
    anchor_index = len(sl.cells) - 1
    loop_rng: list[ast.stmt] = []
    counts, mutated = _stores(sl.cells)
    if target.parent is not None:  # a loop iteration's run: its loop runs once, its values
        models = {n: m for n, m in (target.estimators or {}).items() if n.isidentifier()}
        loop = {k: v for k, v in target.params.items()  # not `model.C` of a loop's model
                if not (k.partition(".")[0] in models and "." in k)}
        for name in loop:
            check_name(name, what="loop variable")
        given = _loop_options(loop, counts)
        b.params.update({given.get(k, k): v for k, v in loop.items()})
        body, hits = _one_iteration(b.bodies[anchor_index], set(loop), models, given)
        if not hits:
            raise UntranslatableMagic(
                f"run {target.id[:12]} is iteration {target.iteration} of a loop the export "
                "cannot find in its cell's code", ["loop not found"])
        b.bodies[anchor_index] = body
        loop_rng = [rng_restore(g, d) for g, d in sorted((target.rng or {}).items())]

    for name, n in drop_overwritten_literals(b.bodies, mutated).items():
        counts[name] -= n
    for i, cell in enumerate(sl.cells):
        kept: list[ast.stmt] = []
        for stmt in b.bodies[i]:
            name, value, ok = _param_of(stmt, cell)
            if (ok and name is not None and not name.startswith("_") and counts.get(name) == 1
                    and name not in mutated and name not in b.params and _usable_name(name)):
                recorded = (cell.run.params or {}).get(name)
                # a redacted widget value, or a value capture redacted whose literal a store
                # written before that redaction still holds: from the environment
                hidden = secret_assignment(name, value, b.secret_env) or (
                    secret_assignment(name, recorded, b.secret_env)
                    if isinstance(recorded, str) else None)
                if hidden is not None:
                    kept.append(hidden)
                    continue
                b.params[name] = value
                text = statement_text(stmt)
                if text is not None:
                    b.param_text[name] = text
                continue
            kept.append(stmt)
        b.bodies[i] = kept
    _constructor_options(b.bodies, b.params, counts)
    if loop_rng:
        body = b.bodies[anchor_index]
        first_loop = next((j for j, s in enumerate(body) if isinstance(s, ast.For)), 0)
        b.bodies[anchor_index] = body[:first_loop] + loop_rng + body[first_loop:]


def plan_rng(b: _Build) -> None:
    """The recorded RNG states the script restores, and each cell's code with its restores."""
    sl, target = _sl(b), b.target
    wanted = {d for rb in sl.rng_before.values() for d in rb.values()}
    if target.parent is not None:
        wanted.update((target.rng or {}).values())
    for digest in sorted(wanted):
        text = b.reader.blobs.get_text(digest)
        if text is None:
            b.warnings.append(MissingRngState(
                f"RNG state {digest[:12]} is missing from the store; not restored", digest))
            continue
        b.rng_states[digest] = json.loads(text)
    autolog = _needs_autolog(b)
    for i, cell in enumerate(sl.cells):
        rng = {g: d for g, d in sl.rng_before.get(cell.seq, {}).items() if d in b.rng_states}
        b.cells.append(CellCode(cell.seq, cell.run.execution_count, cell.run.id, b.bodies[i],
                                rng, errored=cell.run.status != "ok",
                                figures=bool(cell.run.figures),
                                autolog=autolog and i == len(sl.cells) - 1,
                                callback=cell.run.mode == MODE_CALLBACK,
                                repeat=len(cell.members), span=cell.span,
                                last_count=cell.members[-1].run.execution_count))


def assemble(b: _Build) -> Export:
    """Render train.py and gather requirements, run.json and the files beside the script."""
    sl, target = _sl(b), b.target
    models = _models(target, sl)
    metrics = [m for m in target.metrics if isinstance(m, str)]
    modules = imported_modules([*b.bodies, b.hoisted])
    missing: list[str] = []
    project = needed_modules(set(modules) | _star_tops(sl) | _script_tops(sl)
                             | _loaded_tops(sl), b.own_modules, b.reader.blobs, missing)
    b.warnings.extend(MissingModuleSource(m, m.split(":")[0].removeprefix("module "))
                      for m in missing)
    runs = {m.run.seq: m.run for c in sl.cells for m in c.members}
    for name, seq, version in earlier_versions(b.log, runs, {m.name: m.hash for m in project}):
        b.warnings.append(EarlierModuleVersion(
            f"module {name}: {_label(runs[seq])} ran under an earlier version of it (recorded "
            f"at seq {version}) than the one the script imports; that cell may replay "
            "differently. Re-run it and the cells after it, then export again", name, seq))
    own = {m.name.split(".")[0] for m in project}
    readers = [m for m in ("pandas", "numpy", "joblib", "sqlite3") if m in modules]
    if "sqlite3" not in readers and any(  # a driver's (SQLAlchemy's) connect: not imported
            str(r.get("via", "")).startswith("sqlite3.") for cell in sl.cells
            for r in cell.runtime_reads):
        readers.append("sqlite3")
    hoisted = list(b.hoisted)
    if _uses_name(b.bodies, "display"):
        hoisted.append(ast.ImportFrom(SUPPORT_MODULE, [ast.alias("display")], 0))
    autolog = any(c.autolog for c in b.cells)
    plan = ScriptPlan(_docstring(target, b.session), hoisted, b.params, b.data_files, b.cells,
                      metrics, models, RNG_FILE, b.future, readers=readers,
                      secrets=b.secret_env, lib_dir=LIB_DIR if project else None,
                      autolog=autolog, param_text=b.param_text, rng=bool(b.rng_states),
                      cross_validated=[n for n, est in (target.estimators or {}).items()
                                       if isinstance(est, dict) and est.get("cross_validated")],
                      written=b.written)
    script = render(plan)
    extra = ["xxhash"] if b.data_files else []
    reqs = requirements([m for m in modules if m not in own], _packages(b.session), extra,
                        b.pip_reqs)
    deps = dependency_pins(reqs, _packages(b.session))
    files = _support_files(autolog)
    run_json = {
        "format": EXPORT_FORMAT,
        "run_id": target.id,
        "experiment": target.experiment,
        "session": target.session,
        "notebook": target.notebook,
        "exported_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "store": str(b.reader.home),
        "expected_metrics": dict(target.metrics),
        "parameters": b.params,
        "parameter_flags": script.flags,
        "secret_env": b.secret_env,
        "data_files": [vars(d) for d in b.data_files],
        "modules": [m.manifest() for m in project],
        "support": [_support_manifest(name, data) for name, data in files.items()],
        "script": script.config,
        "slice": [_slice_entry(c, sl) for c in sl.cells],
        "requirements": reqs,
        "dependencies": deps,
        "environment": {k: b.env.get(k) for k in ("python", "implementation", "platform",
                                                   "machine", "cwd", "git") if k in b.env},
        "warnings": [w.to_json() for w in b.warnings],
        "l0": True,
        "run": run_view(target, lineage_ids(b.log, target)),
    }
    for w in b.warnings:
        if isinstance(w, DataFileWarning):
            warnings.warn(str(w), DataChanged, stacklevel=3)
    run_json = _scrubbed(run_json)  # defensive: a store written before redaction
    return Export(target, script, reqs, run_json, b.rng_states, b.warnings,
                  {**{m.path: m.source for m in project}, **files}, deps)


def _slice_entry(c: SliceCell, sl: Slice) -> dict[str, Any]:
    """run.json's record of one slice cell; identical re-runs replayed as its loop are
    listed by id only (`reruns`, in order), so a long chain stays a short file."""
    entry = {"id": c.run.id, "seq": c.seq, "execution_count": c.run.execution_count,
             "cell_id": c.run.cell_id, "status": c.run.status,
             "why": c.reasons, "rng_restored": sorted(sl.rng_before.get(c.seq, {}))}
    if c.reruns:
        entry["reruns"] = [r.run.id for r in c.reruns]
        entry["last_seq"] = c.reruns[-1].seq
        entry["last_execution_count"] = c.reruns[-1].run.execution_count
    return entry


_HEX_ID = re.compile(r"[0-9a-f]{8,64}")


def _scrubbed(value: Any) -> Any:
    """`redact.scrub_obj(value)`, each distinct string judged once: a long slice repeats its
    status and reason texts, and its run ids (plain hex: no secret shape holds only hex
    digits, so `scrub_text` returns them as they are) are passed over."""
    memo: dict[str, str] = {}

    def text(v: str) -> str:
        out = memo.get(v)
        if out is None:
            out = memo[v] = v if _HEX_ID.fullmatch(v) else redact.scrub_text(v)
        return out

    def walk(v: Any, depth: int) -> Any:
        if isinstance(v, str):
            return text(v)
        if depth > 40:
            return v
        if isinstance(v, dict):
            return {walk(k, depth + 1): walk(x, depth + 1) for k, x in v.items()}
        if isinstance(v, list):
            if all(type(x) is str for x in v):  # a lineage, a slice cell's reasons
                if len(v) > 1 and _all_hex_ids(v):
                    return list(v)
                return [text(x) for x in v]
            return [walk(x, depth + 1) for x in v]
        if isinstance(v, tuple):
            return tuple(walk(x, depth + 1) for x in v)
        return v

    return walk(value, 0)


def _all_hex_ids(texts: list[str]) -> bool:
    """Every text is a hex id (`_HEX_ID`: 8 to 64 of [0-9a-f]), checked over them all at once
    in C: the lineage and the re-runs of a long chain are 20,000 ids each."""
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1:  # a text holding a newline is no id
        return False
    lengths = list(map(len, texts))
    return min(lengths) >= 8 and max(lengths) <= 64 and not joined.strip("0123456789abcdef\n")


def _support_files(autolog: bool) -> dict[str, bytes]:
    """The support module (and scikit-learn autolog when the run's cell needs it): our own
    fixed code, copied beside train.py. Found, not imported: only their source is needed."""
    files = {SUPPORT_FILE: _module_source(f"{__package__}.support")}
    if autolog:
        files[AUTOLOG_FILE] = _module_source(f"{__package__.rpartition('.')[0]}.capture.autolog")
    return files


def _module_source(name: str) -> bytes:
    """The source file of one of our modules, as bytes, without running it."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise MlopsNbError(f"mlops-nb's own module {name} is missing from this installation")
    return Path(spec.origin).read_bytes()


def _support_manifest(name: str, data: bytes) -> dict[str, Any]:
    from ..store.blobs import blob_hash

    return {"path": name, "hash": blob_hash(data), "size": len(data)}


def _uses_name(bodies: list[list[ast.stmt]], name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name
               for body in bodies for stmt in body for n in ast.walk(stmt))


def _needs_autolog(b: _Build) -> bool:
    """scikit-learn autolog in the script only when the slice imports scikit-learn and some
    metric of the run is not a variable of its cell or an explicit `log_metric`: then only
    around the run's own cell, the one whose calls the kernel named."""
    sl = _sl(b)
    modules = imported_modules([*b.bodies, b.hoisted])
    if not any(str(m).split(".")[0] == "sklearn" for m in modules):
        return False
    last = sl.cells[-1].analysis
    # `from sklearn.metrics import accuracy_score` in the metric's own cell binds the name
    # of the function, not of a value: the metric named after it is autologged
    explicit = (set(last.def_counts) - set(last.import_names)) | _logged_names(b.bodies)
    return any(m not in explicit for m in b.target.metrics)


def _logged_names(bodies: list[list[ast.stmt]]) -> set[str]:
    """Metric names the code logs explicitly: `log_metric("f1", ...)`, `log_metrics({...})`."""
    out: set[str] = set()
    for body in bodies:
        for node in (n for stmt in body for n in ast.walk(stmt)):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(
                f, ast.Name) else ""
            first = node.args[0]
            if name == "log_metric" and isinstance(first, ast.Constant):
                out.add(str(first.value))
            elif name == "log_metrics" and isinstance(first, ast.Dict):
                out.update(str(k.value) for k in first.keys if isinstance(k, ast.Constant))
    return out


def _usable_name(name: str) -> bool:
    """A name the parameters block can hold; any other stays an assignment in its cell."""
    try:
        check_name(name)
    except UnsafeExport:
        return False
    return True


def _star_tops(sl: Slice) -> set[str]:
    return {m.split(".")[0] for c in sl.cells for m in c.analysis.star_imports
            if not m.startswith(".")}


def _script_tops(sl: Slice) -> set[str]:
    """What the slice's `%run` scripts import (capture adds it to their cell's imports): the
    script is a data file, not code the export reads for its imports."""
    return {m.split(".")[0] for c in sl.cells if "run" in c.analysis.magics
            for m in c.run.imports if m and not m.startswith(".")}


def _loaded_tops(sl: Slice) -> set[str]:
    """The notebook's own modules that appeared while the slice's cells ran, imported by
    name or not: `joblib.load` of a pipeline holding a class of `src/feature_tools.py` loads
    that module by unpickling it, and so must the script."""
    return {m["name"].split(".")[0] for c in sl.cells for member in c.members
            for m in member.run.modules
            if isinstance(m, dict) and isinstance(m.get("name"), str) and m["name"]}


def snake_case(name: str) -> str:
    """A class's name as an option's: `StratifiedKFold` -> `stratified_k_fold`,
    `LogisticRegressionCV` -> `logistic_regression_cv`, `XGBClassifier` -> `xgb_classifier`
    (a run of capitals is one word, its last capital the next word's first letter)."""
    return _WORD_START.sub("_", name).lower()


_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _constructor_options(bodies: list[list[ast.stmt]], params: dict[str, Any],
                         counts: dict[str, int]) -> list[list[ast.stmt]]:
    """`RandomForestRegressor(n_estimators=3)` -> `(n_estimators=model_n_estimators)` with
    `model_n_estimators = 3` in the parameters block: a constructor's literal keywords become
    options of the script, as the run recorded them (`model.n_estimators`). The keywords are
    the ones capture records (`constructor_keywords`, shared)."""
    taken = set(counts) | set(params)

    def option(owner: str | None, callee: str, kw: str) -> str | None:
        base = owner or snake_case(callee)
        name = re.sub(r"\W+", "_", f"{base}_{kw}").strip("_")
        if not name.isidentifier() or name.startswith("_"):
            return None
        return _free_name(name, taken)

    for body in bodies:
        for owner, callee, kw in list(constructor_keywords(body)):
            if isinstance(kw.value, ast.Name):
                continue
            ok, value = literal_value(kw.value)
            name = option(owner, callee, kw.arg or "") if ok else None
            if name is None:
                continue
            params[name] = value
            kw.value = ast.Name(name, ast.Load())
    return bodies


def _models(target: CellRun, sl: Slice) -> list[str]:
    """Names of the fitted models in the order `--save-model` prefers them, best last.

    The model that produced the run's metrics (autolog traced its predictions or its
    `score`) comes first in intent: a pipeline, not its inner step; this iteration's model,
    not the loop's last. Without that, the estimators the run's cell fitted.
    """
    models = model_candidates(sl.anchor, (cell.run for cell in reversed(sl.cells)))
    best = measured_model(target)
    if best is not None:
        models = [m for m in models if m != best] + [best]
    return [m for m in models if isinstance(m, str) and m.isidentifier()]


def _autolog_source(modules: Any) -> str | None:
    """The autolog module's own source, embedded when the slice imports scikit-learn."""
    if not any(str(m).split(".")[0] == "sklearn" for m in modules):
        return None
    from ..capture import autolog

    return Path(autolog.__file__).read_text(encoding="utf-8")


def _flatten(body: list[Any]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for s in body:
        if isinstance(s, list):
            out.extend(s)
        else:
            out.append(s)
    return out


def _param_of(stmt: ast.stmt, cell: SliceCell) -> tuple[str | None, Any, bool]:
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)):
        return None, None, False
    name = stmt.targets[0].id
    widget = cell.run.widget_values or {}
    if name in widget and isinstance(stmt.value, ast.Attribute) and stmt.value.attr == "value":
        try:
            literal_to_ast(widget[name])
        except UnsafeExport:
            return None, None, False
        return name, widget[name], True
    ok, value = literal_value(stmt.value)
    return name, value, ok


def _own_tops(recorded: dict[str, dict[str, Any]]) -> frozenset[str]:
    """The top-level names of the notebook's own modules (recorded: what `lib/` holds)."""
    return frozenset(name.split(".")[0] for name in recorded)


def _imports_own(stmt: ast.Import | ast.ImportFrom, own: frozenset[str]) -> bool:
    """An import of one of the notebook's own modules (a relative one is too)."""
    if isinstance(stmt, ast.ImportFrom):
        return bool(stmt.level) or (stmt.module or "").split(".")[0] in own
    return any(a.name.split(".")[0] in own for a in stmt.names)


def _hoist(bodies: list[list[ast.stmt]], sl: Slice, own: frozenset[str] = frozenset()
           ) -> tuple[list[ast.stmt], list[ast.stmt], list[list[ast.stmt]]]:
    """Top-level imports move to the top when every binding of their names is that import.

    The notebook's own modules (`own`: top-level names) are imported where their cell did,
    after `_mnb.start()`: a module that reads a settings file or a lookup table as it loads,
    found from its own `__file__` (which is in `lib/` now), reads it through the data paths
    the script redirects, and only from then on."""
    specs: dict[str, set[str]] = {}
    alias_count: dict[str, int] = {}
    for body in bodies:
        for node in ast.walk(ast.Module(body, [])):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                origin = (f"{node.level}:{node.module}" if isinstance(node, ast.ImportFrom)
                          else "")
                for a in node.names:
                    bound = a.asname or a.name.split(".")[0]
                    specs.setdefault(bound, set()).add(f"{origin}:{a.name}")
                    alias_count[bound] = alias_count.get(bound, 0) + 1
    counts_all, _ = _stores(sl.cells)
    hoisted: list[ast.stmt] = []
    future: list[ast.stmt] = []
    seen: set[str] = set()
    out: list[list[ast.stmt]] = []
    env_seen = False
    for cell, body in zip(sl.cells, bodies, strict=True):
        kept: list[ast.stmt] = []
        for stmt in body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                text = ast.unparse(stmt)
                if text not in seen:
                    seen.add(text)
                    future.append(stmt)
                continue
            if (isinstance(stmt, (ast.Import, ast.ImportFrom)) and not env_seen
                    and cell.run.status == "ok" and all(a.name != "*" for a in stmt.names)
                    and not _imports_own(stmt, own)):
                bound = [a.asname or a.name.split(".")[0] for a in stmt.names]
                if all(len(specs.get(b, ())) == 1 and counts_all.get(b) == alias_count.get(b)
                       for b in bound):
                    text = ast.unparse(stmt)
                    if text not in seen:
                        seen.add(text)
                        hoisted.append(stmt)
                    continue
            kept.append(stmt)
        if {"cd", "env"} & set(cell.analysis.magics):
            env_seen = True
        out.append(kept)
    return hoisted, future, out


def _packages(session: dict[str, Any]) -> dict[str, str]:
    pk = session.get("packages")
    if not isinstance(pk, dict):
        env = session.get("environment")
        pk = env.get("packages") if isinstance(env, dict) else None
    if not isinstance(pk, dict):
        return {}
    return {str(k): str(v) for k, v in pk.items()
            if re.match(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$", str(v))}


def _check_data_now(key: str, path: str, digest: str | None, folder: bool = False
                    ) -> list[ExportWarning]:
    from ..capture.fingerprint import fingerprint_file, fingerprint_folder

    fp = fingerprint_folder(path) if folder else fingerprint_file(path)
    if fp is None:
        return [DataFileWarning(f"data {'folder' if folder else 'file'} {key!r} is missing "
                                f"at {path}; pass --data-* to the script", path, "missing")]
    if digest is not None and fp["hash"] != digest:
        return [DataFileWarning(f"data file {key!r} changed since the run (recorded hash "
                                f"{digest[:12]}, now {fp['hash'][:12]}): the metrics may not "
                                "reproduce", path, "changed")]
    return []


def _docstring(target: CellRun, session: dict[str, Any]) -> str:
    """Two lines: what the script reproduces, from which notebook, and how to run it."""
    notebook = target.notebook or session.get("notebook")
    where = f" from {Path(notebook).name}" if isinstance(notebook, str) and notebook else ""
    count = (f" (In [{target.execution_count}])"
             if isinstance(target.execution_count, int) else "")
    items = list(target.metrics.items())
    metrics = ", ".join(f"{k} = {v!r}" for k, v in items[:6])
    if len(items) > 6:
        metrics += f" and {len(items) - 6} more (run.json)"
    return (f"Reproduce run {target.id[:12]} of experiment {target.experiment!r}{where}{count}."
            f"\n\nRecorded {iso(target.started_at)[:16]} with {metrics}; options: python "
            "train.py --help")
