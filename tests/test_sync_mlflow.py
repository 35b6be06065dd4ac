"""Sync to a real `mlflow server` (SQLite backend, local artifacts) and read the team's runs back.

The store is built by a real InteractiveShell with `%track on`, as a notebook builds it. Faults
are real too: the server stopped mid-sync and restarted, a closed port, an HTTP server
answering 401 or 503.
"""

from __future__ import annotations

import http.server
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_server import MlflowServer

import mlops_nb as mnb
from mlops_nb.cli import main
from mlops_nb.comparison.model import lineage_code
from mlops_nb.store.reader import StoreReader
from mlops_nb.sync.mlflow import AuthRefused, RetryPolicy, SyncFailed, sync_mlflow, watch_mlflow
from mlops_nb.sync.payload import COMPLETE_TAG, RUN_ID_TAG, param_text
from mlops_nb.sync.team import download_export, mlflow_runs

pytestmark = pytest.mark.slow

FAST = RetryPolicy(attempts=2, backoff_s=0.05, timeout_s=5)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: MlflowServer):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server.uri)


_experiment_counter = iter(range(10_000))


@pytest.fixture
def exp_name(request: pytest.FixtureRequest) -> str:
    """An experiment name no other test uses on the shared server."""
    return f"{request.node.name[:40]}-{next(_experiment_counter)}-{time.monotonic_ns()}"


def build_store(sh, experiment: str, runs: int = 2) -> list:
    sh.run("%load_ext mlops_nb")
    sh.run(f"%track on --experiment {experiment}")
    sh.run("import numpy as np\nimport mlops_nb as mnb\n"
           "from sklearn.tree import DecisionTreeRegressor\n"
           "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt")
    sh.run("X = np.arange(40.0).reshape(20, 2)\ny = X[:, 0] * 2 + X[:, 1]")
    for depth in range(2, 2 + runs):
        sh.run(f"max_depth = {depth}")
        sh.run("model = DecisionTreeRegressor(max_depth=max_depth, random_state=0).fit(X, y)")
        sh.run("for step in range(3):\n    mnb.log_metric('loss', 1.0 / (step + max_depth))\n"
               "r2 = model.score(X, y)\nfig, ax = plt.subplots()\nax.plot(y)")
    sh.flush()
    reader = StoreReader(sh.tracker.home)
    return [cr for cr in reader.session_log(sh.tracker.session) if cr.is_run]


def mlflow_runs_of(client, experiment: str, view: str = "active") -> list:
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    vt = ViewType.ACTIVE_ONLY if view == "active" else ViewType.ALL
    return client.search_runs([exp.experiment_id], run_view_type=vt, max_results=1000)


def test_push_then_read_back_every_field(shell, server, client, exp_name):
    runs = build_store(shell, exp_name, runs=2)
    summary = sync_mlflow(server.uri, progress=False)
    assert summary.ok and sorted(summary.pushed) == sorted(r.id for r in runs)
    reader = StoreReader(shell.tracker.home)
    log = reader.session_log(shell.tracker.session)
    env = reader.session_info(shell.tracker.session)["environment"]
    remote = {r.data.tags[RUN_ID_TAG]: r for r in mlflow_runs_of(client, exp_name)}
    assert set(remote) == {r.id for r in runs}
    for run in runs:
        m = remote[run.id]
        assert m.info.run_id == summary.mlflow_ids[run.id]
        assert m.info.status == "FINISHED"
        assert m.info.start_time == int(run.started_at * 1000)
        assert m.data.params == {k: param_text(v) for k, v in run.effective_params.items()}
        assert m.data.params["max_depth"] == str(run.effective_params["max_depth"])
        assert m.data.params["model.max_depth"] == str(run.effective_params["max_depth"])
        assert m.data.metrics == pytest.approx(run.metrics)
        history = client.get_metric_history(m.info.run_id, "loss")
        assert [(h.step, h.value) for h in history] == \
            list(enumerate(run.metric_steps["loss"]))
        tags = m.data.tags
        assert tags[COMPLETE_TAG] == "complete"
        assert tags["mlops_nb.session"] == run.session
        assert tags["mlops_nb.seq"] == str(run.seq)
        assert tags["mlops_nb.execution_count"] == str(run.execution_count)
        assert tags["mlops_nb.status"] == "ok"
        assert tags["mlops_nb.experiment"] == exp_name
        assert tags["mlops_nb.model.model"] == "sklearn.tree._classes.DecisionTreeRegressor"
        for name in ("X", "y"):
            fp = json.loads(tags[f"mlops_nb.data.{name}"])
            assert fp["hash"] == run.effective_data[name]["hash"]
        assert tags["mlops_nb.python"] == env["python"]
        assert tags["mlflow.runName"] == m.info.run_name
        artifacts = {a.path for a in client.list_artifacts(m.info.run_id)}
        assert {"lineage.py", "figures"} <= artifacts
        got = Path(client.download_artifacts(m.info.run_id, "lineage.py", str(shell.ip.ev(
            "__import__('tempfile').mkdtemp()"))))
        assert got.read_text() == lineage_code(reader, run, log)
        assert "DecisionTreeRegressor(max_depth=max_depth" in got.read_text()
        figs = client.list_artifacts(m.info.run_id, "figures")
        assert len(figs) == len(run.figures) == 1
    # the local store is only read: no session file changed, the cache is beside it
    assert (shell.tracker.home / "sync").is_dir()


def test_a_saved_model_version_is_an_mlflow_sklearn_model_on_the_server(
        shell, server, client, exp_name):
    import mlflow.pyfunc
    import mlflow.sklearn

    build_store(shell, exp_name, runs=1)
    shell.run("mnb.log_model(model, 'tree')\nr2_logged = model.score(X, y)")
    shell.flush()
    reader = StoreReader(shell.tracker.home)
    logged = [cr for cr in reader.session_log(shell.tracker.session) if cr.is_run][-1]
    summary = sync_mlflow(server.uri, exp_name, progress=False)
    assert summary.ok and logged.id in summary.pushed
    mlflow_id = summary.mlflow_ids[logged.id]
    assert {a.path for a in client.list_artifacts(mlflow_id, "models")} == {"models/tree"}
    X = shell.ns["X"]
    with mlflow_tracking_uri(server.uri):
        model = mlflow.sklearn.load_model(f"runs:/{mlflow_id}/models/tree")
        assert (model.predict(X) == shell.ns["model"].predict(X)).all()
        assert type(model).__name__ == "DecisionTreeRegressor"
        pyfunc = mlflow.pyfunc.load_model(f"runs:/{mlflow_id}/models/tree")
        assert (pyfunc.predict(X) == model.predict(X)).all()
    tag = json.loads(client.get_run(mlflow_id).data.tags["mlops_nb.model_version.tree"])
    assert tag["artifact_path"] == "models/tree" and tag["format"] == "skops"
    other = [rid for rid in summary.pushed if rid != logged.id]
    assert other and not client.list_artifacts(summary.mlflow_ids[other[0]], "models")


def mlflow_tracking_uri(uri: str):
    """MLflow's `runs:/` URIs resolve against the global tracking URI: set for a block."""
    import contextlib

    import mlflow

    @contextlib.contextmanager
    def block():
        before = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before)

    return block()


def test_sync_twice_creates_nothing_even_without_the_cache(shell, server, client, exp_name):
    runs = build_store(shell, exp_name, runs=2)
    first = sync_mlflow(server.uri, exp_name, progress=False)
    assert len(first.pushed) == 2
    again = sync_mlflow(server.uri, exp_name, progress=False)
    assert again.pushed == [] and sorted(again.skipped) == sorted(r.id for r in runs)
    for f in (shell.tracker.home / "sync").iterdir():  # the server is the truth, not the cache
        f.unlink()
    third = sync_mlflow(server.uri, exp_name, progress=False)
    assert third.pushed == [] and len(third.skipped) == 2
    assert len(mlflow_runs_of(client, exp_name, "all")) == 2
    # one more run lands: only it is pushed
    shell.run("max_depth = 9")
    shell.run("model = DecisionTreeRegressor(max_depth=max_depth, random_state=0).fit(X, y)\n"
              "r2 = model.score(X, y)")
    shell.flush()
    fourth = sync_mlflow(server.uri, exp_name, progress=False)
    assert len(fourth.pushed) == 1 and len(fourth.skipped) == 2
    assert len(mlflow_runs_of(client, exp_name, "all")) == 3


def test_a_verdict_and_tags_given_after_a_sync_reach_the_server_in_place(
        shell, server, client, exp_name):
    """The run is synced, then reproduced (a verdict) and tagged: the next sync updates the
    MLflow run in place (no second run, the same MLflow id), and the one after skips it."""
    from mlops_nb.store.annotations import annotate
    from mlops_nb.store.verdicts import save_verdict
    from mlops_nb.sync.payload import DIGEST_TAG

    (run,) = build_store(shell, exp_name, runs=1)
    first = sync_mlflow(server.uri, exp_name, progress=False)
    assert first.pushed == [run.id]
    mlflow_id = first.mlflow_ids[run.id]
    home = shell.tracker.home
    save_verdict(home, run.id, {"run_id": run.id, "level": "L2", "ok": True})
    annotate(home, run.id, tags={"owner": "ana"})
    again = sync_mlflow(server.uri, exp_name, progress=False)
    assert again.pushed == [] and again.updated == [run.id] and again.skipped == []
    assert "pushed 0, updated 1, skipped 0" in again.text()
    (remote,) = mlflow_runs_of(client, exp_name, "all")
    assert remote.info.run_id == mlflow_id
    tags = remote.data.tags
    assert tags["mlops_nb.verdict"] == "L2 ok" and tags["owner"] == "ana"
    assert tags[COMPLETE_TAG] == "complete" and tags[DIGEST_TAG]
    history = client.get_metric_history(mlflow_id, "loss")
    assert len(history) == len(run.metric_steps["loss"])  # metrics not logged twice
    third = sync_mlflow(server.uri, exp_name, progress=False)
    assert third.updated == [] and third.skipped == [run.id]
    # a tag changed again: updated again, still one run
    annotate(home, run.id, tags={"owner": "bo"})
    assert sync_mlflow(server.uri, exp_name, progress=False).updated == [run.id]
    (remote,) = mlflow_runs_of(client, exp_name, "all")
    assert remote.data.tags["owner"] == "bo"
    assert mlflow_runs(server.uri, exp_name).loc[0, "tags.owner"] == "bo"


def test_the_team_table_reads_infinities_and_user_tags_as_the_local_one(
        shell, server, exp_name):
    shell.run("%load_ext mlops_nb")
    shell.run(f"%track on --experiment {exp_name}")
    shell.run("import mlops_nb as mnb\nmnb.set_tags({'owner': 'me', 'mlops_nb.name': 'x'})\n"
              "acc = float('inf')\nrmse = float('-inf')\nf1 = 0.5\n"
              "mnb.log_metric('big', 10**400)\nmnb.log_metric('huge', 1.7976931348623157e308)")
    shell.flush()
    assert sync_mlflow(server.uri, exp_name, progress=False).ok
    local = mnb.runs(exp_name)
    remote = mlflow_runs(server.uri, exp_name)
    for col in ("metrics.acc", "metrics.rmse", "metrics.big", "metrics.huge", "metrics.f1"):
        assert list(remote[col]) == list(local[col]), col
    assert remote.loc[0, "metrics.acc"] == math.inf and remote.loc[0, "metrics.rmse"] == -math.inf
    assert remote.loc[0, "metrics.huge"] == 1.7976931348623157e308  # a real DBL_MAX stays
    tag_cols = [c for c in local.columns if c.startswith("tags.") and c != "tags.mlflow.runName"]
    assert tag_cols == ["tags.mlops_nb.name", "tags.owner"]
    for col in tag_cols:
        assert list(remote[col]) == list(local[col]), col


def test_syncing_an_experiment_the_store_does_not_have_is_bad_input(shell, capsys):
    build_store(shell, "churn", runs=1)
    assert main(["sync", "mlflow", "--tracking-uri", "http://127.0.0.1:9", "-e", "nope"]) == 2
    assert "no runs in experiment 'nope'; the store has 'churn'" in capsys.readouterr().err


def test_dry_run_pushes_nothing(shell, server, client, exp_name):
    build_store(shell, exp_name, runs=1)
    summary = sync_mlflow(server.uri, exp_name, dry_run=True, progress=False)
    assert len(summary.would_push) == 1 and summary.pushed == []
    assert client.get_experiment_by_name(exp_name) is None
    assert not (shell.tracker.home / "sync").exists()


def test_an_interrupted_push_is_replaced_not_duplicated(shell, server, client, exp_name):
    (run,) = build_store(shell, exp_name, runs=1)
    exp_id = client.create_experiment(exp_name)
    half = client.create_run(exp_id, tags={RUN_ID_TAG: run.id})  # as a killed sync leaves it
    client.log_param(half.info.run_id, "max_depth", "2")
    summary = sync_mlflow(server.uri, exp_name, progress=False)
    assert summary.pushed == [run.id]
    active = mlflow_runs_of(client, exp_name)
    assert len(active) == 1 and active[0].info.run_id != half.info.run_id
    assert active[0].data.tags[COMPLETE_TAG] == "complete"
    assert client.get_run(half.info.run_id).info.lifecycle_stage == "deleted"


def test_server_stopped_mid_sync_fails_clearly_then_resume_after_restart(
        shell, server, client, exp_name):
    """The real server is stopped in the middle of a run's push (created, values and
    artifacts in, not finished), then restarted on the same port and database: the sync
    fails with exit 1 and touches nothing local; the resume replaces the half-pushed run and
    pushes the rest, so every run is on the server exactly once."""
    from mlflow.tracking import MlflowClient

    runs = build_store(shell, exp_name, runs=4)
    sessions = shell.tracker.home / "sessions"
    store_files = {p: p.stat().st_mtime_ns for p in sessions.rglob("*")}
    pushed: list[str] = []
    finishing = MlflowClient.set_terminated
    calls = [0]

    def stop_during_third_push(self, run_id, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            server.stop()  # the real server goes away: connections refused from here on
        return finishing(self, run_id, *args, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(MlflowClient, "set_terminated", stop_during_third_push)
            with pytest.raises(SyncFailed) as info:
                sync_mlflow(server.uri, exp_name, progress=False, policy=FAST,
                            on_pushed=lambda rid, _m: pushed.append(rid))
        assert "unreachable" in str(info.value) and "run the sync again" in str(info.value)
        assert info.value.summary.pushed == pushed and len(pushed) == 2
        assert {p: p.stat().st_mtime_ns for p in sessions.rglob("*")} == store_files
        assert main(["sync", "mlflow", "--tracking-uri", server.uri, "-e", exp_name]) == 1
    finally:
        if server.proc is None:
            server.start()  # same port, same SQLite database and artifact folder
    half = [r for r in mlflow_runs_of(client, exp_name) if COMPLETE_TAG not in r.data.tags]
    assert len(half) == 1  # the run cut off mid-push is on the server, unfinished
    resumed = sync_mlflow(server.uri, exp_name, progress=False)
    assert len(resumed.pushed) == 2 and sorted(resumed.skipped) == sorted(pushed)
    active = mlflow_runs_of(client, exp_name)
    assert sorted(r.data.tags[RUN_ID_TAG] for r in active) == sorted(r.id for r in runs)
    assert all(r.data.tags[COMPLETE_TAG] == "complete" for r in active)
    assert client.get_run(half[0].info.run_id).info.lifecycle_stage == "deleted"
    assert {p: p.stat().st_mtime_ns for p in sessions.rglob("*")} == store_files
    again = sync_mlflow(server.uri, exp_name, progress=False)
    assert again.pushed == [] and len(again.skipped) == 4


def test_hostile_names_and_huge_values_are_pushed_whole(shell, server, client, exp_name,
                                                        capsys):
    hostile_exp = exp_name + "«exp»☃a/b;c'"
    shell.run("%load_ext mlops_nb")
    shell.run(f'%track on --experiment "{hostile_exp}"')  # quoted, as a shell would need
    shell.run("import mlops_nb as mnb")
    names = {
        "a b/../c;rm -rf ~": "x" * 20_000,
        "/leading//slashes/.": [1, 2, 3],
        "模型 depth": 3,
        "k" * 400: "long key",
        "k" * 400 + "2": "another long key",
        "tab\there": None,
    }
    shell.ns["hostile"] = names
    shell.run("mnb.log_params(hostile)\nmnb.log_metric('f1 ☃/..', 0.5)\n"
              "mnb.log_metric('nan score', float('nan'))\nmnb.log_metric('label', 'high')")
    shell.flush()
    summary = sync_mlflow(server.uri, progress=False)
    assert summary.ok, summary.failed
    assert "View run" not in capsys.readouterr().out  # MLflow's per-run link line is off
    (m,) = mlflow_runs_of(client, hostile_exp)
    tags = m.data.tags
    truncated = json.loads(tags["mlops_nb.truncated"])
    renamed = json.loads(tags["mlops_nb.renamed"])
    assert set(renamed.values()) >= {"a b/../c;rm -rf ~", "/leading//slashes/.", "tab\there",
                                     "k" * 400, "k" * 400 + "2", "f1 ☃/.."}
    assert "模型 depth" in m.data.params  # Unicode word characters are valid keys
    assert all(len(k) <= 250 for k in m.data.params)
    assert len(m.data.params) == len(names)
    (cut,) = [k for k, v in renamed.items() if v == "a b/../c;rm -rf ~"]
    assert cut in truncated and len(m.data.params[cut]) == 6000
    assert "label" in tags["mlops_nb.skipped"]
    assert math.isnan(m.data.metrics["nan score"])
    # read back: the original names, typed values
    df = mlflow_runs(server.uri, hostile_exp)
    assert df.loc[0, "params./leading//slashes/."] == [1, 2, 3]
    assert df.loc[0, "params.模型 depth"] == 3
    assert df.loc[0, "params.tab\there"] is None
    assert df.loc[0, "metrics.f1 ☃/.."] == 0.5


def test_compare_with_the_team_reads_the_same_table(shell, server, exp_name, capsys):
    build_store(shell, exp_name, runs=3)
    sync_mlflow(server.uri, progress=False)
    local = mnb.runs(exp_name)
    remote = mlflow_runs(server.uri, exp_name)
    assert list(remote["id"]) == list(local["id"])
    for col in ("experiment", "name", "session", "cell_id", "execution_count", "seq", "status",
                "data", "model", "params.max_depth", "params.model.max_depth", "metrics.r2",
                "metrics.loss"):
        assert list(remote[col]) == list(local[col]), col
    from mlops_nb.api import runs_with_tags  # mnb.runs() without MLflow's alias columns

    assert set(runs_with_tags(exp_name).columns) <= set(remote.columns)
    assert (remote["started_at"] - local["started_at"]).abs().max().total_seconds() < 0.001
    w = mnb.compare(exp_name, source="mlflow", tracking_uri=server.uri, metric="r2")
    capsys.readouterr()
    assert list(w.cmp.df["id"]) == list(local["id"])
    assert main(["runs", "--source", "mlflow", "--tracking-uri", server.uri,
                 "-e", exp_name, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == list(local["id"])
    report = Path.cwd() / "team.html"
    assert main(["compare", "--source", "mlflow", "--tracking-uri", server.uri, "-e", exp_name,
                 "--metric", "r2", "-o", str(report)]) == 0
    html = report.read_text()
    assert all(rid[:8] in html for rid in local["id"])


def test_a_pushed_export_is_pulled_and_reproduced(shell, server, exp_name, tmp_path, capsys):
    (run, _) = build_store(shell, exp_name, runs=2)
    out = mnb.export(run.id, Path.cwd() / "exports" / "best")
    assert mnb.reproduce(out).ok  # the verdict records where the export is
    sync_mlflow(server.uri, exp_name, progress=False)
    df = mlflow_runs(server.uri, exp_name)
    assert df.attrs["verdicts"][run.id]["ok"] is True
    pulled = download_export(run.id[:10], tmp_path / "pulled", server.uri)
    assert sorted(p.name for p in pulled.iterdir()) == sorted(p.name for p in out.iterdir())
    verdict = mnb.reproduce(pulled, home=None)
    assert verdict.ok and verdict.level in ("L2", "L3")
    # from a terminal: the same pull, and a run pushed without an export says so
    cli_out = tmp_path / "cli"
    assert main(["export", run.id[:12], "--source", "mlflow", "--tracking-uri", server.uri,
                 "-o", str(cli_out)]) == 0
    assert (cli_out / "train.py").read_bytes() == (out / "train.py").read_bytes()
    assert main(["export", "--best", "--metric", "r2", "--source", "mlflow", "-e", exp_name,
                 "--tracking-uri", server.uri, "-o", str(tmp_path / "other")]) == 2
    assert "pushed without an export" in capsys.readouterr().err


def test_watch_pushes_runs_as_they_land(shell, server, client, exp_name):
    build_store(shell, exp_name, runs=1)
    stop = threading.Event()
    seen: list = []
    t = threading.Thread(target=watch_mlflow, args=(server.uri, exp_name),
                         kwargs={"interval_s": 0.2, "progress": False, "stop": stop,
                                 "report": seen.append}, daemon=True)
    t.start()
    try:
        _until(lambda: len(mlflow_runs_of(client, exp_name)) == 1)
        shell.run("max_depth = 7")
        shell.run("model = DecisionTreeRegressor(max_depth=max_depth).fit(X, y)\n"
                  "r2 = model.score(X, y)")
        shell.flush()
        _until(lambda: len(mlflow_runs_of(client, exp_name)) == 2)
    finally:
        stop.set()
        t.join(30)
    assert not t.is_alive()
    assert sum(len(s.pushed) for s in seen) == 2


def _until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


# -- faults without an MLflow server: a closed port, a server refusing or failing ---------------
class _Answer(http.server.BaseHTTPRequestHandler):
    status = 401

    def _answer(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"no")

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def answering(request):
    handler = type("H", (_Answer,), {"status": request.param})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("answering", [401, 403], indirect=True)
def test_refused_credentials_fail_at_once_with_a_clear_error(tracked, answering, capsys):
    uri, _ = answering
    tracked.run("score = 1.0")
    tracked.flush()
    with pytest.raises(AuthRefused, match="MLFLOW_TRACKING_USERNAME"):
        sync_mlflow(uri.replace("//", "//alice:s3cret@"), policy=FAST)
    assert main(["sync", "mlflow", "--tracking-uri", uri.replace("//", "//bob:hunter2@")]) == 1
    err = capsys.readouterr().err
    assert "refused the credentials" in err and "hunter2" not in err
    for f in (tracked.tracker.home / "sync").iterdir():
        assert "hunter2" not in f.read_text() and "s3cret" not in f.read_text()


@pytest.mark.parametrize("answering", [503], indirect=True)
def test_a_failing_server_is_retried_with_bounded_backoff(tracked, answering):
    uri, _ = answering
    tracked.run("score = 1.0")
    tracked.flush()
    t0 = time.monotonic()
    with pytest.raises(SyncFailed, match="unreachable or failing"):
        sync_mlflow(uri, policy=RetryPolicy(attempts=3, backoff_s=0.2, timeout_s=5))
    assert 0.5 <= time.monotonic() - t0 < 20  # two waits: 0.2 s then 0.4 s


def test_a_closed_port_is_a_clear_failure_and_exit_1(tracked, capsys):
    from mlflow_server import free_port

    tracked.run("score = 1.0")
    tracked.flush()
    uri = f"http://user:pw0rd@127.0.0.1:{free_port()}"
    assert main(["sync", "mlflow", "--tracking-uri", uri]) == 1
    err = capsys.readouterr().err
    assert "sync failed" in err and "unreachable" in err and "pw0rd" not in err


def test_without_the_client_sync_says_how_to_install_it(tracked, monkeypatch, capsys):
    import sys

    tracked.run("score = 1.0")
    tracked.flush()
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert main(["sync", "mlflow", "--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert "pip install 'mlops-nb[mlflow]'" in capsys.readouterr().err
