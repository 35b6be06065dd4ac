"""Fixtures of the reliability battery (the shared `shell`/`tracked` ones come from tests/).

`small_disk` gives a store folder on a real small filesystem (a tmpfs, when this machine lets
us mount one: root in a container with CAP_SYS_ADMIN) that a test can fill, free and make
read-only. Elsewhere the same calls simulate it: every fsync fails with ENOSPC or EROFS, which
is where a full or read-only disk makes an atomic write fail. `disk.real` says which one ran.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class SmallDisk:
    def __init__(self, root: Path, real: bool, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.real = real
        self._monkeypatch = monkeypatch
        self._filler = root / "filler.bin"
        self._fail: int | None = None  # simulated: the errno every fsync raises
        self._bound = False
        if not real:
            real_fsync = os.fsync

            def fsync(fd: int) -> None:
                if self._fail is not None:
                    raise OSError(self._fail, os.strerror(self._fail))
                real_fsync(fd)

            monkeypatch.setattr(os, "fsync", fsync)

    @property
    def home(self) -> Path:
        return self.root / ".mlops_nb"

    def fill(self) -> None:
        """Leave no free byte."""
        if not self.real:
            self._fail = errno.ENOSPC
            return
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 16, 1 << 10, 1):  # big blocks, then the last few bytes
                block = b"\0" * size
                try:
                    while os.write(fd, block):
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)

    def free(self) -> None:
        if not self.real:
            self._fail = None
            return
        self._filler.unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        """Make the store folder read-only (a read-only bind mount over it: a remount of the
        whole filesystem is refused while the writer holds its pack open), or writable again."""
        if not self.real:
            self._fail = errno.EROFS if on else None
            return
        home = str(self.home)
        if on:
            subprocess.run(["mount", "--bind", home, home], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", home], check=True)
            self._bound = True
        elif self._bound:
            subprocess.run(["umount", home], check=True)
            self._bound = False

    def close(self) -> None:
        if self.real:
            if self._bound:
                subprocess.run(["umount", "-l", str(self.home)], capture_output=True, timeout=30)
            subprocess.run(["umount", "-l", str(self.root)], capture_output=True, timeout=30)


def _can_mount(point: Path) -> bool:
    if os.geteuid() != 0 or os.environ.get("MLOPS_NB_TEST_SIMULATED_DISK"):
        return False
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmallDisk]:
    """A 4 MB filesystem for the store (real tmpfs when possible, else simulated failures)."""
    point = tmp_path / "disk"
    point.mkdir()
    real = _can_mount(point)
    disk = SmallDisk(point, real, monkeypatch)
    try:
        yield disk
    finally:
        disk.close()
