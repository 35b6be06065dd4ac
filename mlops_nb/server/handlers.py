"""Tornado handlers: thin wrappers that parse the request, call `service`, write JSON.

Every handler is an authenticated `APIHandler` (403 without credentials, XSRF checked on
POST by Jupyter's base handler). Blocking store reads run in a thread so a slow disk never
stalls the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..errors import (
    AmbiguousRunId,
    ExportExists,
    ExportRefused,
    MlopsNbError,
    RunNotFound,
    StoreNotFound,
    UnsafeExport,
)
from . import service
from .jobs import JobManager, TooManyJobs
from .paths import OutsideRoot

API = "mlops-nb/api"
RUN_ID = r"(?P<run_id>[0-9a-fA-F]{1,64})"
POLL_INTERVAL_S = 0.1  # folder stats while a panel waits for a change
FULL_SCAN_S = 1.0  # the full token at least this often (coarse folder times)
SETTLE_S = 0.03  # a change is answered once the store stayed still this long
LONG_POLL_MAX_S = 30.0

_STATUS = [  # most specific first
    (OutsideRoot, 403), (UnsafeExport, 403), (RunNotFound, 404), (StoreNotFound, 404),
    (AmbiguousRunId, 400), (ExportExists, 409), (ExportRefused, 422), (MlopsNbError, 400),
]


class BaseHandler(APIHandler):
    @property
    def root(self) -> str:
        return self.settings["mlops_nb_root"]

    @property
    def jobs(self) -> JobManager:
        return self.settings["mlops_nb_jobs"]

    def arg(self, name: str, default: str | None = None) -> str | None:
        value = self.get_query_argument(name, default)
        return value if value != "" else default

    def int_arg(self, name: str, default: int) -> int:
        raw = self.arg(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise web.HTTPError(400, f"{name} must be an integer") from None

    def body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except ValueError:
            raise web.HTTPError(400, "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "the request body must be a JSON object")
        return data

    def send(self, data: Any, status: int = 200) -> None:
        """JSON with NaN refused (the service already turned it into null)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(data, allow_nan=False))

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a store function in a thread; its MlopsNbError becomes a JSON 4xx reply."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except MlopsNbError as exc:
            status = next(code for cls, code in _STATUS if isinstance(exc, cls))
            raise _Reply(status, {"message": str(exc), "error": type(exc).__name__}) from None

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, _Reply):
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, _Reply):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps(exc.payload))
            return
        super().write_error(status_code, **kwargs)


class _Reply(web.HTTPError):
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(status)
        self.payload = payload


class ExperimentsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        self.send(await self.call(service.experiments, self.root, self.arg("path")))


class RunsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        asc = self.arg("ascending")
        stream = self.request.connection.stream  # type: ignore[union-attr]
        try:
            text = await self.call(
                service.runs_json, self.root, self.arg("path"),
                experiment=self.arg("experiment"), query=self.arg("filter", "") or "",
                sort=self.arg("sort"), ascending=None if asc is None else asc in ("1", "true"),
                metric=self.arg("metric"), goal=self.arg("goal"),
                limit=self.int_arg("limit", service.DEFAULT_LIMIT),
                offset=self.int_arg("offset", 0), cancelled=stream.closed)
        except service.Cancelled:
            return
        if stream.closed():
            return  # the panel moved on (a newer listing aborted this page)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(text)


class RunHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        self.send(await self.call(service.run_detail, self.root, self.arg("path"), run_id))


class LineageHandler(BaseHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        self.send(await self.call(service.run_lineage, self.root, self.arg("path"), run_id))


class DiffHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        a, b = self.arg("a"), self.arg("b")
        if not a or not b:
            raise web.HTTPError(400, "a and b (two run ids) are required")
        self.send(await self.call(service.run_diff, self.root, self.arg("path"), a, b))


class CellsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        path = self.arg("path")
        if not path:
            raise web.HTTPError(400, "path (the notebook) is required")
        self.send(await self.call(service.notebook_cells, self.root, path))


class ExportHandler(BaseHandler):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        body = self.body()
        self.send(await self.call(service.export, self.root, _text(body, "path"), run_id,
                                  output=_text(body, "output"), force=bool(body.get("force"))),
                  status=201)


class ReproduceHandler(BaseHandler):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        body = self.body()
        path = _text(body, "path")
        home = await self.call(service._require_store, self.root, path)
        run = await self.call(_resolve, home, run_id)
        rtol, atol = _float(body, "rtol"), _float(body, "atol")
        stable = bool(body.get("stable"))
        timeout = min(_float(body, "timeout") or 600.0, 3600.0)

        seeds = body.get("seeds")
        if seeds is not None and (not isinstance(seeds, int) or isinstance(seeds, bool)
                                  or not 2 <= seeds <= 50):
            raise web.HTTPError(400, "seeds must be an integer from 2 to 50")

        def work() -> dict[str, Any]:
            from ..reproduction import reproduce

            verdict = reproduce(run, home=home, rtol=rtol, atol=atol, timeout=timeout,
                                stable=stable)
            return service.jsonable({**verdict.to_dict(), "summary": verdict.summary()})

        def noise() -> dict[str, Any]:  # `reproduce RUN --seeds N`: the metric's spread
            from ..noise import measure_noise, noise_summary

            doc = measure_noise(run, int(seeds), home=home, timeout=timeout, progress=False)
            return service.jsonable({**doc, "summary": noise_summary(doc)})

        try:
            job = (self.jobs.submit("noise", run, noise) if seeds is not None
                   else self.jobs.submit("reproduce", run, work))
        except TooManyJobs as exc:
            raise _Reply(429, {"message": str(exc), "error": "TooManyJobs"}) from None
        self.send(job.to_dict(), status=202)


class JobsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        self.send({"jobs": [j.to_dict() for j in self.jobs.list()]})


class JobHandler(BaseHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            raise _Reply(404, {"message": f"no job {job_id!r}", "error": "JobNotFound"})
        self.send(job.to_dict())


class ChangesHandler(BaseHandler):
    """Long-poll change feed: answers as soon as the store's token differs from `since`.

    Why long-poll rather than SSE or a websocket: it is a plain authenticated GET made with
    `ServerConnection.makeRequest` like every other call (token header, base URL, proxies all
    behave the same), while `EventSource` cannot send the Authorization header and a websocket
    needs its own auth and reconnect handling.

    The watch, only while a panel is waiting: every 100 ms one stat per experiment folder
    (`store_stamp`); the full token (a scandir + stat per folder) when a folder changed, and
    once a second in any case. A change is answered once the folders have been still for
    `SETTLE_S`, so one kernel flush (segment and session files) is one reload, not two.
    """

    @web.authenticated
    async def get(self) -> None:
        path = self.arg("path")
        since = self.arg("since")
        try:
            wait = min(max(float(self.arg("timeout", "25") or 25), 0.0), LONG_POLL_MAX_S)
        except ValueError:
            raise web.HTTPError(400, "timeout must be a number of seconds") from None
        home = await self.call(service.store_for, self.root, path)
        deadline = time.monotonic() + wait
        stamp = await asyncio.to_thread(service.store_stamp, home)
        token = await asyncio.to_thread(service.store_token, home)
        scanned = time.monotonic()
        while token == since and time.monotonic() < deadline:
            if self.request.connection.stream.closed():  # type: ignore[union-attr]
                return
            await asyncio.sleep(POLL_INTERVAL_S)
            if home is None:  # a store may appear once the first run is recorded
                home = await self.call(service.store_for, self.root, path)
            now_stamp = await asyncio.to_thread(service.store_stamp, home)
            if now_stamp != stamp or time.monotonic() - scanned >= FULL_SCAN_S:
                stamp = now_stamp
                token = await asyncio.to_thread(service.store_token, home)
                scanned = time.monotonic()
        if token != since:
            token = await self._settled(home, token)
        self.send({"token": token, "changed": token != since})

    async def _settled(self, home: Any, token: str) -> str:
        """The token once it stays the same for SETTLE_S (at most a few rounds)."""
        for _ in range(5):
            await asyncio.sleep(SETTLE_S)
            again = await asyncio.to_thread(service.store_token, home)
            if again == token:
                break
            token = again
        return token


class ReportHandler(BaseHandler):
    """The HTML report as JSON `{"html": ...}`: the panel shows it in a sandboxed frame, so it
    is never served as a same-origin document."""

    @web.authenticated
    async def get(self) -> None:
        html = await self.call(service.report_html, self.root, self.arg("path"),
                               self.arg("experiment"), self.arg("metric"), self.arg("goal"))
        self.send({"html": html, "experiment": self.arg("experiment")})


def _resolve(home: Any, run_id: str) -> str:
    from ..store.reader import StoreReader

    return StoreReader(home).resolve(run_id).id


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise web.HTTPError(400, f"{key} must be a string")
    return value


def _float(body: dict[str, Any], key: str) -> float:
    value = body.get(key, 0.0) or 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise web.HTTPError(400, f"{key} must be a non-negative number")
    return float(value)


ROUTES = [
    ("experiments", ExperimentsHandler),
    ("runs", RunsHandler),
    ("diff", DiffHandler),
    (f"runs/{RUN_ID}", RunHandler),
    (f"runs/{RUN_ID}/lineage", LineageHandler),
    (f"runs/{RUN_ID}/export", ExportHandler),
    (f"runs/{RUN_ID}/reproduce", ReproduceHandler),
    ("jobs", JobsHandler),
    (r"jobs/(?P<job_id>[0-9a-f]{32})", JobHandler),
    ("changes", ChangesHandler),
    ("cells", CellsHandler),
    ("report", ReportHandler),
]


def setup_handlers(web_app: Any, root: str, jobs: JobManager) -> None:
    web_app.settings["mlops_nb_root"] = root
    web_app.settings["mlops_nb_jobs"] = jobs
    base = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [
        (url_path_join(base, API, pattern) + "/?$", handler) for pattern, handler in ROUTES
    ])
