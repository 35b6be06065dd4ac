"""The team's runs, read back from an MLflow server into the runs table the comparison uses.

A run pushed by `sync_mlflow` comes back as it was in its notebook's store: its mlops-nb id,
session, cell, original parameter and metric names (MLflow keys had to be cleaned), typed
parameter values and its verdict. A run someone logged with MLflow directly is shown too, by its
MLflow id and run name, so the comparison covers the whole experiment.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from ..errors import MlopsNbError, RunNotFound
from .payload import (
    EXPORT_DIR,
    INFINITE_TAG,
    RENAMED_TAG,
    RUN_ID_TAG,
    TAG,
    USER_TAGS_TAG,
    read_param,
)
from .state import redact

if TYPE_CHECKING:
    import pandas as pd

MLFLOW_ID = "mlflow_run_id"
DBL_MAX = sys.float_info.max  # what MLflow stores for +-inf (it has no infinity)


def _client(tracking_uri: str) -> Any:
    from .mlflow import _import_client

    return _import_client()(tracking_uri=tracking_uri)


def _experiments(client: Any, experiment: str | None, uri: str) -> dict[str, str]:
    """{experiment id: name} of the experiment asked for, or of every active one."""
    if experiment is not None:
        exp = client.get_experiment_by_name(experiment)
        if exp is None or getattr(exp, "lifecycle_stage", "active") == "deleted":
            raise MlopsNbError(f"no experiment {experiment!r} on the MLflow server at "
                               f"{redact(uri)}; `mlops-nb sync mlflow` pushes it")
        return {str(exp.experiment_id): exp.name}
    out: dict[str, str] = {}
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        out.update({str(e.experiment_id): e.name for e in page})
        token = getattr(page, "token", None)
        if not token:
            return out


def _search(client: Any, experiment_ids: list[str]) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, max_results=1000, page_token=token)
        runs.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return runs


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def run_row(run: Any, experiment_name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One MLflow run as a runs-table row, and its verdict when it carried one."""
    tags: dict[str, str] = dict(run.data.tags)
    info = run.info
    ours = RUN_ID_TAG in tags
    renamed = _json_tag(tags, RENAMED_TAG, dict)
    start = (info.start_time or 0) / 1000
    end = (info.end_time / 1000) if info.end_time else None
    duration = _float(tags.get(TAG + "duration_s")) if ours else None
    if duration is None and end is not None:
        duration = max(0.0, end - start)
    status = tags.get(TAG + "status") if ours else None
    if status is None:
        status = "ok" if info.status == "FINISHED" else "error" if info.status == "FAILED" \
            else str(info.status).lower()
    row: dict[str, Any] = {
        "id": tags[RUN_ID_TAG] if ours else info.run_id,
        "experiment": experiment_name,
        "name": tags.get(TAG + "name") if ours else (info.run_name or None),
        "session": tags.get(TAG + "session"),
        "notebook": tags.get(TAG + "notebook") or tags.get("mlflow.source.name"),
        "cell_id": tags.get(TAG + "cell_id"),
        "execution_count": _int(tags.get(TAG + "execution_count")),
        "seq": _int(tags.get(TAG + "seq")),
        "started_at": start,
        "duration_s": duration,
        "status": status,
        "data": tags.get(TAG + "data"),
        "model": tags.get(TAG + "model") if ours else None,
    }
    for key, text in run.data.params.items():
        row["params." + str(renamed.get(key, key))] = read_param(text)
    # the push names the metrics it sent as +-inf; a run without that list (pushed by MLflow
    # itself, or before the list existed) had its infinities turned into +-DBL_MAX the same way
    infinite = _json_tag(tags, INFINITE_TAG, list) if INFINITE_TAG in tags else None
    for key, value in run.data.metrics.items():
        if abs(value) == DBL_MAX and (infinite is None or key in infinite):
            value = math.copysign(math.inf, value)
        row["metrics." + str(renamed.get(key, key))] = value
    # the user's tags (`mnb.set_tags`), as the local table shows them: `tags.<name>`
    if USER_TAGS_TAG in tags:
        user = _json_tag(tags, USER_TAGS_TAG, dict)
    else:
        user = {k: k for k in tags if not k.startswith(("mlflow.", TAG))}
    for key, name in user.items():
        if key in tags:
            row["tags." + str(name)] = tags[key]
    verdict = None
    if ours and tags.get(TAG + "verdict.level"):
        verdict = {"level": tags[TAG + "verdict.level"],
                   "ok": tags.get(TAG + "verdict.ok") == "true"}
    return row, verdict


def _json_tag(tags: dict[str, str], key: str, kind: type) -> Any:
    """A JSON tag of ours, or an empty `kind` when it is missing, cut or damaged."""
    try:
        value = json.loads(tags.get(key) or "null")
    except ValueError:
        value = None
    return value if isinstance(value, kind) else kind()


def mlflow_runs(tracking_uri: str, experiment: str | None = None) -> pd.DataFrame:
    """The runs of `experiment` (default: every experiment) on the server, as `mnb.runs()`
    shows local ones: same columns, oldest first. `df.attrs` holds `mlflow_run_ids`
    ({id: MLflow run id}) and `verdicts`."""
    from ..store.index import Columns
    from ..store.reader import RunColumns
    from ..table import runs_frame
    from .mlflow import RetryPolicy, _mlflow_http_env, _quiet_mlflow, _Server

    with _mlflow_http_env(RetryPolicy()), _quiet_mlflow():
        client = _client(tracking_uri)
        server = _Server(client, tracking_uri, RetryPolicy())
        exps = server.call("list experiments", _experiments, client, experiment, tracking_uri)
        runs = server.call("search runs", _search, client, list(exps)) if exps else []
    cols = Columns()
    ids: dict[str, str] = {}
    verdicts: dict[str, dict[str, Any]] = {}
    for run in runs:
        name = exps.get(str(run.info.experiment_id), "")
        row, verdict = run_row(run, name)
        if row["id"] in ids:
            continue  # a run pushed twice by hand: show it once
        cols.add_row(row)
        ids[row["id"]] = run.info.run_id
        if verdict is not None:
            verdicts[row["id"]] = verdict
    df = runs_frame(RunColumns(cols.cols, cols.n, []))
    tag_cols = sorted(c for c in df.columns if c.startswith("tags."))
    if tag_cols:  # last, as `mnb.runs()` adds them
        df = df[[c for c in df.columns if not c.startswith("tags.")] + tag_cols]
    df.attrs["source"] = "mlflow"
    df.attrs["tracking_uri"] = redact(tracking_uri)
    df.attrs["mlflow_run_ids"] = ids
    df.attrs["verdicts"] = verdicts
    return df


def _find_run(client: Any, run_id: str, experiment: str | None, uri: str) -> Any:
    """The MLflow run of an mlops-nb run id (or unique prefix), or an MLflow run id."""
    from .payload import COMPLETE, COMPLETE_TAG

    prefix = run_id.strip().lower()
    if not prefix or any(c not in "0123456789abcdef" for c in prefix):
        raise RunNotFound(f"{run_id!r} is not a run id (ids are hexadecimal)")
    exps = _experiments(client, experiment, uri)
    matches = {}
    for run in _search(client, list(exps)):
        tags = run.data.tags
        rid = tags.get(RUN_ID_TAG)
        if rid and rid.startswith(prefix) and tags.get(COMPLETE_TAG) == COMPLETE:
            matches[rid] = run
        elif run.info.run_id == prefix:
            matches[run.info.run_id] = run
    if not matches:
        raise RunNotFound(f"no run on {redact(uri)} has an id starting with {prefix!r}")
    if len(matches) > 1:
        raise MlopsNbError(f"{prefix!r} matches {len(matches)} runs on the server; give more "
                           "characters")
    return next(iter(matches.values()))


def download_export(run_id: str, out_dir: str | os.PathLike[str], tracking_uri: str, *,
                    experiment: str | None = None, force: bool = False) -> Path:
    """Download the export (train.py, requirements.txt, run.json) a teammate's sync pushed
    with run `run_id`, into `out_dir`; `mnb.reproduce(out_dir)` then verifies it here.

    Only the export's own file names are written (a server is not trusted to name files), and
    its run.json must be the run's: a mismatch writes nothing.
    """
    import tempfile

    from ..exporting.paths import install_files, prepare_out_dir
    from .mlflow import (
        RetryPolicy,
        _mlflow_http_env,
        _quiet_mlflow,
        _Server,
        export_folder_files,
    )

    with _mlflow_http_env(RetryPolicy()), _quiet_mlflow():
        client = _client(tracking_uri)
        server = _Server(client, tracking_uri, RetryPolicy())
        run = server.call("find run", _find_run, client, run_id, experiment, tracking_uri)
        if run.data.tags.get(TAG + "exported") != EXPORT_DIR:
            raise MlopsNbError(
                f"run {run_id} was pushed without an export: export and verify it in its "
                "notebook's project (`mlops-nb export`, `mlops-nb reproduce`), then sync again")
        with tempfile.TemporaryDirectory(prefix="mlops-nb-pull-") as tmp:
            got = Path(server.call("download export", client.download_artifacts,
                                   run.info.run_id, EXPORT_DIR, tmp))
            try:
                files = export_folder_files(got)
            except OSError as exc:
                raise MlopsNbError(f"the export stored with run {run_id} is not one: {exc}") \
                    from exc
    try:
        pushed_id = json.loads(files["run.json"]).get("run_id")
    except (KeyError, ValueError, AttributeError):
        pushed_id = None
    if "train.py" not in files or pushed_id != run.data.tags.get(RUN_ID_TAG):
        raise MlopsNbError(f"the export stored with run {run_id} on the server is incomplete "
                           "or not this run's; sync it again from its project")
    out = prepare_out_dir(out_dir, root=Path.cwd(), store=None, force=force, check_root=False)
    return install_files(out, files)  # all or nothing, like an export


def mlflow_comparison(experiment: str | None = None, *, metric: str | None = None,
                      goal: str | None = None, home: str | os.PathLike[str] | None = None,
                      tracking_uri: str | None = None) -> tuple[Any, Path | None]:
    """The comparison over the server's runs, and the local store (None without one)."""
    from ..comparison.model import Comparison
    from ..config import store_reader as _reader

    uri = tracking_uri or config.read(config.TRACKING_URI)
    if not uri:
        raise MlopsNbError("source='mlflow' needs tracking_uri= (or MLFLOW_TRACKING_URI)")
    df = mlflow_runs(uri, experiment)
    try:
        store: Path | None = _reader(home).home
    except MlopsNbError:
        store = None
    return Comparison(df, metric=metric, goal=goal, verdicts=dict(df.attrs["verdicts"])), store
