"""One way to start a Jupyter server and Chromium for the browser tests.

Every browser test (tests/lab/test_ui*.py, test_notebook7.py, tests/test_runs_view_browser.py)
starts JupyterLab or Notebook 7 on 127.0.0.1 with a token in a throwaway config, state and
runtime folder, and drives Debian's Chromium with playwright's sync API. The set-up lives here
once so a flag (no news pop-up, no update check, read-only extension manager) is never missing
from one of them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TOKEN = "mnb-ui-test-token"
NEWS = "@jupyterlab/apputils-extension:announcements"


def need_chromium(*, module_level: bool = False) -> None:
    """Skip without Debian's Chromium on a contributor's machine; under CI (`CI` set), where
    .ci/run installs it, its absence fails: a browser test must never pass by skipping there.
    A broken playwright always fails."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium",
                        pytrace=False)
        pytest.skip("Debian chromium is not installed (.ci/run installs it)",
                    allow_module_level=module_level)
    import playwright  # noqa: F401  (a test dependency: a broken install must fail, not skip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None,
              log: Path | None = None) -> None:
    """Until `url` answers 200; fails early, with the log's tail, if the server exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.3)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise AssertionError(f"the Jupyter server did not answer at {url}\n{tail}")


@contextmanager
def jupyter_server(root: Path, state: Path, *, app: str = "jupyterlab", token: str = TOKEN,
                   disabled: tuple[str, ...] = (), env: dict[str, str] | None = None,
                   keep_log: str | None = None) -> Iterator[str]:
    """JupyterLab (`app="jupyterlab"`) or Notebook 7 (`"notebook"`) serving `root`, its
    config, runtime, settings and workspaces under `state`; yields the base URL.

    `disabled`: front-end plugins switched off besides the news pop-up (which would cover
    the screenshots). `keep_log`: copy the server log to artifacts/ under that name.
    """
    # The project's own store, so the server and its kernels never take a `.mlops_nb/` above
    # the temporary folder (a stray one in /tmp) for the project's.
    (root / ".mlops_nb").mkdir(exist_ok=True)
    config = state / "config"
    labconfig = config / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {name: True for name in (NEWS, *disabled)}}))
    # Start a notebook's own kernel without asking: on a loaded machine the kernel specs can
    # arrive after the notebook, and JupyterLab then asks with a modal that takes the clicks.
    notebooks = state / "settings" / "@jupyterlab" / "notebook-extension"
    notebooks.mkdir(parents=True, exist_ok=True)
    (notebooks / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True}))
    full_env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config),
                "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
                "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
                "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
                "MPLBACKEND": "Agg", **(env or {})}
    full_env.pop("MLOPS_NB_HOME", None)
    port = free_port()
    app_class = "LabApp" if app == "jupyterlab" else "JupyterNotebookApp"
    args = [sys.executable, "-m", app, "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            f"--{app_class}.expose_app_in_browser=True"]
    if app == "jupyterlab":
        args += ["--LabApp.extension_manager=readonly", "--LabApp.news_url=",
                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log_path = state / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, cwd=root, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/status?token={token}", 90, proc, log_path)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if keep_log:
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(log_path, ARTIFACTS / keep_log)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium (a playwright Browser), closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(*, width: int = 1400, height: int = 900, timeout_ms: int = 90_000
                 ) -> Iterator[Any]:
    """One page in a fresh Chromium; its uncaught errors collect in `page.errors`."""
    with chromium() as browser:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        try:
            yield page
        finally:
            context.close()


def mlops_errors(page: Any) -> list[str]:
    """The page's uncaught errors that come from this extension."""
    return [e for e in page.errors if "mlops" in e.lower()]


def run_command(page: Any, command: str, args: dict | None = None) -> Any:
    return page.evaluate(
        "([c, a]) => window.jupyterapp.commands.execute(c, a)", [command, args or {}])


def open_panel(page: Any) -> None:
    """Once the app has loaded the extension, open the Experiments panel."""
    page.wait_for_function("() => window.jupyterapp?.commands"
                           ".hasCommand('mlops-nb:open-panel')", timeout=120_000)
    run_command(page, "mlops-nb:open-panel")
