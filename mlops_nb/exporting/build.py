"""From a recorded run to the export's files: slice, translate, rewrite, plan, render.

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
from ..capture.analysis import _READ_CALL, PARAM_FUNCTIONS, PLOT_KEYWORDS, call_param_target
from ..capture.sweeps import is_sweep
from ..errors import HiddenState, MlopsNbError, UnsafeExport, UntranslatableMagic
from ..jsonvalues import to_tagged
from ..lineage import lineage_ids
from ..records import CellRun, iso, run_view
from ..store.reader import StoreReader
from .codegen import CellCode, DataFile, Script, ScriptPlan, check_reserved, render
from .literals import check_name, literal_to_ast
from .project import LIB_DIR, needed_modules, recorded_modules, star_names
from .requirements import imported_modules, requirements
from .secrets import secret_assignment, secrets_from_env
from .slicing import Slice, SliceCell, compute_slice
from .translate import translate

RUN_JSON = "run.json"
SCRIPT = "train.py"
REQUIREMENTS = "requirements.txt"
RNG_FILE = "rng_states.json"
EXPORT_FORMAT = 1


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
    warnings: list[str] = field(default_factory=list)
    modules: dict[str, bytes] = field(default_factory=dict)  # lib/... -> source

    def files(self) -> dict[str, bytes]:
        return {
            SCRIPT: self.script.source.encode("utf-8"),
            REQUIREMENTS: ("".join(f"{r}\n" for r in self.requirements)).encode("utf-8"),
            RUN_JSON: json.dumps(to_tagged(self.run_json), indent=1, default=repr).encode(),
            RNG_FILE: json.dumps(self.rng_states).encode(),
            **self.modules,
        }


def _label(cr: CellRun) -> str:
    return f"In [{cr.execution_count}]" if cr.execution_count is not None else f"seq {cr.seq}"


# -- rewrites -------------------------------------------------------------------------------
class _ShimMlopsNb(ast.NodeTransformer):
    """`import mlops_nb as mnb` -> `mnb = _mnb_tracking`: the script logs into itself."""

    def visit_Import(self, node: ast.Import) -> Any:
        keep, out = [], []
        for alias in node.names:
            if alias.name == "mlops_nb" or alias.name.startswith("mlops_nb."):
                name = alias.asname or "mlops_nb"
                out.append(ast.Assign([ast.Name(name, ast.Store())],
                                      ast.Name("_mnb_tracking", ast.Load())))
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
                                  ast.Attribute(ast.Name("_mnb_tracking", ast.Load()),
                                                alias.name, ast.Load())))
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
                return ast.Expr(ast.Call(ast.Name("_mnb_save_figures", ast.Load()), [], []))
        return self.generic_visit(node)


class _DataPaths(ast.NodeTransformer):
    """`pd.read_csv("data.csv")` -> `pd.read_csv(_mnb_DATA["data.csv"])` for external files."""

    def __init__(self, paths: set[str]) -> None:
        self.paths = paths

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if (node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.args[0].value in self.paths and _READ_CALL.match(name)):
            node.args[0] = ast.Subscript(ast.Name("_mnb_DATA", ast.Load()),
                                         ast.Constant(node.args[0].value), ast.Load())
        return node


def _as_load(target: ast.expr) -> ast.expr:
    node = copy.deepcopy(target)
    for n in ast.walk(node):
        if hasattr(n, "ctx"):
            n.ctx = ast.Load()
    return node


def _one_iteration(body: list[ast.stmt], names: set[str]) -> tuple[list[ast.stmt], int]:
    """Sweep loops whose variables are `names` run once, over the run's own value."""
    hits = 0

    class _Loop(ast.NodeTransformer):
        def visit_For(self, node: ast.For) -> Any:
            nonlocal hits
            self.generic_visit(node)
            targets = {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
            if targets and targets <= names and is_sweep(node):  # capture/sweeps.py
                node.iter = ast.List([_as_load(node.target)], ast.Load())
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
        mutated.update(cell.run.mutations)
        for fx in a.functions.values():
            mutated |= fx.writes | fx.mutates
    return counts, mutated


def _literal_value(node: ast.expr) -> tuple[bool, Any]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    try:
        literal_to_ast(value)
    except UnsafeExport:
        return False, None
    return True, value


def _data_files(sl: Slice, cwd: str | None, out_dir: Path | None, root: Path,
                warnings_: list[str]) -> list[DataFile]:
    """One `--data-*` option per file the slice read from outside (by its absolute path),
    with every form the code gave its path in, so the replay can redirect each of them."""
    by_path: dict[str, DataFile] = {}
    used: set[str] = set()

    def add(full: str, given: str, rel: str | None, digest: Any, size: Any) -> None:
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
            d = DataFile(given, flag, _default_for(full, out_dir, root), digest, size, full)
            by_path[full] = d
            warnings_.extend(_check_data_now(given, full, digest))
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
            add(full, path, None, fp.get("hash"), fp.get("size"))
        for read in cell.runtime_reads:
            full, given = read.get("path"), read.get("given")
            if isinstance(full, str) and os.path.isabs(full) and isinstance(given, str):
                rel = read.get("rel") if isinstance(read.get("rel"), str) else None
                add(full, given, rel, read.get("hash"), read.get("size"))
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
def build_export(reader: StoreReader, target: CellRun, out_dir: Path | None = None) -> Export:
    """Plan and render the export of `target`; raises ExportRefused/UnsafeExport on problems.

    `out_dir`, where it will be written, lets data paths be given relative to the export.
    """
    if not target.is_run:
        raise MlopsNbError(
            f"cell run {target.id[:12]} recorded no metrics: only runs can be exported and "
            "verified; `mlops-nb runs` lists them")
    if target.parent is not None and target.iteration is None:
        raise MlopsNbError(
            f"run {target.id[:12]} is a candidate of a search, recorded from its results, not "
            "a cell of its own: export its parent run (the search), whose best candidate it "
            f"refits: {target.parent[:12]}")
    log = reader.session_log(target.session)
    anchor_seq = next((cr.seq for cr in log if cr.id == target.parent), target.seq)
    code_of = {cr.seq: reader.blobs.get_text(cr.python) for cr in log
               if cr.parent is None and cr.seq <= anchor_seq}
    own_modules = recorded_modules(log, anchor_seq)
    sl = compute_slice(log, target, code_of, star_names(own_modules, reader.blobs))
    if sl.missing_code:
        raise UntranslatableMagic(
            f"the code of cell run(s) at seq {sl.missing_code} is missing from the store's "
            "blobs; the slice cannot be written", [f"missing code at seq {sl.missing_code}"])
    if sl.unresolved:
        labels = {c.seq: _label(c.run) for c in sl.cells}
        problems = [f"{name} (used by {', '.join(labels[s] for s in seqs)})"
                    for name, seqs in sl.unresolved.items()]
        raise HiddenState(
            "the run used names that no recorded cell run defined (hidden state: pushed into "
            "the kernel, or defined while not recorded): " + "; ".join(problems)
            + ". Define them in a cell and re-run it, then export again", problems)

    warnings_: list[str] = []
    refused: list[str] = []
    pip_reqs: list[str] = []
    bodies: list[list[ast.stmt]] = []
    for cell in sl.cells:
        raw = reader.blobs.get_text(cell.run.code)
        tr = translate(cell.code, raw)
        refused.extend(f"{_label(cell.run)} {r}" for r in tr.refused)
        pip_reqs.extend(tr.requirements)
        bodies.append(tr.body)
        if cell.run.status != "ok" and cell.run.error:
            warnings_.append(f"{_label(cell.run)} raised {cell.run.error.get('type')} in the "
                             "notebook; the script replays it up to the error")
    in_slice = {c.seq for c in sl.cells}
    for cr in log:  # `!pip install` anywhere before the run still belongs in requirements
        if cr.seq < anchor_seq and cr.seq not in in_slice and cr.parent is None and (
                {"!", "pip"} & set(cr.magics)) and code_of.get(cr.seq):
            pip_reqs.extend(translate(code_of[cr.seq] or "").requirements)
    if refused:
        raise UntranslatableMagic(
            "the slice uses IPython syntax with no plain-Python translation, so the export "
            "cannot claim to reproduce the run: " + "; ".join(refused), refused)
    check_reserved(bodies)
    bodies, secret_env = secrets_from_env(bodies)  # redacted credentials: env variables
    # mlops_nb -> the script's own tracking; plt.show() -> figures/
    bodies = [[_ShimMlopsNb().visit(s) for s in b] for b in bodies]
    bodies = [_flatten(b) for b in bodies]
    mods, shows = _pyplot_names(bodies)
    bodies = [[_ShowToSave(mods, shows).visit(s) for s in b] for b in bodies]

    # external data files: --data-* options with the recorded hash checked on load
    session = reader.session_info(target.session)
    env = session.get("environment") if isinstance(session.get("environment"), dict) else {}
    cwd = env.get("cwd") if isinstance(env.get("cwd"), str) else None
    data_files = _data_files(sl, cwd, out_dir, reader.home.parent, warnings_)
    for i, cell in enumerate(sl.cells):
        mine = {*cell.external_reads, *(r.get("given") for r in cell.runtime_reads)}
        static = {p for p in mine if isinstance(p, str) and any(p in d.given for d in data_files)}
        if static:
            bodies[i] = [_DataPaths(static).visit(s) for s in bodies[i]]

    # a loop iteration's run: its loop runs once, over the iteration's own values
    params: dict[str, Any] = {}
    anchor_index = len(sl.cells) - 1
    loop_rng: list[ast.stmt] = []
    if target.parent is not None:
        names = set(target.params)
        for name in names:
            check_name(name, what="loop variable")
        for name, value in target.params.items():
            params[name] = value
        body, hits = _one_iteration(bodies[anchor_index], names)
        if not hits:
            raise UntranslatableMagic(
                f"run {target.id[:12]} is iteration {target.iteration} of a loop the export "
                "cannot find in its cell's code", ["loop not found"])
        bodies[anchor_index] = body
        if target.rng:
            loop_rng = [ast.Expr(ast.Call(ast.Name("_mnb_restore_rng", ast.Load()),
                                          [ast.Constant(g), ast.Constant(d)], []))
                        for g, d in sorted(target.rng.items())]

    # the parameters block: names bound once in the slice, to a literal, never mutated
    counts, mutated = _stores(sl.cells)
    for i, cell in enumerate(sl.cells):
        kept: list[ast.stmt] = []
        for stmt in bodies[i]:
            name, value, ok = _param_of(stmt, cell)
            if (ok and name is not None and not name.startswith("_") and counts.get(name) == 1
                    and name not in mutated and name not in params and _usable_name(name)):
                hidden = secret_assignment(name, value, secret_env)
                if hidden is not None:  # a redacted widget value: from the environment
                    kept.append(hidden)
                    continue
                params[name] = value
                continue
            kept.append(stmt)
        bodies[i] = kept
    bodies = _constructor_options(bodies, params, counts)
    if loop_rng:
        body = bodies[anchor_index]
        first_loop = next((j for j, s in enumerate(body) if isinstance(s, ast.For)), 0)
        bodies[anchor_index] = body[:first_loop] + loop_rng + body[first_loop:]

    # imports hoisted to the top when that cannot change what they bind
    hoisted, future, bodies = _hoist(bodies, sl)

    rng_states: dict[str, Any] = {}
    cells: list[CellCode] = []
    wanted = {d for rb in sl.rng_before.values() for d in rb.values()}
    if target.parent is not None:
        wanted.update((target.rng or {}).values())
    for digest in sorted(wanted):
        text = reader.blobs.get_text(digest)
        if text is None:
            warnings_.append(f"RNG state {digest[:12]} is missing from the store; not restored")
            continue
        rng_states[digest] = json.loads(text)
    for i, cell in enumerate(sl.cells):
        rng = {g: d for g, d in sl.rng_before.get(cell.seq, {}).items() if d in rng_states}
        cells.append(CellCode(cell.seq, cell.run.execution_count, cell.run.id, bodies[i], rng,
                              errored=cell.run.status != "ok", figures=bool(cell.run.figures)))

    models = _models(target, sl)
    metrics = [m for m in target.metrics if isinstance(m, str)]
    modules = imported_modules([*bodies, hoisted])
    project = needed_modules(set(modules) | _star_tops(sl), own_modules, reader.blobs,
                             warnings_)
    own = {m.name.split(".")[0] for m in project}
    readers = [m for m in ("pandas", "numpy", "joblib") if m in modules]
    plan = ScriptPlan(_docstring(target, sl, params), hoisted, params, data_files, cells,
                      metrics, models, RNG_FILE, future, readers=readers, secrets=secret_env,
                      lib_dir=LIB_DIR if project else None,
                      autolog_source=_autolog_source(modules))
    script = render(plan)
    extra = ["xxhash"] if data_files else []
    reqs = requirements([m for m in modules if m not in own], _packages(session), extra,
                        pip_reqs)
    run_json = {
        "format": EXPORT_FORMAT,
        "run_id": target.id,
        "experiment": target.experiment,
        "session": target.session,
        "exported_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "store": str(reader.home),
        "expected_metrics": dict(target.metrics),
        "parameters": params,
        "parameter_flags": script.flags,
        "secret_env": secret_env,
        "data_files": [vars(d) for d in data_files],
        "modules": [m.manifest() for m in project],
        "slice": [{"id": c.run.id, "seq": c.seq, "execution_count": c.run.execution_count,
                   "cell_id": c.run.cell_id, "status": c.run.status,
                   "why": c.reasons, "rng_restored": sorted(sl.rng_before.get(c.seq, {}))}
                  for c in sl.cells],
        "requirements": reqs,
        "environment": {k: env.get(k) for k in ("python", "implementation", "platform",
                                                 "machine", "cwd", "git") if k in env},
        "warnings": warnings_,
        "l0": True,
        "run": run_view(target, lineage_ids(log, target)),
    }
    for w in warnings_:
        if w.startswith("data file"):
            warnings.warn(w, DataChanged, stacklevel=3)
    run_json = redact.scrub_obj(run_json)  # defensive: a store written before redaction
    return Export(target, script, reqs, run_json, rng_states, warnings_,
                  {m.path: m.source for m in project})


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


def _constructor_options(bodies: list[list[ast.stmt]], params: dict[str, Any],
                         counts: dict[str, int]) -> list[list[ast.stmt]]:
    """`RandomForestRegressor(n_estimators=3)` -> `(n_estimators=model_n_estimators)` with
    `model_n_estimators = 3` in the parameters block: a constructor's literal keywords become
    options of the script, as the run recorded them (`model.n_estimators`)."""
    taken = set(counts) | set(params)

    def option(owner: str | None, callee: str, kw: str) -> str | None:
        base = owner or re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", callee).lower()
        name = re.sub(r"\W+", "_", f"{base}_{kw}").strip("_")
        if not name.isidentifier() or name.startswith("_"):
            return None
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}_{n}", n + 1
        return candidate

    def visit(node: ast.AST, owner: str | None) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
                             ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Call):
            callee = call_param_target(node)
            if callee is not None:
                for kw in node.keywords:
                    if kw.arg is None or kw.arg in PLOT_KEYWORDS:
                        continue
                    ok, value = _literal_value(kw.value)
                    if not ok or isinstance(kw.value, ast.Name):
                        continue
                    name = option(owner, callee, kw.arg)
                    if name is None:
                        continue
                    taken.add(name)
                    params[name] = value
                    kw.value = ast.Name(name, ast.Load())
                owner = None
        for child in ast.iter_child_nodes(node):
            visit(child, owner)

    for body in bodies:
        for stmt in body:
            owner = None
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Call)
                    and call_param_target(stmt.value) not in PARAM_FUNCTIONS):
                owner = stmt.targets[0].id
            visit(stmt, owner)
    return bodies


def _models(target: CellRun, sl: Slice) -> list[str]:
    """Names of the fitted models in the order `--save-model` prefers them, best last.

    The model that produced the run's metrics (autolog traced its predictions or its
    `score`) comes first in intent: a pipeline, not its inner step; this iteration's model,
    not the loop's last. Without that, the estimators the run's cell fitted.
    """
    models = list(sl.anchor.estimators)
    if not models:
        for cell in reversed(sl.cells):
            if cell.run.estimators:
                models = list(cell.run.estimators)
                break
    behind = [v for k, v in (target.metric_models or {}).items() if k in target.metrics]
    if behind:
        best = max(dict.fromkeys(behind), key=behind.count)  # ties: the first metric's model
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
    ok, value = _literal_value(stmt.value)
    return name, value, ok


def _hoist(bodies: list[list[ast.stmt]], sl: Slice
           ) -> tuple[list[ast.stmt], list[ast.stmt], list[list[ast.stmt]]]:
    """Top-level imports move to the top when every binding of their names is that import."""
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
                    and cell.run.status == "ok" and all(a.name != "*" for a in stmt.names)):
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


def _check_data_now(key: str, path: str, digest: str | None) -> list[str]:
    from ..capture.fingerprint import fingerprint_file

    fp = fingerprint_file(path)
    if fp is None:
        return [f"data file {key!r} is missing at {path}; pass --data-* to the script"]
    if digest is not None and fp["hash"] != digest:
        return [f"data file {key!r} changed since the run (recorded hash {digest[:12]}, now "
                f"{fp['hash'][:12]}): the metrics may not reproduce"]
    return []


def _docstring(target: CellRun, sl: Slice, params: dict[str, Any]) -> str:
    lines = [
        f"Reproduce run {target.id} of experiment {target.experiment!r}.",
        "",
        f"Notebook: {target.notebook or '(unknown)'}",
        f"Recorded: {iso(target.started_at)} (session {target.session})",
        f"Slice: {len(sl.cells)} cell run(s) of the session, in execution order.",
        "Metrics it should reproduce:",
    ]
    lines += [f"    {k} = {v!r}" for k, v in target.metrics.items()]
    lines += ["", "Generated by mlops-nb from the recorded run. Options: python train.py --help"]
    return "\n".join(lines)
