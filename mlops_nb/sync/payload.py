"""What one mlops-nb run becomes on an MLflow server: pure, no client, no network.

MLflow validates every key and value it is sent (`mlflow/utils/validation.py`): keys made of
word characters, `/ . - : space`, that are not path tricks (`..`, a leading `/`, `a//b`), and
the lengths and batch sizes of `limits.py` (declared there once). A notebook names things
freely, so every key is made to fit (the original kept in a tag) and every value that is too
long is cut (the cut named in a tag): a run is always pushed whole, never refused.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import xxhash

from ..records import STATUS_OK, CellRun
from ..store.index import data_digest, input_data, run_model
from .limits import Limits

TAG = "mlops_nb."
RUN_ID_TAG = "mlops_nb.run_id"
COMPLETE_TAG = "mlops_nb.sync"  # set last: a run without it was interrupted mid-push
COMPLETE = "complete"
# What can change after a run was recorded (its verdict, tags, step numbers, model versions),
# digested: a sync compares it with the server's and updates a run whose digest moved.
DIGEST_TAG = "mlops_nb.digest"
USER_TAGS_TAG = "mlops_nb.user_tags"  # {MLflow key: the user's tag name}: read back as tags.*
INFINITE_TAG = "mlops_nb.infinite"  # metric keys whose values include +-inf (MLflow: +-DBL_MAX)
RENAMED_TAG = "mlops_nb.renamed"
TRUNCATED_TAG = "mlops_nb.truncated"
SKIPPED_TAG = "mlops_nb.skipped"
EXPORT_DIR = "export"
MODELS_DIR = "models"  # models/<name>/MLmodel: a saved version in the sklearn flavour


# MLflow's _VALID_PARAM_AND_METRIC_NAMES on POSIX: \w (Unicode), slash, dot, dash, space, colon.
_KEY_CHAR = re.compile(r"[/\w.\- :]")


@dataclass
class Payload:
    """Everything `log_batch`, `create_run` and `log_artifacts` need for one run."""

    run_id: str
    experiment: str
    run_name: str
    start_ms: int
    end_ms: int
    status: str  # MLflow run status: FINISHED or FAILED
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, ts, step
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes
    renamed: dict[str, str] = field(default_factory=dict)  # MLflow key -> original name
    truncated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    infinite: list[str] = field(default_factory=list)  # metric keys with an infinite value
    user_tags: dict[str, str] = field(default_factory=dict)  # MLflow key -> the user's name


def _suffix(text: str) -> str:
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogatepass"))[:8]


class KeyMaker:
    """Turns free names into valid, distinct MLflow keys within one namespace (params, a
    metric, tags): a name that is already valid is kept as is; two names never share a key."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.used: dict[str, str] = {}  # key -> original

    def __call__(self, name: str, prefix: str = "") -> str:
        key = prefix + _clean_key(name)
        if len(key) > self.limits.key_length or self.used.get(key, name) != name:
            tail = "-" + _suffix(name)  # '~' is not a key character
            key = key[: self.limits.key_length - len(tail)].rstrip("/") + tail
        self.used[key] = name
        return key


def _clean_key(name: str) -> str:
    text = name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = "".join(c if _KEY_CHAR.fullmatch(c) else "_" for c in text)
    # posixpath.normpath(key) must equal key: no empty, '.' or '..' segment, no leading '/'.
    parts = [p if p not in ("", ".", "..") else "_" for p in text.split("/")]
    return "/".join(parts)


def param_text(value: Any) -> str:
    """A parameter as text: strings as they are, everything else as its Python literal, so
    `read_param` gives the same value back (3 stays an int, [1, 2] a list)."""
    return value if isinstance(value, str) else repr(value)


def read_param(text: str) -> Any:
    """The inverse of `param_text` for literals; any other text is a string parameter."""
    import ast

    if not text or text[0] not in "-+0123456789[({'\"TFNin.":
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        if text in ("nan", "inf", "-inf"):
            return float(text)
        return text


def _metric_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int too large for a double
            return math.inf if value > 0 else -math.inf
    return None


@dataclass
class RunContext:
    """What the builder needs beyond the record: read from the store by the caller."""

    environment: dict[str, Any] = field(default_factory=dict)
    lineage: list[CellRun] = field(default_factory=list)
    lineage_code: str | None = None
    figures: list[bytes] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    export_files: dict[str, bytes] = field(default_factory=dict)
    # mnb.set_tags / log_metric(step=): {"tags": {...}, "steps": {metric: [step, ...]}}
    annotation: dict[str, Any] = field(default_factory=dict)
    # {model name: {"version": record, "files": MLflow Model files, "note": why not made}}
    models: dict[str, dict[str, Any]] = field(default_factory=dict)


def state_digest(verdict: dict[str, Any] | None, annotation: dict[str, Any] | None,
                 versions: dict[str, dict[str, Any]] | None) -> str:
    """A digest of what may change after a run is recorded: its verdict, its annotation
    (tags, metric steps) and the model versions saved with it. Pure, cheap: a sync computes
    it for every local run without building payloads."""
    doc = {"verdict": verdict or None, "tags": (annotation or {}).get("tags") or None,
           "steps": (annotation or {}).get("steps") or None,
           "models": {n: (v or {}).get("version") for n, v in (versions or {}).items()} or None}
    text = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=True)
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


EMPTY_DIGEST = state_digest(None, None, None)  # a run pushed before digests existed counts so


def build_payload(run: CellRun, ctx: RunContext, limits: Limits | None = None) -> Payload:
    """The MLflow form of `run`: valid keys, values within limits, every cut recorded."""
    limits = limits or Limits()
    start_ms = int(run.started_at * 1000)
    p = Payload(
        run_id=run.id,
        experiment=experiment_name(run.experiment, limits),
        run_name=_run_name(run, limits),
        start_ms=start_ms,
        end_ms=start_ms + max(0, int(run.duration_s * 1000)),
        status="FINISHED" if run.status == STATUS_OK else "FAILED",
    )
    _add_params(p, run, limits)
    _add_metrics(p, run, limits, ctx.annotation.get("steps") or {})
    _add_tags(p, run, ctx, limits)
    _add_artifacts(p, ctx)
    _add_notes(p, limits)
    p.tags[DIGEST_TAG] = state_digest(ctx.verdict, ctx.annotation,
                                      {n: m.get("version") or {} for n, m in ctx.models.items()})
    return p


def experiment_name(name: str, limits: Limits) -> str:
    """The MLflow experiment of a local one: the same name, cut (kept distinct) past 500."""
    if name and len(name) <= limits.experiment_name_length:
        return name
    tail = "~" + _suffix(name)
    return (name or "experiment")[: limits.experiment_name_length - len(tail)] + tail


def _run_name(run: CellRun, limits: Limits) -> str:
    if run.name:
        name = run.name
    else:
        where = run.notebook.rsplit("/", 1)[-1] if run.notebook else run.experiment
        name = f"{where} In[{run.execution_count}]" if run.execution_count else where
    return name[: limits.tag_value_length]


def _fit(p: Payload, key: str, text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    p.truncated.append(key)
    return text[:limit]


def _add_params(p: Payload, run: CellRun, limits: Limits) -> None:
    params = run.effective_params if run.effective_params is not None else run.params
    keys = KeyMaker(limits)
    for name, value in params.items():
        key = keys(str(name))
        if key != name:
            p.renamed[key] = str(name)
        p.params[key] = _fit(p, key, param_text(value), limits.param_value_length)


def _add_metrics(p: Payload, run: CellRun, limits: Limits,
                 given_steps: dict[str, list[int]]) -> None:
    keys = KeyMaker(limits)
    for name, value in run.metrics.items():
        key = keys(str(name))
        if key != name:
            p.renamed[key] = str(name)
        steps = run.metric_steps.get(name) or [value]
        values = [_metric_value(v) for v in steps]
        if any(v is None for v in values):
            p.skipped.append(f"metric {name!r}: {type(value).__name__} is not a number")
            continue
        numbers = given_steps.get(name) or []
        if len(numbers) != len(values):  # steps as logged with step=, else 0, 1, 2...
            numbers = list(range(len(values)))
        if any(math.isinf(v) for v in values):  # MLflow stores them as +-DBL_MAX
            p.infinite.append(key)
        p.metrics.extend((key, v, p.start_ms, s)
                         for s, v in zip(numbers, values, strict=True))


def _add_tags(p: Payload, run: CellRun, ctx: RunContext, limits: Limits) -> None:
    t: dict[str, Any] = {
        RUN_ID_TAG: run.id,
        TAG + "experiment": run.experiment,
        TAG + "session": run.session,
        TAG + "seq": run.seq,
        TAG + "status": run.status,
        TAG + "mode": run.mode,
        TAG + "duration_s": run.duration_s,
        TAG + "name": run.name,
        TAG + "notebook": run.notebook,
        TAG + "cell_id": run.cell_id,
        TAG + "execution_count": run.execution_count,
        TAG + "data": data_digest(input_data(run)),
        TAG + "lineage": len(run.lineage if run.lineage is not None else run.deps),
        TAG + "model": run_model(run),  # the runs table's model column, as the index has it
    }
    if run.error:
        t[TAG + "error"] = f"{run.error.get('type')}: {run.error.get('message')}"
    if run.notebook:
        t["mlflow.source.name"] = run.notebook
        t["mlflow.source.type"] = "NOTEBOOK"
    env = ctx.environment or {}
    git = env.get("git") if isinstance(env.get("git"), dict) else None
    if git:
        t["mlflow.source.git.commit"] = git.get("commit")
        t["mlflow.source.git.branch"] = git.get("branch")
        t[TAG + "git.dirty"] = git.get("dirty")
    t[TAG + "python"] = env.get("python")
    keys = KeyMaker(limits)
    data = run.effective_data if run.effective_data is not None else run.data
    for name, fp in data.items():
        key = keys(str(name), TAG + "data.")
        if key != TAG + "data." + name:
            p.renamed[key] = str(name)
        t[key] = json.dumps({k: fp.get(k) for k in ("hash", "type", "shape") if k in fp},
                            default=str)
    for name, cls in _model_classes(run, ctx.lineage).items():
        key = keys(str(name), TAG + "model.")
        if key != TAG + "model." + name:
            p.renamed[key] = str(name)
        t[key] = cls
    if ctx.verdict:
        v = ctx.verdict
        t[TAG + "verdict"] = f"{v.get('level', '')} {'ok' if v.get('ok') else 'failed'}".strip()
        t[TAG + "verdict.level"] = v.get("level")
        t[TAG + "verdict.ok"] = v.get("ok")
    if ctx.export_files:
        t[TAG + "exported"] = EXPORT_DIR
    for key, value in (ctx.annotation.get("tags") or {}).items():  # the user's, as named
        mkey = keys(str(key))
        if mkey in t:  # a user's tag named like one of ours: kept apart, not dropped
            mkey = keys(str(key), "user.")
        t[mkey] = value
        p.user_tags[mkey] = str(key)
    for name, m in ctx.models.items():
        v = m.get("version") or {}
        key = keys(str(name), TAG + "model_version.")
        t[key] = json.dumps({"version": v.get("version"), "format": v.get("format"),
                             "sha256": v.get("sha256"), "class": v.get("class"),
                             "artifact_path": f"{MODELS_DIR}/{name}" if m.get("files")
                             else None})
        if m.get("note"):
            p.skipped.append(str(m["note"]))
    for key, value in t.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        p.tags[key] = _fit(p, key, text, limits.tag_value_length)


def _model_classes(run: CellRun, lineage: list[CellRun]) -> dict[str, str]:
    """The class of each fitted model the run's lineage (or the run itself) left, last wins."""
    out: dict[str, str] = {}
    for cr in [*lineage, run]:
        for name, est in (cr.estimators or {}).items():
            if isinstance(est, dict) and isinstance(est.get("class"), str):
                out[name] = est["class"]
    return out


def _add_artifacts(p: Payload, ctx: RunContext) -> None:
    if ctx.lineage_code:
        p.artifacts["lineage.py"] = ctx.lineage_code.encode("utf-8", "surrogatepass")
    for i, png in enumerate(ctx.figures, 1):
        p.artifacts[f"figures/figure-{i}.png"] = png
    for name, payload in ctx.export_files.items():
        p.artifacts[f"{EXPORT_DIR}/{name}"] = payload
    for name, m in ctx.models.items():  # names are [A-Za-z0-9_][A-Za-z0-9_.-]*: safe paths
        for rel, data in (m.get("files") or {}).items():
            p.artifacts[f"{MODELS_DIR}/{name}/{rel}"] = data


def _add_notes(p: Payload, limits: Limits) -> None:
    """Renames, cuts and skips as tags, so a reader of the MLflow run knows what changed."""
    for key, items in ((RENAMED_TAG, p.renamed), (TRUNCATED_TAG, p.truncated),
                       (SKIPPED_TAG, p.skipped), (USER_TAGS_TAG, p.user_tags),
                       (INFINITE_TAG, p.infinite)):
        if not items:
            continue
        text = json.dumps(items, ensure_ascii=False)
        while len(text) > limits.tag_value_length and len(items) > 1:
            items = (dict(list(items.items())[: len(items) // 2]) if isinstance(items, dict)
                     else items[: len(items) // 2])
            text = json.dumps(items, ensure_ascii=False)
        p.tags[key] = text[: limits.tag_value_length]


def batches(p: Payload, limits: Limits, extra_tags: dict[str, str] | None = None
            ) -> Iterator[tuple[dict[str, str], list[tuple[str, float, int, int]], dict[str, str]]]:
    """(params, metrics, tags) chunks that each fit one `log_batch` request."""
    params = deque(p.params.items())
    tags = deque({**p.tags, **(extra_tags or {})}.items())
    metrics = deque(p.metrics)
    while params or tags or metrics:
        bp: dict[str, str] = {}
        bt: dict[str, str] = {}
        bm: list[tuple[str, float, int, int]] = []
        size = 0
        budget = limits.batch_bytes // 2  # JSON escaping and field names: stay well under
        while params and len(bp) < limits.params_tags_per_batch:
            k, v = params[0]
            cost = len(k.encode()) + len(v.encode("utf-8", "replace")) + 32
            if bp and size + cost > budget:
                break
            bp[k] = v
            size += cost
            params.popleft()
        while tags and len(bt) < limits.params_tags_per_batch:
            k, v = tags[0]
            cost = len(k.encode()) + len(v.encode("utf-8", "replace")) + 32
            if (bp or bt) and size + cost > budget:
                break
            bt[k] = v
            size += cost
            tags.popleft()
        room = min(limits.metrics_per_batch, limits.entities_per_batch - len(bp) - len(bt))
        while metrics and len(bm) < room:
            cost = len(metrics[0][0].encode()) + 80
            if (bp or bt or bm) and size + cost > budget:
                break
            bm.append(metrics.popleft())
            size += cost
        yield bp, bm, bt
