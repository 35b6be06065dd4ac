"""The MLflow form of a run, without a server: keys, limits, batches, typed parameters."""

from __future__ import annotations

import json
import math
import posixpath
import re

import pytest

from mlops_nb.records import CellRun
from mlops_nb.sync.mlflow import AUTH, PERMANENT, TRANSIENT, classify
from mlops_nb.sync.payload import (
    KeyMaker,
    Limits,
    RunContext,
    batches,
    build_payload,
    experiment_name,
    param_text,
    read_param,
)
from mlops_nb.sync.state import SyncState, redact

VALID = re.compile(r"^[/\w.\- :]*$")  # MLflow's own check on POSIX


def mlflow_accepts(key: str) -> bool:
    norm = posixpath.normpath(key)
    ours = (bool(VALID.match(key)) and len(key) <= 250 and norm == key and norm != "."
            and not norm.startswith(("..", "/")))
    try:  # and MLflow's own validators agree, where the client is installed
        from mlflow.exceptions import MlflowException
        from mlflow.utils import validation as v
    except ImportError:
        return ours
    try:
        v._validate_param_name(key)
        v._validate_tag_name(key)
        v._validate_metric_name(key)
        v._validate_length_limit("key", v.MAX_ENTITY_KEY_LENGTH, key)
    except MlflowException:
        assert not ours, f"we would accept {key!r}, MLflow does not"
        return False
    return ours


def test_limits_are_mlflows_own():
    """One declaration (sync/limits.py), equal to the installed client's constants."""
    from mlops_nb.sync import limits as lim_mod

    found = lim_mod.client_constants()
    assert found is not None and set(found) == set(lim_mod.MLFLOW_CONSTANTS)
    assert {k: getattr(Limits(), k) for k in found} == found
    assert lim_mod.mlflow_limits() == Limits()
    assert Limits is lim_mod.Limits  # the payload uses the one declaration


def test_a_stricter_client_wins_and_no_client_keeps_the_defaults(monkeypatch):
    import sys
    import types

    from mlops_nb.sync.limits import mlflow_limits

    fake = types.ModuleType("mlflow.utils.validation")
    fake.MAX_PARAM_VAL_LENGTH = 500  # an older, stricter client
    fake.MAX_TAG_VAL_LENGTH = 10**6  # a looser one is not trusted beyond the defaults
    fake.MAX_METRICS_PER_BATCH = True  # nonsense is ignored
    pkg = types.ModuleType("mlflow.utils")
    pkg.validation = fake
    monkeypatch.setitem(sys.modules, "mlflow.utils", pkg)
    monkeypatch.setitem(sys.modules, "mlflow.utils.validation", fake)
    got = mlflow_limits()
    assert got.param_value_length == 500 and got.tag_value_length == Limits().tag_value_length
    assert got.metrics_per_batch == Limits().metrics_per_batch
    monkeypatch.setitem(sys.modules, "mlflow.utils", None)
    assert mlflow_limits() == Limits()


@pytest.mark.parametrize("name", ["a b/../c;rm -rf ~", "/x", "x/", "a//b", ".", "..", "",
                                  "tab\there", "new\nline", "模型 depth", "k" * 400, "\ud800x",
                                  "ok_name-1.2:3 /4"])
def test_every_name_becomes_a_key_mlflow_accepts(name):
    key = KeyMaker(Limits())(name)
    assert mlflow_accepts(key), key
    if mlflow_accepts(name):
        assert key == name  # valid names are never touched


def test_two_names_never_share_a_key():
    keys = KeyMaker(Limits())
    made = {keys(n) for n in ("a;b", "a:b", "a?b", "a b", "k" * 300, "k" * 300 + "!")}
    assert len(made) == 6 and all(mlflow_accepts(k) for k in made)


@pytest.mark.parametrize("value", [3, -2.5, True, None, [1, "a"], {"x": (1, 2)}, "text",
                                   "3", "None", "", 10**30])
def test_parameters_come_back_as_they_went(value):
    back = read_param(param_text(value))
    if isinstance(value, str) and value in ("3", "None"):
        assert back in (3, None)  # a string that reads as a literal: documented ambiguity
    else:
        assert back == value and type(back) is type(value)


def test_read_param_never_evaluates_code():
    assert read_param("__import__('os').system('x')") == "__import__('os').system('x')"
    assert math.isnan(read_param("nan"))


def _run(**kw) -> CellRun:
    base = {"id": "ab" * 16, "session": "s1", "experiment": "exp", "seq": 3,
            "started_at": 1_700_000_000.25, "duration_s": 1.5, "metrics": {"f1": 0.5},
            "execution_count": 7, "notebook": "/p/churn.ipynb"}
    base.update(kw)
    return CellRun(**base)


def test_limits_cut_values_and_say_so():
    lim = Limits()
    run = _run(effective_params={"big": "x" * 7000, "ok": 1},
               metrics={"f1": 0.5, "label": "high", "big int": 10**400},
               metric_steps={"f1": [0.1, 0.3, 0.5]})
    p = build_payload(run, RunContext(), lim)
    assert len(p.params["big"]) == lim.param_value_length and p.truncated == ["big"]
    assert p.params["ok"] == "1"
    assert [(k, v, s) for k, v, _, s in p.metrics if k == "f1"] == \
        [("f1", 0.1, 0), ("f1", 0.3, 1), ("f1", 0.5, 2)]
    assert ("big int", math.inf, p.start_ms, 0) in p.metrics
    assert "label" in p.tags["mlops_nb.skipped"]
    assert p.tags["mlops_nb.truncated"] == '["big"]'
    assert p.run_name == "churn.ipynb In[7]" and p.status == "FINISHED"
    assert p.end_ms - p.start_ms == 1500


def test_batches_respect_every_limit():
    lim = Limits()
    run = _run(effective_params={f"p{i}": "v" * 5000 for i in range(250)},
               metrics={f"m{i}": float(i) for i in range(1500)})
    p = build_payload(run, RunContext(), lim)
    chunks = list(batches(p, lim))
    assert sum(len(b[0]) for b in chunks) == 250
    assert sum(len(b[1]) for b in chunks) == 1500
    assert sum(len(b[2]) for b in chunks) == len(p.tags)
    for params, metrics, tags in chunks:
        assert len(params) <= 100 and len(tags) <= 100 and len(metrics) <= 1000
        assert len(params) + len(tags) + len(metrics) <= 1000
        size = sum(len(k) + len(v) for k, v in [*params.items(), *tags.items()])
        assert size < lim.batch_bytes / 2 + 10_000


def test_experiment_names_past_the_limit_stay_distinct():
    lim = Limits()
    a, b = experiment_name("e" * 600, lim), experiment_name("e" * 600 + "x", lim)
    assert len(a) <= 500 and len(b) <= 500 and a != b
    assert experiment_name("churn", lim) == "churn"


def test_credentials_never_reach_the_state_file(tmp_path):
    assert redact("https://alice:s3cret@mlflow.example/x") == "https://***@mlflow.example/x"
    state = SyncState.load(tmp_path, "http://bob:hunter2@127.0.0.1:5000")
    state.pushed["ab" * 16] = "f" * 32
    state.save()
    text = state.path.read_text()
    assert "hunter2" not in text and "bob" not in text
    again = SyncState.load(tmp_path, "http://bob:hunter2@127.0.0.1:5000")
    assert again.pushed == state.pushed
    state.path.write_text("{not json")
    assert SyncState.load(tmp_path, "http://127.0.0.1:5000").pushed == {}


def test_errors_are_classified_for_retry():
    class MlflowLike(Exception):
        def __init__(self, code: str) -> None:
            super().__init__(code)
            self.error_code = code

    assert classify(MlflowLike("UNAUTHENTICATED")) == AUTH
    assert classify(MlflowLike("PERMISSION_DENIED")) == AUTH
    assert classify(MlflowLike("TEMPORARILY_UNAVAILABLE")) == TRANSIENT
    assert classify(MlflowLike("INVALID_PARAMETER_VALUE")) == PERMANENT
    assert classify(ConnectionRefusedError()) == TRANSIENT
    try:
        try:
            raise TimeoutError("read timed out")
        except TimeoutError as inner:
            raise MlflowLike("") from inner
    except MlflowLike as outer:
        assert classify(outer) == TRANSIENT


def test_a_saved_model_goes_up_in_mlflows_sklearn_flavour(tracked, tmp_path):
    """`mnb.log_model` versions become MLflow Models (MLmodel + skops file) that
    `mlflow.sklearn.load_model` loads; a pickled version is named as skipped, never unpickled."""
    import mlflow.sklearn
    import numpy as np

    from mlops_nb.store.reader import StoreReader
    from mlops_nb.sync.mlflow import _Local

    tracked.run("import numpy as np\nimport mlops_nb as mnb\n"
                "from sklearn.tree import DecisionTreeClassifier\n"
                "X = np.arange(60.0).reshape(30, 2)\ny = (X[:, 0] > 20).astype(int)")
    tracked.run("clf = DecisionTreeClassifier(random_state=0).fit(X, y)\n"
                "mnb.log_model(clf, 'clf')\nmnb.log_model({'not': 'sklearn'}, 'blob')\n"
                "acc = clf.score(X, y)")
    tracked.flush()
    (run,) = [cr for cr in StoreReader(tracked.tracker.home).session_log(
        tracked.tracker.session) if cr.is_run]
    local = _Local.read(tracked.tracker.home, None)
    p = build_payload(run, local.context(run))
    files = {k[len("models/clf/"):]: v for k, v in p.artifacts.items()
             if k.startswith("models/clf/")}
    assert {"MLmodel", "model.skops", "requirements.txt"} <= set(files)
    assert b"serialization_format: skops" in files["MLmodel"]
    folder = tmp_path / "clf"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    back = mlflow.sklearn.load_model(str(folder))
    assert (back.predict(tracked.ns["X"]) == tracked.ns["clf"].predict(tracked.ns["X"])).all()
    tag = json.loads(p.tags["mlops_nb.model_version.clf"])
    assert tag["format"] == "skops" and tag["artifact_path"] == "models/clf"
    assert len(tag["sha256"]) == 64 and tag["version"]
    blob = json.loads(p.tags["mlops_nb.model_version.blob"])
    assert blob["artifact_path"] is None and not any(k.startswith("models/blob")
                                                     for k in p.artifacts)
    assert any("'blob'" in s and "not converted" in s for s in p.skipped)
    assert not np.isnan(p.metrics[0][1])
