"""Export of a run at the end of N chained cells (`x = x + 1`, each depending on the last).

Issue 8's target: export of any run <= 1 s at 20,000 chained cells. The session is recorded
in a real tracked InteractiveShell; then `build_export` of the last run is timed (best of
`--repeats`, in this process, store files in the page cache) next to a baseline measured in
the same run: `compile()` of the train.py it produced, the least any export of that script
costs. The ratio is printed, so a loaded machine shifts both.

    python -m benchmarks.export_long [--cells 20000] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import write_out


def record(home_dir: Path, cells: int) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    os.chdir(home_dir)
    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=cfg)
    ip.run_cell("%load_ext mlops_nb", store_history=True)
    ip.run_cell("%track on --experiment long", store_history=True)
    ip.run_cell("x = 0", store_history=True)
    for _ in range(cells - 2):
        ip.run_cell("x = x + 1", store_history=True)
    ip.run_cell("score = x * 2", store_history=True)
    tracker = ip._mlops_nb_tracker
    assert tracker.flush(600)
    tracker.close()


def measure(cells: int, repeats: int) -> dict[str, Any]:
    from mlops_nb.exporting.build import build_export
    from mlops_nb.store.reader import StoreReader

    with tempfile.TemporaryDirectory(prefix="mnb-export-long-") as tmp:
        t0 = time.perf_counter()
        record(Path(tmp), cells)
        recorded = time.perf_counter() - t0
        reader = StoreReader(Path(tmp) / ".mlops_nb")
        last = max((cr for cr in reader.iter_cell_runs() if cr.is_run), key=lambda c: c.seq)
        times = []
        for _ in range(repeats):
            reader = StoreReader(Path(tmp) / ".mlops_nb")  # nothing cached between repeats
            t0 = time.perf_counter()
            export = build_export(reader, reader.resolve(last.id))
            times.append(time.perf_counter() - t0)
        source = export.script.source
        base = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            compile(source, "train.py", "exec")
            base.append(time.perf_counter() - t0)
    export_s, compile_s = min(times), min(base)
    return {"cells": cells, "record_s": recorded, "export_s": export_s,
            "compile_s": compile_s, "export_vs_compile": export_s / compile_s,
            "script_lines": source.count("\n"), "slice_cells": len(export.run_json["slice"])}


def render(r: dict[str, Any]) -> str:
    return (f"export of the last of {r['cells']:,} chained cells ({r['slice_cells']:,} in the "
            f"slice, train.py {r['script_lines']:,} lines): {r['export_s']:.2f} s "
            f"(target <= 1 s); compile() of that train.py {r['compile_s']:.3f} s; ratio "
            f"{r['export_vs_compile']:.1f}x (recording took {r['record_s']:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.export_long")
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    result = measure(args.cells, args.repeats)
    print(render(result))
    if args.out:
        write_out(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
