"""The REST API of the server extension, through a real Jupyter server (pytest-jupyter).

Runs in its own pytest process with `-p pytest_jupyter.jupyter_server` (scripts/test.sh):
that plugin's autouse event-loop fixtures would otherwise reach every other test.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from .conftest import HOSTILE, record_project

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("server_plugin")]


@pytest.fixture
def root(jp_root_dir: Path) -> Path:
    record_project(jp_root_dir)
    return jp_root_dir


async def get(jp_fetch, endpoint: str, **params):
    resp = await jp_fetch("mlops-nb", "api", *endpoint.split("/"), params=params)
    data = json.loads(resp.body)
    if endpoint == "runs":  # the view's column-wise payload, read back as rows
        from mlops_nb.comparison.payload import payload_rows

        data["rows"] = payload_rows(data)
    return data


async def post(jp_fetch, endpoint: str, body: dict):
    resp = await jp_fetch("mlops-nb", "api", *endpoint.split("/"), method="POST",
                          body=json.dumps(body))
    return resp.code, json.loads(resp.body)


async def status_of(coro) -> int:
    try:
        resp = await coro
    except HTTPClientError as exc:
        return exc.code
    return resp.code


RID = "0123abcd"
ROUTES = [
    ("GET", "experiments"), ("GET", "runs"), ("GET", "diff"), ("GET", f"runs/{RID}"),
    ("GET", f"runs/{RID}/lineage"), ("POST", f"runs/{RID}/export"),
    ("POST", f"runs/{RID}/reproduce"), ("GET", "jobs"), ("GET", "jobs/" + "0" * 32),
    ("GET", "changes"), ("GET", "cells"), ("GET", "report"),
]


async def test_lists_experiments_and_the_notebooks_one(jp_fetch, root):
    data = await get(jp_fetch, "experiments", path="nb.ipynb")
    assert [e["name"] for e in data["experiments"]] == ["nb"]
    assert data["experiments"][0]["runs"] == 2
    assert data["experiments"][0]["notebooks"] == ["nb.ipynb"]
    assert data["notebook_experiment"] == "nb"
    assert data["store"] == ".mlops_nb"


async def test_runs_page_sorted_filtered_and_paged(jp_fetch, root):
    data = await get(jp_fetch, "runs", experiment="nb", sort="params.alpha", ascending="false")
    assert data["total"] == 2 and data["metric"] == "metrics.r2" and data["goal"] == "max"
    assert [r["params"]["alpha"] for r in data["rows"]] == [2.0, 0.5]
    # the best run is the least regularised fit
    best = [r for r in data["rows"] if r["id"] in data["best"]]
    assert [r["params"]["alpha"] for r in best] == [0.5]
    assert {"key": "metrics.r2", "label": "r2", "kind": "metric", "goal": "max"} in \
        data["columns"]
    page = await get(jp_fetch, "runs", experiment="nb", sort="params.alpha", ascending="true",
                     limit="1", offset="1")
    assert [r["params"]["alpha"] for r in page["rows"]] == [2.0] and page["total"] == 2
    flt = await get(jp_fetch, "runs", experiment="nb", filter="alpha<1")
    assert [r["params"]["alpha"] for r in flt["rows"]] == [0.5]
    with pytest.raises(HTTPClientError) as err:
        await get(jp_fetch, "runs", experiment="nb", sort="no_such_column")
    assert err.value.code == 400
    assert "no such column" in json.loads(err.value.response.body)["message"]


async def test_runs_payload_is_the_views_and_diff_answers_like_the_widget(jp_fetch, root):
    """The panel hands this payload to runs_view.js untouched: the widget's shape."""
    from mlops_nb.comparison.model import Comparison
    from mlops_nb.comparison.payload import build_payload
    from mlops_nb.server import service

    data = await get(jp_fetch, "runs", experiment="nb")
    assert data["version"] == 1 and data["n"] == 2 and not data["truncated"]
    assert set(data["data"]) == {c["key"] for c in data["columns"]}
    assert all(len(v) == 2 for v in data["data"].values())
    assert data["data"]["notebook"] == ["nb.ipynb", "nb.ipynb"]  # API paths, not server ones
    df, verdicts = service.load_frame(root / ".mlops_nb", "nb")
    want = build_payload(Comparison(df, verdicts=verdicts), experiment="nb")
    assert data["columns"] == want["columns"] and data["best"] == want["best"]
    assert data["data"]["id"] == want["data"]["id"]
    a, b = data["data"]["id"]
    diff = await get(jp_fetch, "diff", path="nb.ipynb", a=a[:10], b=b)
    assert diff["type"] == "diff" and diff["ids"] == [a, b]
    assert "alpha = 2.0" in diff["code"] and "alpha" in [p[0] for p in diff["params"]]
    with pytest.raises(HTTPClientError) as err:
        await get(jp_fetch, "diff", path="nb.ipynb", a=a)
    assert err.value.code == 400
    assert "two run ids" in json.loads(err.value.response.body)["message"]


async def test_run_details_and_lineage_name_the_notebook_cells(jp_fetch, root):
    data = await get(jp_fetch, "runs", experiment="nb")
    rid = data["rows"][0]["id"]
    run = await get(jp_fetch, f"runs/{rid[:10]}", path="nb.ipynb")
    assert run["id"] == rid and "r2" in run["metrics"] and run["notebook"] == "nb.ipynb"
    assert "python" in run["environment"]
    assert run["data_fingerprints"]  # X and y
    lin = await get(jp_fetch, f"runs/{rid}/lineage", path="nb.ipynb")
    cells = [c["cell_id"] for c in lin["cells"]]
    assert cells[-1] == "c-fit" and lin["cells"][-1]["is_run"]
    assert {"c-imports", "c-data", "c-alpha"} <= set(cells)
    assert "Ridge(alpha=alpha)" in lin["cells"][-1]["code"]
    with pytest.raises(HTTPClientError) as err:
        await get(jp_fetch, "runs/ffffffffffff")
    assert err.value.code == 404


async def test_cells_endpoint_gives_each_cells_last_run(jp_fetch, root):
    data = await get(jp_fetch, "cells", path="nb.ipynb")
    assert data["cells"]["c-fit"]["is_run"] and "r2" in data["cells"]["c-fit"]["metrics"]
    assert data["cells"]["c-alpha"]["is_run"] is False


async def test_export_writes_inside_root_and_refuses_escapes(jp_fetch, root, tmp_path):
    rid = (await get(jp_fetch, "runs", experiment="nb"))["rows"][0]["id"]
    code, out = await post(jp_fetch, f"runs/{rid}/export", {"path": "nb.ipynb"})
    assert code == 201 and out["train_py"] == f"exports/{rid[:12]}/train.py"
    assert (root / out["train_py"]).is_file()
    # again without force: 409, the files are untouched
    assert await status_of(jp_fetch("mlops-nb", "api", "runs", rid, "export", method="POST",
                                    body=json.dumps({"path": "nb.ipynb"}))) == 409
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    for body in ({"path": "nb.ipynb", "output": "../outside"},
                 {"path": "nb.ipynb", "output": "link/x"},
                 {"path": "../nb.ipynb"},
                 {"path": "link/nb.ipynb"}):
        got = await status_of(jp_fetch("mlops-nb", "api", "runs", rid, "export",
                                       method="POST", body=json.dumps(body)))
        assert 400 <= got < 500, body
    assert not any(outside.iterdir())
    # API paths are relative to the root, as in Jupyter's contents API: "/x" is root/x
    code, out = await post(jp_fetch, f"runs/{rid}/export", {"output": "/etc"})
    assert code == 201 and (root / "etc" / "train.py").is_file()
    for params in ({"path": "../"}, {"path": "link"}):
        got = await status_of(jp_fetch("mlops-nb", "api", "experiments", params=params))
        assert got == 403, params


async def test_reproduce_job_gives_a_verdict_and_one_job_per_run(jp_fetch, root):
    rid = (await get(jp_fetch, "runs", experiment="nb"))["rows"][0]["id"]
    code, job = await post(jp_fetch, f"runs/{rid}/reproduce", {"path": "nb.ipynb"})
    assert code == 202 and job["state"] in ("queued", "running")
    _, again = await post(jp_fetch, f"runs/{rid}/reproduce", {"path": "nb.ipynb"})
    assert again["id"] == job["id"]  # the running job, not a second one
    for _ in range(240):
        job = await get(jp_fetch, f"jobs/{job['id']}")
        if job["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.5)
    assert job["state"] == "done", job
    assert job["result"]["ok"] and job["result"]["level"] == "L2"
    listed = await get(jp_fetch, "jobs")
    assert job["id"] in [j["id"] for j in listed["jobs"]]  # what a reloaded page finds
    rows = (await get(jp_fetch, "runs", experiment="nb"))["rows"]
    assert [r["verdict"] for r in rows if r["id"] == rid] == ["L2 ✓"]


async def test_noise_job_measures_the_spread_and_refuses_bad_seeds(jp_fetch, root):
    rows = (await get(jp_fetch, "runs", experiment="nb", metric="r2"))["rows"]
    rid = rows[0]["id"]
    for bad in (1, 51, "5", True):
        assert await status_of(jp_fetch("mlops-nb", "api", "runs", rid, "reproduce",
                                         method="POST", body=json.dumps({"seeds": bad}))) == 400
    code, job = await post(jp_fetch, f"runs/{rid}/reproduce", {"path": "nb.ipynb", "seeds": 2})
    assert code == 202 and job["kind"] == "noise"
    for _ in range(480):
        job = await get(jp_fetch, f"jobs/{job['id']}")
        if job["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.5)
    assert job["state"] == "done", job
    r2 = job["result"]["metrics"]["r2"]
    assert job["result"]["seeds"] == 2 and len(r2["values"]) == 2
    assert r2["spread"] == 0.0  # Ridge on seeded data: no noise to measure
    assert "noise of run" in job["result"]["summary"]


async def test_change_feed_answers_when_a_run_lands(jp_fetch, root):
    first = await get(jp_fetch, "changes", path="nb.ipynb", timeout="0")
    quiet = await get(jp_fetch, "changes", path="nb.ipynb", since=first["token"],
                      timeout="0.6")
    assert quiet["changed"] is False and quiet["token"] == first["token"]
    waiting = asyncio.ensure_future(get(jp_fetch, "changes", path="nb.ipynb",
                                        since=first["token"], timeout="20"))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await asyncio.to_thread(record_project, root, "nb.ipynb", (7.0,))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    got = await asyncio.wait_for(waiting, 10)
    assert got["changed"] is True and got["token"] != first["token"]
    assert loop.time() - t0 < 2.0
    assert (await get(jp_fetch, "runs", experiment="nb"))["total"] == 3


async def test_report_comes_as_json_wrapped_html(jp_fetch, root):
    resp = await jp_fetch("mlops-nb", "api", "report", params={"experiment": "nb"},
                          request_timeout=180)
    assert resp.headers["Content-Type"].startswith("application/json")
    html = json.loads(resp.body)["html"]
    assert html.startswith("<!DOCTYPE html>") and "<table" in html


async def test_hostile_names_come_back_as_data(jp_fetch, jp_root_dir):
    record_project(jp_root_dir, "evil.ipynb", (1.0,), name=HOSTILE)
    data = await get(jp_fetch, "runs", experiment="evil")
    row = data["rows"][0]
    assert data["constant"]["who"] == HOSTILE or row["params"].get("who") == HOSTILE
    resp = await jp_fetch("mlops-nb", "api", "runs", row["id"])
    assert resp.headers["Content-Type"].startswith("application/json")
    assert json.loads(resp.body)["params"]["who"] == HOSTILE


async def test_nan_metric_is_null_not_invalid_json(jp_fetch, jp_root_dir):
    from IPython.core.interactiveshell import InteractiveShell

    os.chdir(jp_root_dir)
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance()
    try:
        ip.run_cell("%load_ext mlops_nb")
        ip.run_cell("%track on")
        ip.run_cell("import mlops_nb as mnb\nmnb.log_metric('loss', float('nan'))\n"
                    "mnb.log_metric('acc', 0.5)")
        assert ip._mlops_nb_tracker.flush(30)
        ip._mlops_nb_tracker.close()
    finally:
        InteractiveShell.clear_instance()
    resp = await jp_fetch("mlops-nb", "api", "runs")
    assert b"NaN" not in resp.body
    from mlops_nb.comparison.payload import payload_rows

    rows = payload_rows(json.loads(resp.body))
    assert any(r["metrics"].get("acc") == 0.5 for r in rows)


@pytest.mark.parametrize(("method", "endpoint"), ROUTES)
async def test_every_route_refuses_requests_without_credentials(jp_fetch, root, method,
                                                                endpoint):
    kwargs = {"method": method, "headers": {"Authorization": ""}}
    if method == "POST":
        kwargs["body"] = "{}"
    assert await status_of(jp_fetch("mlops-nb", "api", *endpoint.split("/"), **kwargs)) == 403


async def test_cookie_session_post_needs_xsrf(jp_fetch, jp_serverapp, root, jp_base_url):
    token = jp_serverapp.identity_provider.token
    login = await jp_fetch("api", "status", headers={"Authorization": ""},
                           params={"token": token})
    cookies = [c.split(";")[0] for c in login.headers.get_list("Set-Cookie")]
    login_cookie = [c for c in cookies if not c.startswith("_xsrf")]
    assert login_cookie, cookies
    rid = (await get(jp_fetch, "runs", experiment="nb"))["rows"][0]["id"]
    headers = {"Authorization": "", "Cookie": "; ".join(login_cookie)}
    # the cookie alone authenticates a GET ...
    ok = await jp_fetch("mlops-nb", "api", "runs", headers=headers)
    assert ok.code == 200
    # ... but a POST without the XSRF token is refused
    body = json.dumps({"path": "nb.ipynb"})
    assert await status_of(jp_fetch("mlops-nb", "api", "runs", rid, "export", method="POST",
                                    body=body, headers=dict(headers))) == 403
    assert not (root / "exports").exists()
    # with it (what ServerConnection.makeRequest sends), the same POST goes through
    xsrf = "2|abcdef12|0123456789abcdef0123456789abcdef|1700000000"
    with_xsrf = {**headers, "Cookie": headers["Cookie"] + f"; _xsrf={xsrf}",
                 "X-XSRFToken": xsrf}
    try:
        resp = await jp_fetch("mlops-nb", "api", "runs", rid, "export", method="POST",
                              body=body, headers=with_xsrf)
    except HTTPClientError as exc:
        raise AssertionError(exc.response.body) from exc
    assert resp.code == 201


@pytest.fixture
def strict_config(jp_server_config: dict) -> dict:
    return jp_server_config


class TestNoUnauthenticatedAccess:
    @pytest.fixture
    def jp_server_config(self) -> dict:
        return {"ServerApp": {"jpserver_extensions": {"mlops_nb.server": True},
                              "allow_unauthenticated_access": False}}

    async def test_server_starts_and_still_serves_and_refuses(self, jp_fetch, root):
        assert (await jp_fetch("mlops-nb", "api", "experiments")).code == 200
        for method, endpoint in ROUTES:
            kwargs = {"method": method, "headers": {"Authorization": ""}}
            if method == "POST":
                kwargs["body"] = "{}"
            got = await status_of(jp_fetch("mlops-nb", "api", *endpoint.split("/"), **kwargs))
            assert got == 403, endpoint
