"""Shared fixtures: a temporary store and a real IPython shell with the extension loaded."""

from __future__ import annotations

import atexit
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

os.environ.setdefault("MPLBACKEND", "Agg")
# Whoever runs the suite may keep a store of their own in MLOPS_NB_HOME: the tests (and the
# kernels they start, which inherit this environment) must neither record into it nor look
# there instead of their own folders. A test that needs it sets it itself.
os.environ.pop("MLOPS_NB_HOME", None)


@pytest.fixture
def store_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, its store at `.mlops_nb/`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return tmp_path / ".mlops_nb"


class Shell:
    """A real InteractiveShell driven cell by cell, like a notebook would."""

    def __init__(self, ip: InteractiveShell) -> None:
        self.ip = ip

    def run(self, code: str, *, check: bool = True):
        result = self.ip.run_cell(code, store_history=True)
        if check and not result.success:
            raise AssertionError(f"cell failed: {result.error_before_exec or result.error_in_exec!r}")
        return result

    @property
    def tracker(self):
        return getattr(self.ip, "_mlops_nb_tracker", None)

    @property
    def ns(self) -> dict:
        return self.ip.user_ns

    def flush(self) -> None:
        assert self.tracker is not None
        assert self.tracker.flush(30)


@pytest.fixture
def shell(store_home: Path) -> Iterator[Shell]:
    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance(config=cfg)
    sh = Shell(ip)
    try:
        yield sh
    finally:
        tracker = sh.tracker
        if tracker is not None:
            tracker.close()
        InteractiveShell.clear_instance()
        forget_at_exit(ip)


def forget_at_exit(ip: InteractiveShell) -> None:
    """Drop a finished test shell's exit hook. IPython registers one per shell, and each
    resets its namespace with a full collection of the heap at exit: a thousand test shells
    kept the test process busy for minutes after its summary. The history is in memory
    (no saving thread to stop); what the hook would delete is removed here."""
    atexit.unregister(ip.atexit_operations)
    for path in list(getattr(ip, "tempfiles", ())):
        path.unlink(missing_ok=True)
    for folder in list(getattr(ip, "tempdirs", ())):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tracked(shell: Shell) -> Shell:
    """A shell with `%load_ext mlops_nb` and `%track on --experiment test` already run."""
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --experiment test")
    return shell


@pytest.fixture(autouse=True, scope="session")
def _no_store_above_the_temp_folders(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A `.mlops_nb/` above pytest's temp folders (say `/tmp/.mlops_nb`, left by a stray
    run) is found like `.git` by every test's kernel and shell: their runs would go there and
    the tests would fail far from the cause. Say so once, up front."""
    base = tmp_path_factory.getbasetemp().resolve()
    for folder in base.parents:
        if (folder / ".mlops_nb").is_dir():
            pytest.exit(f"{folder / '.mlops_nb'} exists above pytest's temp folders: every "
                        "test would record into it. Move it aside (or run pytest with "
                        "--basetemp elsewhere)", returncode=3)
