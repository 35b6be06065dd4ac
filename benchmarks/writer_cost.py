"""The session writer's CPU per cell run: `python -m benchmarks.writer_cost [--records N]`.

The writer works on its own thread, off the cell's critical path, but its CPU is part of what
tracking costs the machine. Here N records shaped like a 50-statement cell's (48 names bound,
7 read, 5 parameters, a metric) go through a real `SessionWriter` into a fresh store, flushed
every 10 records as back-to-back cells are (a flush also writes the run index, which a kernel
does at most once a second, so this is an upper bound). Printed: process CPU per record, and
the same against one `json.dumps` of each record, measured in the same run: the encoding a
store of JSON text cannot avoid.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def _record(i: int) -> Any:
    from mlops_nb.records import CellRun

    return CellRun(id=f"{i:032x}", session="s", experiment="e", seq=i, started_at=1.7e9 + i,
                   defs=[f"name_{k}" for k in range(48)], uses=[f"u{k}" for k in range(7)],
                   params={f"p{k}": k * 0.1 for k in range(5)}, metrics={"acc": i / 1000},
                   code="ab" * 16, python="ab" * 16, deps=[f"{i - 1:032x}"])


def measure(records: int) -> dict[str, float]:
    from mlops_nb.store.writer import SessionWriter

    runs = [_record(i) for i in range(records)]
    c0 = time.process_time()
    for cr in runs:
        json.dumps(cr.to_dict(), separators=(",", ":"))
    baseline = (time.process_time() - c0) / records
    with tempfile.TemporaryDirectory() as home:
        writer = SessionWriter(Path(home), "s", flush_interval=10.0)
        c0 = time.process_time()
        for i, cr in enumerate(runs):
            writer.append(cr)
            if i % 10 == 9:
                writer.flush()
        writer.close()
        per_record = (time.process_time() - c0) / records
    return {"records": records, "writer_cpu_per_record_s": per_record,
            "json_dumps_per_record_s": baseline, "ratio": per_record / baseline}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    got = measure(args.records)
    print(f"session writer, {got['records']} records flushed every 10: "
          f"{got['writer_cpu_per_record_s'] * 1e6:.0f} us of process CPU per record, "
          f"{got['ratio']:.1f}x one json.dumps of it "
          f"({got['json_dumps_per_record_s'] * 1e6:.0f} us)")
    if args.out:
        Path(args.out).write_text(json.dumps(got))
    return got


if __name__ == "__main__":
    main()
