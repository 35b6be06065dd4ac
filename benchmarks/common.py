"""Shared helpers: fresh environments for subprocesses, statistics, the results table."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
# What `%load_ext mlops_nb` must not import (the first four are the list).
HEAVY_MODULES = ("pandas", "matplotlib", "ipywidgets", "sklearn", "numpy", "scipy", "pyarrow")


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def quantile(xs: Sequence[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def bench_env(workdir: Path, **extra: str) -> dict[str, str]:
    """Environment of a benchmark subprocess: its own IPython dir, no inherited store."""
    env = dict(os.environ)
    env.pop("MLOPS_NB_HOME", None)
    env.pop("JPY_SESSION_NAME", None)
    env["IPYTHONDIR"] = str(workdir / "ipython")
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    # Imports read compiled bytecode, as in any installed package (pip compiles it; an
    # editable install writes it on first import): without it, every process compiles each
    # module's source again, which more than doubled `%load_ext` and the CLI's import time.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def run_json(module: str, args: list[str], workdir: Path, *, timeout: float = 900,
             env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m benchmarks.<module> ... --out FILE` in a fresh process; its JSON result."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd, out = tempfile.mkstemp(suffix=".json", dir=workdir)
    os.close(fd)
    cmd = [sys.executable, "-m", f"benchmarks.{module}", *args, "--out", out]
    proc = subprocess.run(cmd, cwd=workdir, env=env or bench_env(workdir), timeout=timeout,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:4])} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(Path(out).read_text())


def write_out(path: str | None, result: dict[str, Any]) -> None:
    text = json.dumps(result, indent=2, default=repr)
    if path:
        Path(path).write_text(text)
    else:
        print(text)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        info["loadavg_1m_at_start"] = os.getloadavg()[0]
    from importlib import metadata

    for dist in ("ipython", "pandas", "tinydb", "pyarrow", "mlflow"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = None
    return info


def fmt_s(seconds: float | None) -> str:
    """Human units: µs below 1 ms, ms below 1 s."""
    if seconds is None or seconds != seconds:
        return "-"
    a = abs(seconds)
    if a < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if a < 1:
        return f"{seconds * 1e3:.1f} ms" if a < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def signed(seconds: float) -> str:
    return ("+" if seconds >= 0 else "-") + fmt_s(abs(seconds))


def table(rows: list[list[str]], header: list[str]) -> str:
    full = [r for r in [header, *rows] if len(r) > 1]
    widths = [max(len(str(r[i])) for r in full) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=False)), line]
    for r in rows:
        if len(r) == 1:  # a section title
            out.append(r[0])
            continue
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)))
    return "\n".join(out)
