"""The runs view's front-end unit tests (vitest, in frontend/), run from the Python suite."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_vitest_suite_passes():
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True,
                   capture_output=True, timeout=600)
    proc = subprocess.run(["npx", "vitest", "run"], cwd=FRONTEND, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "failed" not in proc.stdout.split("Test Files")[-1].split("\n")[0]
