"""Push runs to an MLflow tracking server: idempotent, resumable, bounded retries.

The server is the truth about what was pushed: every MLflow run made here carries the tag
`mlops_nb.run_id`, and the tag `mlops_nb.sync=complete` is set last, once its params, metrics,
tags, artifacts and status are in. A sync asks the server which runs are complete, skips
them, deletes the half-pushed ones an interrupted sync left and pushes the rest, so syncing
twice creates nothing and a sync killed at any point resumes cleanly. What may change after a
run is recorded (its verdict, tags, model versions) is digested in the tag `mlops_nb.digest`:
a complete run whose digest differs from the local one is updated in place (tags replaced,
artifacts uploaded again, the digest set last), never pushed twice. The local store is only
read; `.mlops_nb/sync/` keeps a small cache of what went where.

Credentials come from MLflow's own environment (`MLFLOW_TRACKING_USERNAME`/`_PASSWORD`,
`MLFLOW_TRACKING_TOKEN`...) through its client; they are never stored or printed, and a
user:password in the tracking URI is redacted from every message and file.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MlopsNbError
from ..lineage import resolve_value_refs
from ..records import CellRun
from .limits import Limits, mlflow_limits
from .payload import (
    COMPLETE,
    COMPLETE_TAG,
    DIGEST_TAG,
    EMPTY_DIGEST,
    RUN_ID_TAG,
    Payload,
    RunContext,
    batches,
    build_payload,
    experiment_name,
    state_digest,
)
from .state import SyncState, redact

INSTALL_HINT = "pip install 'mlops-nb[mlflow]'  (or: pip install mlflow-skinny)"
EXPORT_MAX_BYTES = 100 * 2**20  # an export is code and small JSON; a folder past this is not


def export_folder_files(folder: Path) -> dict[str, bytes]:
    """Every file of an export folder by its relative path: train.py, its support modules,
    `lib/`, requirements, run.json, RNG states; whatever the export format writes, so a pulled
    export runs as the pushed one did. Caches and hidden files are left out."""
    out: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or path.is_symlink() or any(
                part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        data = path.read_bytes()
        total += len(data)
        if total > EXPORT_MAX_BYTES:
            raise OSError(f"{folder} holds more than {EXPORT_MAX_BYTES >> 20} MB: not an export")
        out[rel.as_posix()] = data
    return out


class MlflowMissing(MlopsNbError):
    """The MLflow client is not installed (it is the optional `mlflow` extra)."""


class SyncFailed(MlopsNbError):
    """The server could not be reached or refused us; `summary` says what was pushed first."""

    def __init__(self, message: str, summary: SyncSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


class AuthRefused(SyncFailed):
    """The server answered 401/403: the credentials in MLflow's env vars are missing or wrong."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded: a sync against a dead server gives up in seconds, not minutes."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    timeout_s: float = 30.0

    def delays(self) -> Iterator[float]:
        for i in range(self.attempts - 1):
            yield min(self.max_backoff_s, self.backoff_s * 2**i)


@dataclass
class SyncSummary:
    tracking_uri: str
    pushed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run id -> reason
    updated: list[str] = field(default_factory=list)  # on the server, its verdict/tags changed
    would_push: list[str] = field(default_factory=list)  # dry run
    dry_run: bool = False
    mlflow_ids: dict[str, str] = field(default_factory=dict)  # run id -> MLflow run id

    @property
    def ok(self) -> bool:
        return not self.failed

    def text(self) -> str:
        where = redact(self.tracking_uri)
        if self.dry_run:
            head = (f"dry run against {where}: would push {len(self.would_push)}, "
                    f"{len(self.skipped)} already there")
        else:
            updated = f"updated {len(self.updated)}, " if self.updated else ""
            head = (f"{where}: pushed {len(self.pushed)}, {updated}skipped "
                    f"{len(self.skipped)} (already there), failed {len(self.failed)}")
        lines = [head]
        for rid, reason in list(self.failed.items())[:20]:
            lines.append(f"  failed {rid[:12]}: {reason}")
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more")
        return "\n".join(lines)

    __str__ = text

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def merge(self, other: SyncSummary) -> None:
        self.pushed += other.pushed
        self.updated += other.updated
        self.skipped = other.skipped
        self.failed = other.failed
        self.mlflow_ids.update(other.mlflow_ids)


def _import_client() -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MlflowMissing(f"syncing with MLflow needs its client: {INSTALL_HINT}") from exc
    return MlflowClient


# -- errors and retries ---------------------------------------------------------------------------
TRANSIENT, AUTH, PERMANENT = "transient", "auth", "permanent"


def classify(exc: BaseException) -> str:
    """Whether trying again can help: network faults and 5xx yes, 401/403 never, 4xx no."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        name = type(cur).__name__
        module = type(cur).__module__ or ""
        network = module.startswith(("requests", "urllib3")) or isinstance(cur, OSError)
        if network and name not in ("InvalidURL", "MissingSchema", "InvalidSchema"):
            return TRANSIENT
        code = getattr(cur, "error_code", None)
        if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return AUTH
        if code in ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "RESOURCE_EXHAUSTED",
                    "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"):
            return TRANSIENT
        text = str(cur)
        if "failed with exception" in text or "Max retries exceeded" in text:
            return TRANSIENT
        cur = cur.__cause__ or cur.__context__
    return PERMANENT


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return redact(f"{type(exc).__name__}: {text}")


class _Server:
    """The client with our retry policy around every call."""

    def __init__(self, client: Any, uri: str, policy: RetryPolicy,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.uri = redact(uri)
        self.policy = policy
        self.sleep = sleep

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        delays = self.policy.delays()
        while True:
            try:
                return fn(*args, **kwargs)
            except MlopsNbError:
                raise
            except Exception as exc:
                kind = classify(exc)
                if kind == AUTH:
                    raise AuthRefused(
                        f"the MLflow server at {self.uri} refused the credentials ({what}): "
                        "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
                        f"MLFLOW_TRACKING_TOKEN [{_reason(exc)}]") from None
                if kind == PERMANENT:
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise SyncFailed(
                        f"the MLflow server at {self.uri} is unreachable or failing ({what}, "
                        f"{self.policy.attempts} attempts): {_reason(exc)}; nothing local was "
                        "changed, run the sync again once the server is back") from None
                self.sleep(delay)


@contextlib.contextmanager
def _mlflow_http_env(policy: RetryPolicy) -> Iterator[None]:
    """Our bounded retries replace MLflow's long default ones (7 attempts, minutes of
    backoff), unless the user set MLflow's own variables, which then win. Not thread-safe
    against other code changing these variables meanwhile; restored on the way out."""
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
              "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(policy.timeout_s)),
              # one "View run at" line per run (and a get_run call to make it) is noise here
              "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
    added = [k for k in wanted if k not in os.environ]
    for k in added:
        os.environ[k] = wanted[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


# -- reading the local store ----------------------------------------------------------------------
@dataclass
class _Local:
    """The store's runs and what a payload needs from it, read once per sync."""

    reader: Any
    runs: list[tuple[str, str, str, float, int]]  # id, experiment, session, started_at, seq
    verdicts: dict[str, dict[str, Any]]
    logs: dict[str, list[CellRun]] = field(default_factory=dict)
    envs: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, dict[str, Any]]] | None = None  # run id -> name -> version
    annotations: dict[str, dict[str, Any]] | None = None  # run id -> tags and steps

    @classmethod
    def read(cls, home: str | os.PathLike[str] | None, experiment: str | None) -> _Local:
        from ..config import store_reader as _reader
        from ..store.verdicts import load_verdicts

        reader = _reader(home)
        cols = reader.run_columns(experiment).cols
        if experiment is not None and not cols["id"]:  # a typo must not read "pushed 0"
            known = sorted({str(e) for e in reader.run_columns().cols["experiment"]})
            raise MlopsNbError(f"no runs in experiment {experiment!r}; the store has "
                               + (", ".join(repr(e) for e in known) or "no runs yet"))
        runs = sorted(zip(cols["id"], cols["experiment"], cols["session"],
                          [t or 0.0 for t in cols["started_at"]],
                          [s or 0 for s in cols["seq"]], strict=True),
                      key=lambda r: (r[3], r[4]))
        return cls(reader, runs, load_verdicts(reader.home))

    def log(self, session: str) -> list[CellRun]:
        if session not in self.logs:
            self.logs[session] = self.reader.session_log(session)
        return self.logs[session]

    def context(self, run: CellRun) -> RunContext:
        from ..comparison.model import lineage_code
        from ..lineage import lineage_ids as derived_lineage
        from ..store.annotations import load_annotation

        log = self.log(run.session)
        if run.session not in self.envs:
            env = self.reader.session_info(run.session).get("environment")
            self.envs[run.session] = env if isinstance(env, dict) else {}
        by_id = {cr.id: cr for cr in log}
        lineage_ids = derived_lineage(log, run)  # the closure of its stored direct deps
        figures = []
        for digest in run.figures:
            with contextlib.suppress(OSError, ValueError):
                figures.append(self.reader.blobs.get(digest))
        verdict = self.verdicts.get(run.id)
        return RunContext(
            environment=self.envs[run.session],
            lineage=[by_id[i] for i in lineage_ids if i in by_id],
            lineage_code=lineage_code(self.reader, run, log),
            figures=figures,
            verdict=verdict,
            export_files=_export_files(verdict, run.id),
            annotation=load_annotation(self.reader.home, run.id),
            models=self.models(run.id),
        )

    def digest(self, run_id: str) -> str:
        """`state_digest` of the run as the store has it now (no payload built)."""
        from ..store.annotations import load_annotations
        from .flavour import versions_by_run

        if self.versions is None:
            self.versions = versions_by_run(self.reader.home)
        if self.annotations is None:
            self.annotations = load_annotations(self.reader.home)
        return state_digest(self.verdicts.get(run_id), self.annotations.get(run_id),
                            self.versions.get(run_id))

    def models(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The model versions saved with the run, each as an MLflow sklearn-flavour model."""
        from .flavour import flavour_files, versions_by_run

        if self.versions is None:
            self.versions = versions_by_run(self.reader.home)
        out: dict[str, dict[str, Any]] = {}
        for name, version in (self.versions.get(run_id) or {}).items():
            files, note = flavour_files(self.reader.home, version)
            out[name] = {"version": version, "files": files, "note": note}
        return out

    def cell_run(self, run_id: str, session: str) -> CellRun:
        for cr in self.log(session):
            if cr.id == run_id:
                # Values stored once as blobs (a 100 KB prompt) are pushed as themselves.
                if cr.effective_params is not None:
                    cr.effective_params = resolve_value_refs(cr.effective_params,
                                                             self.reader.blobs)
                cr.params = resolve_value_refs(cr.params, self.reader.blobs)
                return cr
        raise MlopsNbError(f"run {run_id[:12]} vanished from session {session}")


def _export_files(verdict: dict[str, Any] | None, run_id: str) -> dict[str, bytes]:
    """The files of the run's export folder, when a verified export of this run still exists
    where its verdict says (a temporary export has no folder left)."""
    import json

    folder = (verdict or {}).get("export_dir")
    if not isinstance(folder, str):
        return {}
    path = Path(folder)
    try:
        run_json = json.loads((path / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(run_json, dict) or run_json.get("run_id") != run_id:
        return {}  # the folder was re-used for another run since
    try:
        return export_folder_files(path)
    except OSError:
        return {}


# -- the server side ------------------------------------------------------------------------------
@dataclass
class _Remote:
    experiment_id: str
    complete: dict[str, str]  # mlops-nb id -> MLflow run id
    partial: dict[str, list[str]]  # mlops-nb id -> MLflow run ids of interrupted pushes
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # of the complete runs


def _experiment(server: _Server, name: str, create: bool) -> str | None:
    exp = server.call("get experiment", server.client.get_experiment_by_name, name)
    if exp is not None:
        if getattr(exp, "lifecycle_stage", "active") == "deleted":
            raise MlopsNbError(
                f"experiment {name!r} is deleted on the server; restore it (`mlflow experiments "
                "restore`) or delete it for good before syncing into it")
        return str(exp.experiment_id)
    if not create:
        return None
    return str(server.call("create experiment", server.client.create_experiment, name))


def _remote_runs(server: _Server, experiment_id: str | None) -> _Remote:
    remote = _Remote(experiment_id or "", {}, {})
    if experiment_id is None:
        return remote
    token = None
    while True:
        page = server.call(
            "search runs", server.client.search_runs, [experiment_id],
            filter_string=f"tags.`{RUN_ID_TAG}` LIKE '%'", max_results=1000, page_token=token)
        for r in page:
            rid = r.data.tags.get(RUN_ID_TAG)
            if not rid:
                continue
            if r.data.tags.get(COMPLETE_TAG) == COMPLETE:
                if rid not in remote.complete:
                    remote.complete[rid] = r.info.run_id
                    remote.tags[rid] = dict(r.data.tags)
            else:
                remote.partial.setdefault(rid, []).append(r.info.run_id)
        token = getattr(page, "token", None)
        if not token:
            return remote


def _push(server: _Server, experiment_id: str, payload: Payload, limits: Limits,
          stale: list[str]) -> str:
    from mlflow.entities import Metric, Param, RunTag

    client = server.client
    for old in stale:  # an interrupted push of this run: replaced, not duplicated
        server.call("delete interrupted run", client.delete_run, old)
    run = server.call("create run", client.create_run, experiment_id,
                      start_time=payload.start_ms, tags={RUN_ID_TAG: payload.run_id},
                      run_name=payload.run_name)
    mlflow_id = run.info.run_id
    for params, metrics, tags in batches(payload, limits):
        server.call("log batch", client.log_batch, mlflow_id,
                    metrics=[Metric(k, v, ts, step) for k, v, ts, step in metrics],
                    params=[Param(k, v) for k, v in params.items()],
                    tags=[RunTag(k, v) for k, v in tags.items()])
    _upload_artifacts(server, mlflow_id, payload.artifacts)
    server.call("finish run", client.set_terminated, mlflow_id, payload.status,
                end_time=payload.end_ms)
    server.call("mark complete", client.set_tag, mlflow_id, COMPLETE_TAG, COMPLETE)
    return mlflow_id


def _upload_artifacts(server: _Server, mlflow_id: str, artifacts: dict[str, bytes]) -> None:
    """The run's files (its code, figures, lineage) under their paths; the same path again
    overwrites."""
    if not artifacts:
        return
    with tempfile.TemporaryDirectory(prefix="mlops-nb-sync-") as tmp:
        for rel, data in artifacts.items():
            target = Path(tmp, *rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        server.call("upload artifacts", server.client.log_artifacts, mlflow_id, tmp)


def _update(server: _Server, mlflow_id: str, payload: Payload, limits: Limits,
            remote_tags: dict[str, str]) -> str:
    """Bring a complete MLflow run up to date in place: its tags (a verdict, the user's tags)
    replaced, tags no longer there removed, artifacts uploaded again (same paths overwrite),
    and the digest set last, so an interrupted update is redone by the next sync. Params and
    metrics come from the immutable record and were pushed whole: untouched (a metric logged
    again would be a second point of its history)."""
    from mlflow.entities import RunTag

    client = server.client
    tags = {k: v for k, v in payload.tags.items() if k != DIGEST_TAG}
    for old in remote_tags:
        if old not in tags and not old.startswith("mlflow.") and old not in (
                COMPLETE_TAG, DIGEST_TAG, RUN_ID_TAG):
            server.call("delete tag", client.delete_tag, mlflow_id, old)
    empty = Payload(payload.run_id, payload.experiment, payload.run_name, payload.start_ms,
                    payload.end_ms, payload.status, tags=tags)
    for _params, _metrics, batch in batches(empty, limits):
        server.call("log batch", client.log_batch, mlflow_id,
                    tags=[RunTag(k, v) for k, v in batch.items()])
    _upload_artifacts(server, mlflow_id, payload.artifacts)
    server.call("mark updated", client.set_tag, mlflow_id, DIGEST_TAG, payload.tags[DIGEST_TAG])
    return mlflow_id


# -- the sync -------------------------------------------------------------------------------------
def sync_mlflow(tracking_uri: str, experiment: str | None = None, dry_run: bool = False, *,
                home: str | os.PathLike[str] | None = None, progress: bool | None = None,
                policy: RetryPolicy | None = None,
                on_pushed: Callable[[str, str], None] | None = None) -> SyncSummary:
    """Push the runs not on the MLflow server yet, each into the experiment of its name.

    Args:
        tracking_uri: the server, e.g. ``http://mlflow.internal:5000`` (credentials from
            MLflow's env vars, never in the store).
        experiment: only this local experiment (default: every one).
        dry_run: only say what would be pushed; nothing is written anywhere.
        home: the store folder (default: the notebook's store, else found like `.git`).
        progress: a tqdm bar on stderr (default: when stderr is a terminal or a notebook).
        policy: retries and timeouts (default: bounded backoff, see RetryPolicy).
        on_pushed: called with (mlops-nb run id, MLflow run id) after each complete push.

    Returns:
        The SyncSummary (`pushed`, `skipped`, `failed` with reasons, `ok`).

    Raises:
        MlflowMissing: the client is not installed (`pip install 'mlops-nb[mlflow]'`).
        SyncFailed / AuthRefused: the server is unreachable, failing or refused the
            credentials after bounded retries; `.summary` holds what was pushed before.

    Example::

        >>> mnb.sync_mlflow("http://127.0.0.1:5000", experiment="churn")  # doctest: +SKIP
        http://127.0.0.1:5000: pushed 12, skipped 30 (already there), failed 0
    """
    client_cls = _import_client()
    policy = policy or RetryPolicy()
    limits = mlflow_limits()
    local = _Local.read(home, experiment)
    state = SyncState.load(local.reader.home, tracking_uri)
    summary = SyncSummary(tracking_uri=redact(tracking_uri), dry_run=dry_run)
    with _mlflow_http_env(policy), _quiet_mlflow():
        server = _Server(client_cls(tracking_uri=tracking_uri), tracking_uri, policy)
        try:
            todo = _plan(server, local, summary, state, create=not dry_run, limits=limits)
            if dry_run:
                summary.would_push = [rid for rid, *_ in todo]  # updates included
                return summary
            _push_all(server, local, todo, limits, summary, state, progress, on_pushed)
        except SyncFailed as exc:
            exc.summary = summary
            raise
        finally:
            if not dry_run:
                with contextlib.suppress(OSError):
                    state.save()
    return summary


Todo = tuple[str, str, str, list[str], "tuple[str, dict[str, str]] | None"]


def _plan(server: _Server, local: _Local, summary: SyncSummary, state: SyncState,
          create: bool, limits: Limits) -> list[Todo]:
    """(run id, session, MLflow experiment id, stale MLflow ids, None) of each run to push,
    and (..., [], (its MLflow id, its tags there)) of each complete run to update."""
    by_exp: dict[str, list[tuple[str, str, float, int]]] = {}
    for rid, exp, session, started, seq in local.runs:
        name = experiment_name(str(exp), limits)
        by_exp.setdefault(name, []).append((rid, session, started, seq))
    todo: list[tuple[str, str, str, list[str], Any, float, int]] = []
    for exp, runs in by_exp.items():
        try:
            exp_id = _experiment(server, exp, create)
        except SyncFailed:
            raise
        except MlopsNbError as exc:
            for rid, *_ in runs:
                summary.failed[rid] = str(exc)
            continue
        except Exception as exc:  # the server refused the name itself
            for rid, *_ in runs:
                summary.failed[rid] = f"experiment {exp!r}: {_reason(exc)}"
            continue
        remote = _remote_runs(server, exp_id)
        for rid, session, started, seq in runs:
            if rid in remote.complete:
                state.pushed[rid] = remote.complete[rid]
                tags = remote.tags.get(rid) or {}
                if (tags.get(DIGEST_TAG) or EMPTY_DIGEST) == local.digest(rid):
                    summary.skipped.append(rid)
                else:  # its verdict, tags or models changed since it was pushed
                    todo.append((rid, session, exp_id or "", [], (remote.complete[rid], tags),
                                 started, seq))
                continue
            state.pushed.pop(rid, None)  # the cache said so, the server does not
            todo.append((rid, session, exp_id or "", remote.partial.get(rid, []), None,
                         started, seq))
    todo.sort(key=lambda t: (t[5], t[6]))
    return [(rid, session, exp_id, stale, update)
            for rid, session, exp_id, stale, update, *_ in todo]


def _push_all(server: _Server, local: _Local, todo: list[Todo],
              limits: Limits, summary: SyncSummary, state: SyncState,
              progress: bool | None, on_pushed: Callable[[str, str], None] | None) -> None:
    bar = _progress(len(todo), progress)
    last_save = time.monotonic()
    try:
        for rid, session, exp_id, stale, update in todo:
            try:
                run = local.cell_run(rid, session)
                payload = build_payload(run, local.context(run), limits)
                if update is not None:
                    mlflow_id = _update(server, update[0], payload, limits, update[1])
                else:
                    mlflow_id = _push(server, exp_id, payload, limits, stale)
            except SyncFailed:
                raise
            except Exception as exc:  # this run only: the next may go through
                summary.failed[rid] = _reason(exc)
            else:
                (summary.updated if update is not None else summary.pushed).append(rid)
                summary.mlflow_ids[rid] = mlflow_id
                state.pushed[rid] = mlflow_id
                if on_pushed is not None:
                    on_pushed(rid, mlflow_id)
            if bar is not None:
                bar.update(1)
            if time.monotonic() - last_save > 2.0:
                with contextlib.suppress(OSError):
                    state.save()
                last_save = time.monotonic()
    finally:
        if bar is not None:
            bar.close()


def _progress(total: int, wanted: bool | None) -> Any:
    if wanted is False or total == 0:
        return None
    in_kernel = "ipykernel" in sys.modules and type(sys.stderr).__module__.startswith("ipykernel")
    if wanted is None and not (in_kernel or sys.stderr.isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="mlflow sync", unit="run", file=sys.stderr)


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's info logging per call must not flood a sync of a thousand runs."""
    import logging

    loggers = [logging.getLogger(n) for n in ("mlflow", "mlflow.tracking", "alembic")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, before, strict=True):
            lg.setLevel(level)


# -- watch ----------------------------------------------------------------------------------------
def watch_mlflow(tracking_uri: str, experiment: str | None = None, *, interval_s: float = 5.0,
                 home: str | os.PathLike[str] | None = None, progress: bool | None = None,
                 stop: threading.Event | None = None,
                 report: Callable[[SyncSummary | SyncFailed], None] | None = None
                 ) -> SyncSummary:
    """Sync now, then again whenever new runs land, every `interval_s` seconds (0.2 to 3600),
    until `stop` is set or Ctrl-C. A server outage is reported and retried next round; a
    refused login ends the watch. Returns the total."""
    interval_s = min(max(float(interval_s), 0.2), 3600.0)
    stop = stop or threading.Event()
    total = SyncSummary(tracking_uri=redact(tracking_uri))
    known: set[str] | None = None
    try:
        while not stop.is_set():
            local_ids = {r[0] for r in _Local.read(home, experiment).runs}
            if known is None or not local_ids <= known or total.failed:
                try:
                    summary = sync_mlflow(tracking_uri, experiment, home=home,
                                          progress=progress)
                    total.merge(summary)
                    known = local_ids
                    if report is not None:
                        report(summary)
                except AuthRefused:
                    raise
                except SyncFailed as exc:
                    total.failed = {"(server)": str(exc)}
                    if report is not None:
                        report(exc)
            stop.wait(interval_s)
    except KeyboardInterrupt:
        pass
    return total
