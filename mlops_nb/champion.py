"""The promoted model judged on the candidate's own evaluation (`--no-worse-than`).

The promoted run's recorded metrics were measured on the data of its day; a retrain's
candidate is measured on the new data. Comparing those would reward whichever saw the easier
data. So the gate runs the same exported script on the same data, with the same restored RNG
states (hence the same split), once more — with the promoted model put in place of the
model the script fits, right after every statement that binds or refits it — and compares
the metrics the script then computes. Both are judged on equal footing.

The substitution is an AST rewrite of the generated script (ours, built from the AST), in a
copy beside it; the model is loaded in that fresh process under the same rules as
`mnb.load_model`: skops types outside scikit-learn, numpy and scipy, and pickles, need
`trusted=True`. When the promoted model cannot be evaluated that way (the script saves no
model, it fails on the new data, untrusted format), the caller falls back to the recorded
metrics and says so.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from .errors import MlopsNbError
from .jsonvalues import read_metrics_file

MARKER = "# ==== end of mlops-nb support"
SCRIPT = "evaluate_promoted.py"
_HELPER = '''
def _mnb_champion(current):
    """The promoted model, in place of the one this script just bound or fitted: a fresh
    copy each time, so a later `clf.fit(...)` refits a copy, never the promoted model."""
    import copy as _copy

    loaded = _mnb_CHAMPION
    if not loaded:
        import json as _json

        from mlops_nb.models import deserialize

        with open(_mnb_CHAMPION_PATH + ".json", encoding="utf-8") as fh:
            meta = _json.load(fh)
        with open(_mnb_CHAMPION_PATH, "rb") as fh:
            payload = fh.read()
        loaded.append(deserialize(meta["format"], payload, meta["sha256"],
                                  trusted=meta["trusted"]))
    return _copy.deepcopy(loaded[0])
'''


def _binds(stmt: ast.stmt, name: str) -> bool:
    """Does this simple statement bind `name` or refit it in place (`clf.fit(...)`)?"""
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == name
                and node.func.attr.startswith(_REFITS)):
            return True
    return False


_REFITS = ("fit", "partial_fit", "set_params", "set_output")  # methods that change a model
_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)


def _rewrite(body: list[ast.stmt], name: str) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, _COMPOUND) or type(stmt).__name__ in ("TryStar", "Match"):
            for attr in ("body", "orelse", "finalbody"):
                if getattr(stmt, attr, None):
                    setattr(stmt, attr, _rewrite(getattr(stmt, attr), name))
            for handler in getattr(stmt, "handlers", []):
                handler.body = _rewrite(handler.body, name)
            for case in getattr(stmt, "cases", []):
                case.body = _rewrite(case.body, name)
            out.append(stmt)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(stmt)  # a definition binds nothing until it is called
        else:
            out.append(stmt)
            if _binds(stmt, name):
                out.append(ast.parse(f"{name} = _mnb_champion({name})").body[0])
    return out


def _is_support_call(stmt: ast.stmt, func: str) -> bool:
    """`_mnb.<func>(...)` as a statement: where the script's own cells begin (`start`)."""
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == func
            and isinstance(stmt.value.func.value, ast.Name) and stmt.value.func.value.id == "_mnb")


def substituted_script(source: str, model_path: Path, models: list[str] | None = None
                       ) -> tuple[str, str]:
    """(the script with the promoted model substituted, the variable it replaces).

    `models` are the variables `--save-model` saves, from the export's run.json; a script of
    the first export format names them in `_mnb_MODELS` and marks its cells with MARKER,
    the current one starts its cells with `_mnb.start(globals())`."""
    tree = ast.parse(source)
    names: list[str] = list(models or [])
    for node in tree.body:
        if (not names and isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "_mnb_MODELS"):
            names = [str(v) for v in ast.literal_eval(node.value)]
    if not names or not names[-1].isidentifier():
        raise MlopsNbError("the run's script fits no model to put the promoted one in place of")
    name = names[-1]  # the one `--save-model` saves
    starts = [i for i, n in enumerate(tree.body) if _is_support_call(n, "start")]
    if starts:
        support, cells = tree.body[:starts[0] + 1], tree.body[starts[0] + 1:]
    else:
        lines = source.splitlines()
        try:
            start = next(i for i, line in enumerate(lines, 1) if line.startswith(MARKER))
        except StopIteration:
            raise MlopsNbError("the run's script has no cell section (re-export it)") from None
        support = [n for n in tree.body if n.lineno < start]
        cells = [n for n in tree.body if n.lineno >= start]
    helper = ast.parse(_HELPER).body
    setup = ast.parse(f"_mnb_CHAMPION = []\n_mnb_CHAMPION_PATH = {str(model_path)!r}").body
    tree.body = support + setup + helper + _rewrite(cells, name)
    code = ast.unparse(ast.fix_missing_locations(tree))
    ast.parse(code)
    return code, name


def evaluate_promoted(home: Path, version: dict[str, Any], export_dir: Path, args: list[str],
                      workdir: Path, timeout: float, *, trusted: bool = False
                      ) -> dict[str, Any]:
    """The metrics the run's script computes with the promoted model `version` in place of
    the model it fits, on the data `args` give it. Raises MlopsNbError with the reason."""
    from .models import UntrustedModel, deserialize
    from .retraining import run_script
    from .store.blobs import BlobStore
    from .store.layout import BLOBS_DIR

    try:
        payload = BlobStore(Path(home) / BLOBS_DIR).get(version["blob"])
    except (OSError, ValueError, MlopsNbError) as exc:
        raise MlopsNbError(f"the promoted model's blob cannot be read: {exc}") from None
    try:  # refuse here, with our message, what the child would refuse
        deserialize(version["format"], payload, version.get("sha256"), trusted=trusted)
    except UntrustedModel as exc:
        raise MlopsNbError(f"the promoted model was not loaded: {exc}") from None
    workdir.mkdir(parents=True, exist_ok=True)
    model_path = workdir / "promoted.model"
    model_path.write_bytes(payload)
    (workdir / "promoted.model.json").write_text(json.dumps(
        {"format": version["format"], "sha256": version.get("sha256"), "trusted": trusted}),
        encoding="utf-8")
    source = (export_dir / "train.py").read_text(encoding="utf-8")
    try:
        run_json = json.loads((export_dir / "run.json").read_text(encoding="utf-8"))
        models = [str(m) for m in (run_json.get("script") or {}).get("models") or []]
    except (OSError, ValueError, AttributeError):
        models = []
    code, _name = substituted_script(source, model_path.resolve(), models)
    script = export_dir / SCRIPT
    script.write_text(code, encoding="utf-8")
    out = workdir / "out"
    code_, stderr, _elapsed = run_script(script, workdir / "run",
                                         [*args, "--output-dir", str(out)], timeout)
    metrics_path = out / "metrics.json"
    if code_ != 0 or not metrics_path.is_file():
        tail = " ".join(stderr.strip().splitlines()[-1:])[:300]
        raise MlopsNbError("the run's script failed with the promoted model in place "
                           f"(exit {code_}): {tail}")
    try:
        metrics = read_metrics_file(metrics_path)
    except (OSError, ValueError) as exc:
        raise MlopsNbError(f"unreadable metrics with the promoted model in place: {exc}"
                           ) from None
    if not isinstance(metrics, dict):
        raise MlopsNbError("the script wrote no metrics with the promoted model in place")
    return metrics
