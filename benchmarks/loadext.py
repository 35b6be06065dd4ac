"""`%load_ext mlops_nb` in a kernel that is already running, and what it imports.

Each measurement is a fresh process (import costs are paid once per kernel, so a loop in one
process would measure a cache): either a plain InteractiveShell that has already run a cell, or
a real ipykernel started through jupyter_client. The time is that of the load_ext call inside
the kernel. `%track on` is timed after it (informational: it starts the writer thread).

    python -m benchmarks.loadext shell [--out FILE]     # one measurement, in this process
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from typing import Any

from .common import HEAVY_MODULES, write_out

PROBE = r"""
import sys, time, json, io, contextlib
_heavy = {heavy!r}
_before = set(sys.modules)
_c0, _t0 = time.process_time(), time.perf_counter()
get_ipython().run_line_magic("load_ext", "mlops_nb")
_load, _load_cpu = time.perf_counter() - _t0, time.process_time() - _c0
_new = set(sys.modules) - _before
_t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    get_ipython().run_line_magic("track", "on --experiment bench")
_on = time.perf_counter() - _t0
print("MNB-RESULT " + json.dumps({{
    "load_ext_s": _load,
    "load_ext_cpu_s": _load_cpu,
    "track_on_s": _on,
    "new_modules": len(_new),
    "heavy_imported_by_load_ext": sorted(m for m in _heavy if m in _new),
    "heavy_already_loaded": sorted(m for m in _heavy if m in _before),
}}))
"""


def probe_code() -> str:
    return PROBE.format(heavy=list(HEAVY_MODULES))


def in_shell() -> dict[str, Any]:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=cfg)
    ip.run_cell("x = 1", store_history=True)  # the kernel is running and has run a cell
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ip.run_cell(probe_code(), store_history=True)
    return _parse(buf.getvalue())


def in_kernel(timeout: float = 60) -> dict[str, Any]:
    """One real ipykernel through jupyter_client (the notebook's path, minus the browser)."""
    from jupyter_client.manager import start_new_kernel

    t0 = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3")
    started = time.perf_counter() - t0
    try:
        kc.execute_interactive("x = 1", timeout=timeout, output_hook=lambda msg: None)
        chunks: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                chunks.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                chunks.append("\n".join(msg["content"]["traceback"]))

        kc.execute_interactive(probe_code(), timeout=timeout, output_hook=hook)
        out = _parse("".join(chunks))
        out["kernel_start_s"] = started
        return out
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _parse(text: str) -> dict[str, Any]:
    for line in text.splitlines():
        if line.startswith("MNB-RESULT "):
            return json.loads(line[len("MNB-RESULT "):])
    raise RuntimeError(f"probe printed no result:\n{text[-3000:]}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("shell", "kernel"))
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    import os
    import tempfile

    # `%track on` writes a store: a throwaway one unless MLOPS_NB_HOME says where, never a
    # `.mlops_nb/` in the folder this runs from (every notebook below it would track there).
    with tempfile.TemporaryDirectory(prefix="mnb-loadext-") as scratch:
        os.environ.setdefault("MLOPS_NB_HOME", os.path.join(scratch, ".mlops_nb"))
        result = in_shell() if args.mode == "shell" else in_kernel()
        result["bytecode_cached"] = not sys.dont_write_bytecode
    write_out(args.out, result)


if __name__ == "__main__":
    sys.exit(main())
