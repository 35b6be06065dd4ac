"""Which names and values are credentials; how code, params and text are redacted."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_nb import redact
from mlops_nb.redact import REDACTED


@pytest.mark.parametrize("name", [
    "password", "db_password", "PASSWD", "api_key", "apiKey", "OPENAI_API_KEY", "hf_token",
    "accessToken", "client_secret", "credentials", "auth", "basic_auth", "Authorization",
    "private_key", "aws_secret_access_key", "session_cookie", "apikey",
])
def test_credential_names(name):
    assert redact.is_secret_name(name)


@pytest.mark.parametrize("name", [
    "max_tokens", "tokenizer", "n_tokens", "author", "authors", "key", "sort_key", "depth",
    "learning_rate", "passes", "secretary", "monkey", "keyword",
    # names about credentials, not holding one: scikit-learn's vectorizers all have the first
    "token_pattern", "tfidf__token_pattern", "tokenPattern", "token_type_ids", "auth_type",
    "password_length", "max_token_len",
])
def test_ordinary_names(name):
    assert not redact.is_secret_name(name)


_SECRET_WORDS = sorted(redact._SECRET_TOKENS | redact._WEAK_TOKENS
                       | {a + b for a, b in redact._SECRET_PAIRS})
_OTHER_PARTS = ["my", "db", "x", "openai", "value", "2"]


def _written(parts: list[str], style: str) -> str:
    if style == "camel":
        return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    if style == "upper":
        return "_".join(parts).upper()
    return style.join(parts)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(_SECRET_WORDS), st.integers(0, 20), st.sampled_from(_OTHER_PARTS),
       st.sampled_from(_OTHER_PARTS), st.booleans(), st.booleans(),
       st.sampled_from(["_", "", "__", "camel", "upper"]))
def test_the_quick_text_test_never_hides_a_credential_name(word, cut, before, after,
                                                          prefix, suffix, style):
    """Whatever way a credential-like name is written (`pass_word`, `apiKey`, `MY_API_KEY`,
    `x_token`: a secret word split anywhere, with other words around it), the substring test
    that lets most cells skip the per-word check finds it, and a literal bound to it is
    redacted."""
    cut = min(cut, len(word))
    parts = [p for p in (before if prefix else "", word[:cut], word[cut:],
                         after if suffix else "") if p]
    name = _written(parts, style)
    if not name.isidentifier():
        return
    if redact.is_secret_name(name) or redact.is_weak_secret_name(name):
        code = f"{name} = 'Xy7Qp2Lm9Rt4Vb6Nc8Za'\n"
        assert redact._may_name_secrets(code), name
        assert redact._may_bind_secrets(code), name
        new, _ = redact.redact_python(code)
        assert "Xy7Qp2Lm9Rt4Vb6Nc8Za" not in new, name


def test_the_quick_text_test_passes_over_plain_cells_only():
    assert not redact._may_name_secrets("learning_rate = 0.1\nacc = model.score(X, y)\n")
    for text in ("pass_word = 1", "PassWord = 1", "conn_str = 1", "x = MY_API_KEY", "dsn = 1"):
        assert redact._may_name_secrets(text), text


@pytest.mark.parametrize("text", [
    "sk-live-4f8a9b2c1d3e5f6a7b8c", "sk-proj-abcdefghijklmnopqrstuv",
    "sk_live_51HabcdefghijKLMN", "ghp_4a8B2c6D0e1F3g5H7i9J1k3L5m7N9o1P3q5R",
    "xoxb-2468013579-abcdefghijklmnop", "AKIAZ7Q3W5E1R9T2Y4U6",
    "hf_abcdefghijklmnopqrstuvwxyzABCDEF", "glpat-abcdefghij0123456789",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
])
def test_key_shapes_are_redacted_whole(text):
    assert redact.scrub_text(f"key: {text} end") == f"key: {REDACTED} end"


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://user:S3cret@db.example.com:5432/prod",
     f"postgresql://user:{REDACTED}@db.example.com:5432/prod"),
    ("Authorization: Bearer abcdefghijklmnop123", f"Authorization: Bearer {REDACTED}"),
    ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {REDACTED}"),
    ("curl -H 'Bearer 9f8e7d6c5b4a3f2e1d'", f"curl -H 'Bearer {REDACTED}'"),
    ("Server=db;User Id=me;Password=hunter2;", f"Server=db;User Id=me;Password={REDACTED};"),
    ("https://api.example.com/v1?api_key=abc123xyz&q=1",
     f"https://api.example.com/v1?api_key={REDACTED}&q=1"),
])
def test_secret_parts_of_text_are_redacted_in_place(text, expected):
    assert redact.scrub_text(text) == expected


@pytest.mark.parametrize("text", [
    "https://example.com/data.csv", "postgresql://db.example.com/prod", "sk-learn",
    "a-perfectly-ordinary-sentence with words", "ghp_short", "AKIA12", "data/train.csv",
    "token count 12", "use the token embeddings", "the bearer instrument",
    "Authorization is needed",
])
def test_ordinary_text_is_left_alone(text):
    assert redact.scrub_text(text) == text


def test_entropy_only_counts_under_key_like_names():
    random_text = "Zq8Xw2Ec4Rv6Tb1Yn3Um5Ik7Ol9Pa0Sd"
    assert redact.looks_random(random_text)
    assert not redact.looks_random("aaaaaaaaaaaaaaaaaaaaaaaa")
    assert not redact.looks_random("a sentence with spaces in it")
    assert redact.is_secret_value("stripe_key", random_text)
    assert not redact.is_secret_value("stripe_key", "pk-readable")
    assert not redact.is_secret_value("run_id", random_text)


def test_redact_params_by_name_shape_and_nesting_and_allow_list():
    params = {
        "api_key": "anything", "max_tokens": 512, "tokenizer": "bert-base",
        "db": "postgresql://u:pw1234@h/db", "headers": {"Authorization": "Bearer xyzxyzxyzxyz"},
        "model.api_key": "abc", "password": None, "token_budget": "keep-me",
    }
    out = redact.redact_params(params, allowed=["token_budget"])
    assert out == {
        "api_key": REDACTED, "max_tokens": 512, "tokenizer": "bert-base",
        "db": f"postgresql://u:{REDACTED}@h/db", "headers": {"Authorization": REDACTED},
        "model.api_key": REDACTED, "password": None, "token_budget": "keep-me",
    }
    assert params["api_key"] == "anything"  # a copy


CODE = '''import os
api_key = "sk-live-4f8a9b2c1d3e5f6a7b8c"
password = "pw"  # short, still a secret by its name
headers = {"Authorization": "Bearer abcdefghijklmnop123"}
client = connect(host="db", passwd="hunter22")
os.environ["HF_TOKEN"] = "hf_value_from_code"
mlops_nb.log_param("client_secret", "logged-secret-value")
def login(user, token="default-token-value"):
    return user
token = get_token()
auth_token = box.value
max_tokens = 512
note = f"uses {api_key}"  # the literal moved, the name stays
get_ipython().run_line_magic('env', 'SERVICE_TOKEN=from-env-magic')
'''


def test_redact_python_replaces_secret_literals_and_keeps_code_valid():
    new, secrets = redact.redact_python(CODE)
    ast.parse(new)
    for secret in ("sk-live-4f8a9b2c1d3e5f6a7b8c", "abcdefghijklmnop123", "hunter22",
                   "hf_value_from_code", "logged-secret-value", "default-token-value",
                   "from-env-magic", '"pw"'):
        assert secret not in new, secret
    assert {"pw", "hunter22", "logged-secret-value", "from-env-magic"} <= secrets
    # code around the secrets is untouched
    for kept in ("token = get_token()", "auth_token = box.value", "max_tokens = 512",
                 'note = f"uses {api_key}"', "'SERVICE_TOKEN=<redacted>'"):
        assert kept in new, kept


def test_allowed_names_keep_their_literals():
    new, secrets = redact.redact_python('token_budget = "Xy7Qp2Lm9Rt4Vb6Nc8Za"\n',
                                        allowed=["token_budget"])
    assert "Xy7Qp2Lm9Rt4Vb6Nc8Za" in new and not secrets


def test_unparsable_code_gets_the_shape_pass_only():
    new, secrets = redact.redact_python("x = (\nkey = 'sk-live-4f8a9b2c1d3e5f6a7b8c'")
    assert "sk-live" not in new and secrets == set()


def test_redact_raw_handles_magics_and_the_secrets_found_in_python():
    raw = ('%env SERVICE_TOKEN=from-env-magic\n'
           '%set_env OTHER abc-def-ghi\n'
           'api_key = "sk-live-4f8a9b2c1d3e5f6a7b8c"\n'
           "!curl -H 'Authorization: Bearer abcdefghijklmnop123' https://x\n"
           'pw = "hunter22"  # hunter22 again in a comment\n')
    out = redact.redact_raw(raw, {"hunter22", "from-env-magic"})
    for secret in ("from-env-magic", "abc-def-ghi", "sk-live", "abcdefghijklmnop123",
                   "hunter22"):
        assert secret not in out, secret
    assert out.startswith("%env SERVICE_TOKEN=<redacted>\n%set_env OTHER <redacted>\n")


def test_an_env_line_setting_a_path_number_or_flag_is_kept():
    """`%env DATA_ROOT=../data` is a setting: withheld, the export asked for it as a
    credential (`set the environment variable(s) DATA_ROOT`). A path, number or flag under a
    name that is not a credential's is kept; any other value is withheld whatever its name."""
    kept = ["DATA_ROOT=../data", "OMP_NUM_THREADS=1", "CUDA_VISIBLE_DEVICES=0,1",
            "MODEL_DIR /mnt/models/v2", "DEBUG=true", r"RAW=C:\data\raw.csv", "OUT=out/"]
    withheld = ["COMET=Zx81kQ9mPq2LrT5v", "LABEL=hunter2", "API_KEY=../data",
                "TOKEN_FILE=/home/me/.token", "SECRET=1", "DSN=postgresql://u:pw@h/db",
                "NOTE=a b/c"]
    for arg in kept + withheld:
        python = f"get_ipython().run_line_magic('env', {arg!r})\n"
        new, secrets = redact.redact_python(python)
        raw = redact.redact_raw(f"%env {arg}\n", secrets)
        if arg in kept:
            assert (new, secrets, raw) == (python, set(), f"%env {arg}\n"), arg
        else:
            value = arg.split("=", 1)[-1] if "=" in arg else arg.split(" ", 1)[-1]
            assert value not in new and value not in raw and secrets, arg


def test_secret_env_names():
    assert redact.secret_env_name("api_key") == "API_KEY"
    assert redact.secret_env_name("apiKey") == "API_KEY"
    assert redact.secret_env_name("Authorization") == "AUTHORIZATION"
    assert redact.secret_env_name(None) == "MLOPS_NB_SECRET"
    assert redact.secret_env_name("2fa") == "SECRET_2FA"


def test_scrub_obj_reaches_keys_and_nested_values():
    value = {"files": ["s3://AKIAZ7Q3W5E1R9T2Y4U6:x@bucket/k"], "postgresql://u:pw99@h/db": 1,
             "msg": ("KeyError: 'known-secret-123'",)}
    out = redact.scrub_obj(value, {"known-secret-123"})
    text = repr(out)
    assert "AKIA" not in text and "pw99" not in text and "known-secret-123" not in text


def test_redact_cell_run_rewrites_blobs_params_estimators_and_messages():
    from mlops_nb.capture.redaction import redact_cell_run
    from mlops_nb.records import CellRun
    from mlops_nb.store.blobs import blob_hash

    raw = '%env HF_TOKEN=hf-env-secret-value\napi_key = "plain-secret-123"\nx = 1\n'
    python = ("get_ipython().run_line_magic('env', 'HF_TOKEN=hf-env-secret-value')\n"
              'api_key = "plain-secret-123"\nx = 1\n')
    blobs = {blob_hash(raw.encode()): raw.encode(), blob_hash(python.encode()): python.encode()}
    cr = CellRun(id="a" * 32, session="s", experiment="e", seq=0, started_at=0.0,
                 code=blob_hash(raw.encode()), python=blob_hash(python.encode()),
                 params={"api_key": "plain-secret-123", "x": 1},
                 estimators={"llm": {"class": "m.C", "params": {"api_key": "k-123456",
                                                                 "temperature": 0.1}}},
                 error={"type": "KeyError", "message": "'plain-secret-123'"})
    redact_cell_run(cr, blobs)
    stored = b"".join(blobs.values()) + repr(cr.to_dict()).encode()
    for secret in (b"hf-env-secret-value", b"plain-secret-123", b"k-123456"):
        assert secret not in stored
    assert set(blobs) == {cr.code, cr.python}  # old blobs gone, new ones referenced
    assert blobs[cr.code].decode().startswith("%env HF_TOKEN=<redacted>\n")
    assert cr.params == {"api_key": REDACTED, "x": 1}
    assert cr.estimators["llm"]["params"] == {"api_key": REDACTED, "temperature": 0.1}
    assert any("looked like credentials: api_key" in w for w in cr.warnings)


def test_a_nan_parameter_is_not_reported_as_redacted():
    """`GridSearchCV(error_score=nan)`: nan is unequal to itself, and was reported as a
    parameter that looked like a credential on every search."""
    from mlops_nb.capture.redaction import redact_cell_run
    from mlops_nb.records import CellRun

    cr = CellRun(id="b" * 32, session="s", experiment="e", seq=0, started_at=0.0,
                 params={"grid.error_score": float("nan"), "grid.cv": 3,
                         "grid.scores": [float("nan"), 0.5], "token": "abc-123"})
    redact_cell_run(cr, {})
    assert cr.params["grid.cv"] == 3 and cr.params["token"] == REDACTED
    assert [w for w in cr.warnings if "looked like credentials" in w] == [
        "redacted parameter(s) that looked like credentials: token (`%track on --allow-param "
        "NAME` keeps a name that is not a secret)"]


@pytest.mark.parametrize(("text", "expected"), [
    # quoted values: JSON, .env files, YAML, shell `export` lines
    ('{"password": "JsonLoadsPw1", "user": "bob"}',
     f'{{"password": "{REDACTED}", "user": "bob"}}'),
    ('DB_PASSWORD="DotEnvPw2"\nDEBUG=1', f'DB_PASSWORD="{REDACTED}"\nDEBUG=1'),
    ("password = 'correct horse'", f"password = '{REDACTED}'"),
    ('export DB_PASSWORD="ShellQuotedPw1" && true', f'export DB_PASSWORD="{REDACTED}" && true'),
    ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY && true",
     f"export AWS_SECRET_ACCESS_KEY={REDACTED} && true"),
    ("GITHUB_TOKEN=ExportTok22", f"GITHUB_TOKEN={REDACTED}"),
    ("private_key: 'abc-def-123'", f"private_key: '{REDACTED}'"),
])
def test_quoted_and_prefixed_name_value_pairs_in_text(text, expected):
    assert redact.scrub_text(text) == expected


@pytest.mark.parametrize("text", [
    'max_tokens: 12', 'token_pattern="[a-z]+"', '{"tokens": "a b c"}', 'n_tokens=3',
])
def test_pairs_about_credentials_are_left_alone(text):
    assert redact.scrub_text(text) == text


def test_a_shell_cell_magic_body_is_redacted_in_the_raw_cell_too():
    """IPython hands a cell magic its body with a trailing newline the raw cell lacks: the
    raw text kept the secret its Python form had lost."""
    raw = "%%bash\nexport TOKEN=BashTok55\necho ok >/dev/null"
    python = ("get_ipython().run_cell_magic('bash', '', "
              "'export TOKEN=BashTok55\\necho ok >/dev/null\\n')\n")
    new, secrets = redact.redact_python(python)
    assert "BashTok55" not in new
    out = redact.redact_raw(raw, secrets)
    assert "BashTok55" not in out and out.startswith("%%bash\nexport TOKEN=<redacted>\n")


@pytest.mark.parametrize(("code", "expected"), [
    ("auth = ('bob', 'TupleAuthPw9')", f"auth = ('{REDACTED}', '{REDACTED}')"),
    ("r = get(url, auth=('bob', 'TupleAuthPw9'))",
     f"r = get(url, auth=('{REDACTED}', '{REDACTED}'))"),
    ("creds = ['bob', 'ListCredPw55']", f"creds = ['{REDACTED}', '{REDACTED}']"),
    ("user, password = 'bob', 'UnpackPw77x'", f"user, password = 'bob', '{REDACTED}'"),
    ("api_key = b'BytesKeyValue123'", f"api_key = b'{REDACTED}'"),
    ("password2 = f'FstrPassw0rd'", f"password2 = '{REDACTED}'"),
    ("db_password = 'ConcatPartA' + 'PartB'", f"db_password = '{REDACTED}'"),
    ("f = lambda password='LambdaPw555': 1", f"f = lambda password='{REDACTED}': 1"),
    ("for token in ['ForLoopTok12']:\n    pass", f"for token in ['{REDACTED}']:\n    pass"),
    ("token = 'A1b2C3d4e5' if prod else 'dev-token-x'",
     f"token = '{REDACTED}' if prod else '{REDACTED}'"),
])
def test_credentials_bound_as_more_than_one_string_literal(code, expected):
    new, secrets = redact.redact_python(code + "\n")
    assert new == expected + "\n"
    assert secrets


@pytest.mark.parametrize("code", [
    "tokens = ['the', 'cat', 'sat']",  # `tokens` is data, not a credential
    "tokens = tokenizer(text)",
    "headers = {'Authorization': 'Bearer ' + token}",  # the literal part is not the secret
    "password = f'{user}:{pw}'",
    "max_tokens, author = 512, 'Jane Doe'",
    "for token_pattern in [r'\\w+', r'\\S+']:\n    pass",
])
def test_values_around_credentials_are_kept(code):
    assert redact.redact_python(code + "\n")[0] == code + "\n"


def test_a_numbered_credential_name_is_one():
    assert redact.is_secret_name("password2") and redact.is_secret_name("token1")
    assert not redact.is_secret_name("sha256") and not redact.is_secret_name("fold2")


def test_the_start_of_a_random_looking_known_secret_is_redacted_too():
    key = "ZzKeyLongValue12345"
    assert redact.replace_known(f"run-{key[:12]} done", {key}) == f"run-{REDACTED} done"
    assert redact.replace_known(f"a {key} b {key[:9]}", {key}) == f"a {REDACTED} b {REDACTED}"
    # too short to tell, or the start of a URL or words: ordinary text
    assert redact.replace_known(f"run-{key[:7]}", {key}) == f"run-{key[:7]}"
    url = "postgresql://analyst:pw@db/prod"
    assert redact.replace_known("postgresql://other@db", {url}) == "postgresql://other@db"
