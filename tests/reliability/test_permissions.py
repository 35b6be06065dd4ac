"""Permissions: files follow the user's umask, and a store read by another user (or holding one
file the reader may not open) lists everything it can, naming what it cannot; no traceback."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import mlops_nb as mnb
from mlops_nb.store.writer import SessionWriter

from .harness import cli, hexid, make_run


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_store_export_and_report_files_follow_the_umask(shell, store_home, capsys, mask):
    with umask(mask):
        shell.run("%load_ext mlops_nb")
        shell.run("%track on --experiment modes")
        shell.run("x = 3")
        shell.run("acc = x / 10")
        shell.flush()
        [run_id] = list(mnb.runs(home=store_home)["id"])
        shell.run(f"%track export {run_id} -o exported")
        report = store_home.parent / "report.html"
        code, _, err = cli(capsys, "--home", str(store_home), "compare", "-o", str(report))
        assert code == 0, err
    expected = 0o666 & ~mask
    written = [p for p in store_home.rglob("*") if p.is_file()]
    written += [p for p in (store_home.parent / "exported").iterdir() if p.is_file()]
    written.append(report)
    assert len(written) >= 6
    wrong = {str(p): oct(_mode(p)) for p in written if _mode(p) != expected}
    assert not wrong, f"expected {oct(expected)}: {wrong}"


def _write(home: Path, session: str, tag: str, n: int) -> list[str]:
    w = SessionWriter(home, session)
    runs = [make_run(hexid(tag, i), session, i) for i in range(n)]
    for cr in runs:
        cr.code = None
        w.append(cr, {})
    assert w.flush(30)
    w.close()
    return [cr.id for cr in runs]


@pytest.fixture
def shared_store() -> Iterator[Path]:
    """A store another user can reach (pytest's own temp folders are private to us)."""
    root = Path(tempfile.mkdtemp(prefix="mnb-shared-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root / ".mlops_nb"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def as_nobody(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in a forked child that became user nobody. (The interpreter lives under
    /root here, which nobody may not read: so no exec, and what the command imports is imported
    before the fork.)"""
    import io

    from mlops_nb.cli import main

    mnb.runs(home=Path(argv[1]))  # import pandas and the table code while we still can
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code, out, err = 99, io.StringIO(), io.StringIO()
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            sys.stdout, sys.stderr = out, err
            try:
                code = main(argv)
            except BaseException:
                import traceback

                traceback.print_exc(file=err)
        finally:
            os.write(wfd, json.dumps([code, out.getvalue(), err.getvalue()]).encode())
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    code, out, err = json.loads(data)
    return code, out, err


def test_another_user_sees_what_they_may_read_and_no_traceback(shared_store, capsys):
    home = shared_store
    with umask(0o022):
        public = _write(home, "public", "a", 3)
    with umask(0o077):
        private = _write(home, "private", "b", 2)
    [private_seg] = home.glob("sessions/*/private.*.json")
    assert _mode(private_seg) == 0o600
    argv = ["--home", str(home), "runs", "--format", "json"]
    if os.geteuid() == 0:  # really another user: nobody
        code, out, err = as_nobody(argv)
    else:  # the same user, the file's mode forbidding it
        private_seg.chmod(0)
        code, out, err = cli(capsys, *argv)
    assert "Traceback" not in err, err
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)] == public
    assert private_seg.name in err and "Permission denied" in err
    assert not set(private) & {r["id"] for r in json.loads(out)}


def test_one_unreadable_file_hides_nothing_else(tmp_path, capsys, monkeypatch):
    """In-process, whoever runs it: an unreadable segment, index and folder are problems."""
    home = tmp_path / ".mlops_nb"
    keep = _write(home, "keep", "c", 2)
    _write(home, "locked", "d", 2)
    [locked] = home.glob("sessions/*/locked.*.json")
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.stem == locked.stem:  # the segment and its summary in index/ alike
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    df = mnb.runs(home=home)
    assert list(df["id"]) == keep
    [problem] = df.attrs["problems"]
    assert locked.name in problem and "Permission denied" in problem
    assert "move it aside" not in problem
    code, out, _ = cli(capsys, "--home", str(home), "show", keep[1])
    assert code == 0 and keep[1] in out
