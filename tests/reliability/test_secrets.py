"""Secrets stay out: plant credentials everywhere a notebook can hold them, run the whole chain
(record, runs table as table/JSON/CSV, show, HTML report, export, train.py --help), then grep
every file written and everything printed for each secret.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from mlops_nb.cli import main
from mlops_nb.redact import REDACTED
from mlops_nb.store.reader import StoreReader

# Each shape the redaction promises to catch, with a random-looking tail (not real keys).
SECRETS = {
    "openai": "sk-live-9fQ2xW7rT4yU1iO3pA5s",
    "db_password": "Tr0ub4dor-and-3",
    "bearer": "eyAbCdEf0123456789ghIjKl",
    "aws": "AKIAZ7Q3W5E1R9T2Y4U6",
    "github": "ghp_4a8B2c6D0e1F3g5H7i9J1k3L5m7N9o1P3q5R",
    "slack": "xoxb-2468013579-abcdefghijklmnop",
    "stripe_key": "Zq8Xw2Ec4Rv6Tb1Yn3Um5Ik7Ol9Pa0Sd",
    "password": "correct horse battery staple",
    "logged": "lp-Secret-Value-6655-abcdef",
    "widget": "w1dget-Pa55w0rd-value",
    "env": "env-only-Secret-889977-xyz",
}

CELLS = [
    "%load_ext mlops_nb",
    '%track on --experiment "secret plans"',
    # literals under credential names, in a URL, in a header, well-known prefixes, entropy
    f'api_key = "{SECRETS["openai"]}"\n'
    f'db_url = "postgresql://analyst:{SECRETS["db_password"]}@db.internal:5432/prod"\n'
    f'headers = {{"Authorization": "Bearer {SECRETS["bearer"]}"}}\n'
    f'aws_access_key_id = "{SECRETS["aws"]}"\n'
    f'gh = "{SECRETS["github"]}"  # a personal token\n'
    f'hook = "{SECRETS["slack"]}"\n'
    f'stripe_key = "{SECRETS["stripe_key"]}"\n'
    f'password = "{SECRETS["password"]}"\n'
    "depth = 3\n",
    f"%env SERVICE_TOKEN={SECRETS['env']}",
    "import mlops_nb\n"
    f'client = mlops_nb.log_param("client_secret", "{SECRETS["logged"]}")\n'
    'mlops_nb.log_param("depth_note", "three")',
    "import ipywidgets as w\nbox = w.Password()",
    None,  # the user types the password into the widget
    "auth_token = box.value",
    "import os\n"
    "ok = all([api_key, db_url, headers, aws_access_key_id, gh, hook, stripe_key, password,\n"
    "          os.environ['SERVICE_TOKEN'], client, auth_token])\n"
    "accuracy = 0.5 + 0.25 * ok + depth / 100",
]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _contents(path: Path) -> bytes:
    """The file's bytes, and their decompressed form when a blob store compresses them."""
    data = path.read_bytes()
    for decode in (zlib.decompress, gzip.decompress):
        with contextlib.suppress(Exception):
            data += decode(data)
    return data


def _leaks(blob: bytes | str) -> list[str]:
    data = blob.encode("utf-8", "surrogatepass") if isinstance(blob, str) else blob
    return [name for name, s in SECRETS.items() if s.encode() in data]


@pytest.fixture
def env_restored():
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


def test_planted_secrets_reach_no_file_and_no_output(shell, store_home, tmp_path, capsys,
                                                     env_restored):
    for cell in CELLS:
        if cell is None:
            shell.ns["box"].value = SECRETS["widget"]
        else:
            shell.run(cell)
    shell.flush()
    assert shell.ns["accuracy"] == 0.78  # the cell really had every secret

    capsys.readouterr()  # IPython's own echo of `%env` is the user's terminal, not ours
    run, out = _everywhere(store_home, tmp_path, capsys, list(SECRETS.values()))
    assert run["metrics.accuracy"] == 0.78
    assert run["params.depth"] == 3
    for key in ("params.api_key", "params.password", "params.client_secret",
                "params.auth_token", "params.stripe_key"):
        assert run[key] == "<redacted>", key
    assert run["params.db_url"] == "postgresql://analyst:<redacted>@db.internal:5432/prod"
    assert out is not None and len([*_files(store_home), *_files(out)]) > 6

    # train.py reads each credential from the environment, names them in --help, and
    # refuses to start without them.
    script = out / "train.py"
    source = script.read_text()
    assert "_mnb.secret('API_KEY')" in source and "_mnb.secret('SERVICE_TOKEN')" in source
    assert "auth_token = _mnb.secret('AUTH_TOKEN')" in source  # the widget's frozen value
    assert REDACTED not in source
    clean_env = {k: v for k, v in os.environ.items() if k != "SERVICE_TOKEN"}
    helped = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                            text=True, env=clean_env, timeout=120)
    assert helped.returncode == 0 and "API_KEY" in helped.stdout
    assert not _leaks(helped.stdout)
    refused = subprocess.run([sys.executable, str(script), "--output-dir", str(tmp_path)],
                             capture_output=True, text=True, env=clean_env, timeout=120)
    assert refused.returncode == 2 and "API_KEY" in refused.stderr
    assert not (tmp_path / "metrics.json").exists()

    needed = json.loads((out / "run.json").read_text())["secret_env"]
    assert {"API_KEY", "DB_URL", "AUTHORIZATION", "PASSWORD", "SERVICE_TOKEN"} <= set(needed)
    values = {
        "AUTH_TOKEN": SECRETS["widget"],
        "API_KEY": SECRETS["openai"],
        "DB_URL": f"postgresql://analyst:{SECRETS['db_password']}@db.internal:5432/prod",
        "AUTHORIZATION": f"Bearer {SECRETS['bearer']}",
        "SERVICE_TOKEN": SECRETS["env"],
    }
    env = {**clean_env, **{n: values.get(n, "set-by-ci") for n in needed}}
    ran = subprocess.run([sys.executable, str(script), "--output-dir", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == 0.78


def test_a_password_widget_value_is_redacted_whatever_its_name(shell, store_home, capsys):
    shell.run("%load_ext mlops_nb")
    shell.run("%track on")
    shell.run("import ipywidgets as w\nbox = w.Password()\nplain = w.Text()")
    shell.ns["box"].value = SECRETS["widget"]
    shell.ns["plain"].value = "just-a-label"
    shell.run("x = box.value\nlabel = plain.value\nscore = 0.5 if x else 0.0")
    shell.flush()
    capsys.readouterr()
    assert main(["--home", str(store_home), "runs", "--format", "json"]) == 0
    run = json.loads(capsys.readouterr().out)[-1]
    assert run["params.x"] == REDACTED and run["params.label"] == "just-a-label"
    assert not [p for p in _files(store_home) if _leaks(_contents(p))]


def test_allow_param_keeps_a_name_that_only_looks_secret(shell, store_home, capsys):
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --allow-param token_budget")
    shell.run('token_budget = "Xy7Qp2Lm9Rt4Vb6Nc8Za"\npassword = "p4ssw0rd-123"\nscore = 0.5')
    shell.flush()
    capsys.readouterr()
    assert main(["--home", str(store_home), "runs", "--format", "json"]) == 0
    run = json.loads(capsys.readouterr().out)[-1]
    assert run["params.token_budget"] == "Xy7Qp2Lm9Rt4Vb6Nc8Za"
    assert run["params.password"] == "<redacted>"
    assert main(["--home", str(store_home), "show", run["id"], "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [w for w in shown["warnings"] if "looked like credentials: password" in w], shown["warnings"]


def test_a_track_cells_allow_param_and_experiment_are_that_cells_only(shell, store_home,
                                                                       capsys):
    """`%%track` options are "this cell only" (`%track?`): a name allowed for one cell must
    not go unredacted in every later one, nor later cells be filed under its experiment."""
    shell.run("%load_ext mlops_nb")
    shell.run("%%track --name one --metric f1 --allow-param db_password -e other\n"
              "db_password = 'AllowOnce111'\nf1 = 0.5")
    shell.run("%%track --name two --metric f1\ndb_password = 'LaterPw222'\nf1 = 0.6")
    shell.run("%track on")
    shell.run("db_password = 'LaterPw333'\nscore = 0.7")
    shell.flush()
    capsys.readouterr()
    assert main(["--home", str(store_home), "runs", "--format", "json", "--experiment",
                 "other"]) == 0
    [one] = json.loads(capsys.readouterr().out)
    assert one["params.db_password"] == "AllowOnce111"
    store_text = b"".join(_contents(p) for p in _files(store_home))
    assert b"LaterPw222" not in store_text and b"LaterPw333" not in store_text
    runs = [cr for cr in StoreReader(store_home).session_log(shell.tracker.session)
            if cr.is_run]
    assert [(cr.name, cr.experiment) for cr in runs][1:] == [
        ("two", runs[-1].experiment), (None, runs[-1].experiment)]
    assert runs[-1].experiment != "other"


def test_a_helper_module_holding_a_key_is_stored_redacted(shell, store_home, capsys):
    """The notebook's own modules are kept for export; a key in one must not reach the store."""
    key = SECRETS["openai"]
    (store_home.parent / "settings_helper_mod.py").write_text(
        f'API_KEY = "{key}"\nDEPTH = 3\n', encoding="utf-8")
    shell.run("%load_ext mlops_nb")
    shell.run("%track on")
    try:
        shell.run("import sys\nsys.path.insert(0, '.')\nimport settings_helper_mod as cfg\n"
                  "score = cfg.DEPTH / 10")
        shell.flush()
    finally:
        sys.modules.pop("settings_helper_mod", None)
    capsys.readouterr()
    assert main(["--home", str(store_home), "runs", "--format", "json"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert run["metrics.score"] == 0.3
    assert not [p for p in _files(store_home) if _leaks(_contents(p))]
    from mlops_nb.store.reader import StoreReader

    log = StoreReader(store_home).session_log(shell.tracker.session)
    [module] = [m for cr in log for m in cr.modules if m["name"] == "settings_helper_mod"]
    assert module["redacted"] is True
    assert any("settings_helper_mod" in w and "redacted" in w for cr in log for w in cr.warnings)


def test_loop_runs_of_a_cell_holding_a_secret_keep_its_redacted_code(shell, store_home):
    """Iteration runs share their cell's code: the redacted copy, completed on the writer
    thread after the cell's own record, never the copy before redaction."""
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --experiment sweep")
    shell.run("import mlops_nb as mnb")
    shell.run(f'token = "{SECRETS["openai"]}"\n'
              "for lr in [0.1, 0.2]:\n"
              "    mnb.log_metric('acc', lr + len(token) / 100)")
    shell.flush()
    reader = StoreReader(store_home)
    log = reader.session_log(shell.tracker.session)
    parent = next(cr for cr in log if cr.metric_steps)
    runs = [cr for cr in log if cr.parent == parent.id]
    assert len(runs) == 2
    code = reader.blobs.get(parent.code).decode()
    assert "token = " in code and not _leaks(code)
    assert all(r.code == parent.code and r.python == parent.python for r in runs)
    assert not [p for p in _files(store_home) if _leaks(_contents(p))]


def _everywhere(store_home: Path, tmp_path: Path, capsys, secrets: list[str],
                export: bool = True) -> tuple[dict, Path | None]:
    """Run the whole chain on the last run (runs as table/JSON/CSV, show, the HTML report and,
    with `export`, the export) and assert none of `secrets` is in any file or output; the
    last run's row and the export folder."""
    capsys.readouterr()
    printed: list[str] = []

    def cli(*argv: str) -> int:
        code = main(["--home", str(store_home), *argv])
        out, err = capsys.readouterr()
        printed.append(out + err)
        return code

    for fmt in ("table", "json", "csv"):
        assert cli("runs", "--format", fmt) == 0
    assert cli("runs", "--format", "json") == 0
    run = json.loads(printed[-1])[-1]
    assert cli("show", run["id"]) == 0 and cli("show", run["id"], "--format", "json") == 0
    report = tmp_path / "report.html"
    assert cli("compare", "-o", str(report)) == 0
    out = tmp_path / "export" if export else None
    if out is not None:
        assert cli("export", run["id"], "-o", str(out)) == 0, printed[-1]
    written = [*_files(store_home), report, *(_files(out) if out else [])]
    found = {str(p): [s for s in secrets if s.encode() in _contents(p)] for p in written}
    assert not {p: s for p, s in found.items() if s}
    assert not [(text, s) for text in printed for s in secrets if s in text]
    return run, out


def _reproduces(out: Path, tmp_path: Path, env: dict[str, str], metric: str, value: float
                ) -> list[str]:
    """train.py, run with `env`, gets the recorded metric; the variables run.json asks for."""
    needed = json.loads((out / "run.json").read_text())["secret_env"]
    assert set(env) <= set(needed), (env, needed)
    ran = subprocess.run([sys.executable, str(out / "train.py"), "--output-dir", str(tmp_path)],
                         capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())[metric] == value
    return needed


def test_a_secret_in_a_magics_code_is_redacted_and_read_from_the_environment(
        tracked, store_home, tmp_path, capsys):
    """`%time password = "..."` and a `%%capture` cell: the code a magic runs is one string
    in the cell's Python form, and its literals were stored, exported and put in run.json."""
    tracked.run("%time password = 'MagicArgPw77'")
    # names a text shape does not know, so only reading the magic's text as code finds them
    tracked.run("%time credential = 'MagicCred555'")
    tracked.run("%%capture cap\nsession_cookie = 'CaptureTok00'\nprint('x')")
    tracked.run(f"%%writefile {tmp_path / 'cfg_unused.py'}\nDB_CREDS = 'WriteFilePw44'\n")
    tracked.run("accuracy = (len(password) + len(credential) + len(session_cookie)) / 100")
    tracked.flush()
    run, out = _everywhere(store_home, tmp_path, capsys,
                           ["MagicArgPw77", "MagicCred555", "CaptureTok00", "WriteFilePw44"])
    assert run["params.password"] == run["params.credential"] == REDACTED
    source = (out / "train.py").read_text()
    assert "password = _mnb.secret('PASSWORD')" in source
    assert "session_cookie = _mnb.secret('SESSION_COOKIE')" in source
    _reproduces(out, tmp_path, {"PASSWORD": "MagicArgPw77", "CREDENTIAL": "MagicCred555",
                                "SESSION_COOKIE": "CaptureTok00"}, "accuracy", 0.36)


def test_credentials_in_tuples_bytes_and_built_strings_stay_out_and_reproduce(
        tracked, store_home, tmp_path, capsys):
    """`auth = ("bob", "pw")`, `get(url, auth=(...))`, unpacking, bytes, `"A" + "B"`, a
    lambda's default, a loop over literals, and the same in a module the notebook imports:
    only a single string literal was redacted in code, so the rest reached the stored code,
    train.py (as options) and run.json."""
    (store_home.parent / "helper_creds_mod.py").write_text(
        "auth = ('svc', 'ModTuplePw789')\ndef f():\n    return 0.25\n", encoding="utf-8")
    secrets = ["TupleAuthPw9", "UnpackPw77x", "BytesKeyValue123", "ConcatPartA",
               "LambdaPw555", "ForLoopTok12", "ModTuplePw789"]
    tracked.run("import importlib, sys\nsys.path.insert(0, '.')\nimportlib.invalidate_caches()")
    tracked.run("auth = ('bob', 'TupleAuthPw9')\n"
                "def get(url, auth=None):\n    return len(auth[1])\n"
                "r = get('http://x', auth=('bob', 'TupleAuthPw9'))")
    tracked.run("user, password = 'bob', 'UnpackPw77x'\napi_key = b'BytesKeyValue123'\n"
                "db_password = 'ConcatPartA' + 'PartB'\n"
                "check = lambda secret='LambdaPw555': len(secret)")
    tracked.run("for token in ['ForLoopTok12']:\n    n = len(token)")
    try:
        tracked.run("import helper_creds_mod\n"
                    "accuracy = (r + len(auth[1]) + len(password) + len(api_key)"
                    " + len(db_password) + check() + n) / 1000 + helper_creds_mod.f()")
        tracked.flush()
    finally:
        sys.modules.pop("helper_creds_mod", None)
    run, out = _everywhere(store_home, tmp_path, capsys, secrets)
    accuracy = run["metrics.accuracy"]
    assert accuracy == pytest.approx(0.34)
    source = (out / "train.py").read_text()
    assert "auth = (_mnb.secret('AUTH_0'), _mnb.secret('AUTH_1'))" in source
    assert "api_key = _mnb.secret('API_KEY').encode()" in source
    env = {"AUTH_0": "bob", "AUTH_1": "TupleAuthPw9", "PASSWORD": "UnpackPw77x",
           "API_KEY": "BytesKeyValue123", "DB_PASSWORD": "ConcatPartAPartB", "TOKEN":
           "ForLoopTok12", "SECRET": "LambdaPw555"}
    needed = _reproduces(out, tmp_path, env, "accuracy", accuracy)
    assert set(needed) == set(env), needed


def test_a_secret_echoed_by_a_later_cell_is_scrubbed_there_too(tracked, store_home, tmp_path,
                                                               capsys):
    """A name judges only the cell that binds it: an error message, a logged parameter, a
    run name or a tag of a later cell that echoes the value kept it in clear."""
    key = "ZzKeyLongValue12345"
    tracked.run("import mlops_nb as mnb")
    tracked.run(f"api_key = '{key}'")
    tracked.run("raise ValueError('key rejected: ' + api_key)", check=False)
    tracked.run("mnb.log_param('endpoint', 'https://x.example/v1?k=' + api_key)\n"
                "mnb.log_params({'client': api_key})\n"
                "mnb.set_run_name('run-' + api_key[:12])\n"
                "mnb.set_tags({'used': 'key ' + api_key})\naccuracy = 0.5")
    tracked.flush()
    run, _ = _everywhere(store_home, tmp_path, capsys, [key, key[:12]], export=False)
    assert run["params.endpoint"] == f"https://x.example/v1?k={REDACTED}"
    assert run["params.client"] == REDACTED and run["name"] == f"run-{REDACTED}"
    assert run["tags.used"] == f"key {REDACTED}"
    log = StoreReader(store_home).session_log(tracked.tracker.session)
    assert [cr.error["message"] for cr in log if cr.error] == [f"key rejected: {REDACTED}"]


def test_a_secret_typed_out_again_in_a_later_cells_code_is_scrubbed(tracked, store_home,
                                                                      tmp_path, capsys):
    """A later cell's code that holds an earlier cell's secret as text (`note = 'uses
    <the password>'`, a magic's text) was stored as written, and synced to MLflow in the run's
    `lineage.py`. And a URL holding a password lost more than the password: the start of the
    URL was taken for the start of a random-looking key."""
    key = "ZzKeyLongValue12345"
    tracked.run(f"api_key = '{key}'\n"
                "db_url = 'postgresql://bob:DsnPw77x@db.example.com/prod'")
    tracked.run(f"note = 'uses {key}'\n%time again = '{key}'\n"
                "other = 'postgresql://bob:'\nf1 = 0.25")
    tracked.flush()
    reader = StoreReader(store_home)
    texts = [reader.blobs.get_text(cr.code) for cr in reader.session_log(
        tracked.tracker.session)]
    assert texts == [f"api_key = '{REDACTED}'\n"
                     f"db_url = 'postgresql://bob:{REDACTED}@db.example.com/prod'",
                     f"note = 'uses {REDACTED}'\n%time again = '{REDACTED}'\n"
                     "other = 'postgresql://bob:'\nf1 = 0.25"], texts
    _everywhere(store_home, tmp_path, capsys, [key, "DsnPw77x"], export=False)


def test_tags_are_judged_like_parameters(tracked, store_home, tmp_path, capsys):
    tracked.run("import mlops_nb as mnb")
    tracked.run("mnb.set_tags({'api_token': 'TagTokRun42', 'note': "
                "'postgresql://u:TagDsnPw9@h/db', 'team': 'churn'})\naccuracy = 0.5")
    tracked.flush()
    run, _ = _everywhere(store_home, tmp_path, capsys, ["TagTokRun42", "TagDsnPw9"],
                         export=False)
    assert run["tags.api_token"] == REDACTED and run["tags.team"] == "churn"
    assert run["tags.note"] == f"postgresql://u:{REDACTED}@h/db"


def test_a_data_profile_keeps_no_credential_values(tracked, store_home, tmp_path, capsys):
    """A frame with `password` and `api_key` columns: its stored profile (top categories,
    range) held the passwords, and `validate` printed them as examples."""
    (store_home.parent / "users.csv").write_text(
        "user,password,api_key,note,score\n"
        "a,CsvPwAAA1,CsvKeyQwErTy123456,ok,1\nb,CsvPwBBB2,CsvKeyQwErTy123456,ok,2\n"
        "c,CsvPwAAA1,CsvKeyQwErTy123456,sk-proj-CsvLeakAbCdEfGhIjKlMn,3\n")
    tracked.run("import pandas as pd\nusers = pd.read_csv('users.csv')")
    tracked.run("accuracy = users['score'].mean() / 10")
    tracked.flush()
    secrets = ["CsvPwAAA1", "CsvPwBBB2", "CsvKeyQwErTy123456", "CsvLeakAbCdEfGhIjKlMn"]
    run, _ = _everywhere(store_home, tmp_path, capsys, secrets, export=False)
    (store_home.parent / "new.csv").write_text(
        "user,password,api_key,note,score\nz,OtherPw,Zz,fine,1\n")
    main(["--home", str(store_home), "validate", run["id"], "--data",
          str(store_home.parent / "new.csv"), "--name", "users"])
    printed = capsys.readouterr()
    assert not [s for s in secrets if s in printed.out + printed.err]
    import pandas as pd

    from mlops_nb.validation.profile import profile

    prof = profile(pd.read_csv(store_home.parent / "users.csv"))["columns"]
    assert prof["password"]["redacted"] and "top" not in prof["password"]
    assert prof["password"]["cardinality"] == 2 and prof["user"]["top"]
