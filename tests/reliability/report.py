"""The reliability figures the README publishes, as one table:
`.venv/bin/python -m tests.reliability.report [--cells 20000] [--kills 3]`.

Each row is a scenario of the battery run for real (a real kernel killed with SIGKILL, two
writers and a reader sharing a store, a real small tmpfs filled up where this machine lets us
mount one, else simulated ENOSPC/EROFS, a store damaged by hand, a long session in a real
IPython shell); the columns are what a user would ask: how many runs were written, how many
lost, how many files could not be read, whether a cell got slower as the session grew, and what
a run costs on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import mlops_nb as mnb
from mlops_nb.store.blobs import blob_hash
from mlops_nb.store.writer import SessionWriter

from .conftest import SmallDisk, _can_mount
from .harness import make_run, store_files

Row = dict[str, Any]


def _row(scenario: str, written: int, lost: int, unreadable: int, **extra: Any) -> Row:
    return {"scenario": scenario, "written": written, "lost": lost, "unreadable": unreadable,
            **extra}


def crash(tmp: Path, kills: int) -> Row:
    from .test_crash import kill_kernel_mid_stream

    rng = random.Random(8)
    got = [kill_kernel_mid_stream(tmp / f"kill{i}", 200, rng) for i in range(kills)]
    return _row(f"SIGKILL of a busy kernel x{kills}", sum(g["stored"] for g in got),
                sum(g["lost"] for g in got), 0,
                note=f"lost runs span <= {max(g['lost_span_s'] for g in got) * 1000:.0f} ms "
                     "of the kernel's work (target 100 ms)")


def concurrency(tmp: Path, n: int = 1000) -> Row:
    home = tmp / "conc" / ".mlops_nb"
    errors: list[str] = []
    done = threading.Event()

    def write(session: str, tag: int) -> None:
        w = SessionWriter(home, session)
        for i in range(n):
            code = f"x = {i}  # {session}\n".encode()
            cr = make_run(f"{tag:08x}{i:024x}", session, i)
            cr.code = blob_hash(code)
            w.append(cr, {cr.code: code})
        if not w.flush(120):
            errors.append(f"{session}: flush failed: {w.error!r}")
        w.close()

    reads = 0

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            df = mnb.runs(home=home) if home.exists() else None
            if df is not None and df.attrs["problems"]:
                errors.append(str(df.attrs["problems"]))
            reads += 1

    writers = [threading.Thread(target=write, args=(f"w{k}", k)) for k in range(2)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    df = mnb.runs(home=home)
    return _row("two writers + a reader, one store", len(df), 2 * n - len(df),
                len(df.attrs["problems"]) + len(errors), note=f"{reads} listings while writing")


def full_disk(tmp: Path, monkeypatch: pytest.MonkeyPatch, read_only: bool) -> Row:
    point = tmp / ("ro" if read_only else "full")
    point.mkdir()
    disk = SmallDisk(point, _can_mount(point), monkeypatch)
    try:
        w = SessionWriter(disk.home, "s", retry_interval=0.05)
        for i in range(30):
            w.append(make_run(f"{i:032x}", "s", i))
        w.flush(30)
        disk.read_only() if read_only else disk.fill()
        for i in range(30, 70):
            w.append(make_run(f"{i:032x}", "s", i))
        told = not w.flush(10) and w.take_notice() is not None
        disk.read_only(False) if read_only else disk.free()
        for i in range(70, 80):
            w.append(make_run(f"{i:032x}", "s", i))
        w.flush(30)
        w.close()
        df = mnb.runs(home=disk.home)
        kind = "tmpfs" if disk.real else "simulated"
        what = "read-only store" if read_only else "full disk"
        return _row(f"{what} ({kind}): 40 cells failing, then 10", len(df), 80 - len(df),
                    len(df.attrs["problems"]),
                    note="user told once" if told else "USER NOT TOLD")
    finally:
        disk.close()


def corrupt(tmp: Path) -> Row:
    home = tmp / "corrupt" / ".mlops_nb"
    for s in ("good", "bad", "edited"):
        w = SessionWriter(home, s)
        for i in range(10):
            w.append(make_run(f"{s.encode().hex():0<8}{i:024x}"[:32], s, i))
        w.flush(30)
        w.close()
    bad = next(home.glob("sessions/*/bad.*.json"))
    bad.write_bytes(b"\x00garbage")
    edited = next(home.glob("sessions/*/edited.*.json"))
    doc = json.loads(edited.read_text())
    doc["cell_runs"]["3"]["started_at"] = "yesterday"
    edited.write_text(json.dumps(doc))
    df = mnb.runs(home=home)
    return _row("one garbage file + one bad record", len(df), 0, len(df.attrs["problems"]),
                note="the 10 runs of the garbage file and the bad record are named, not hidden")


def long_session(tmp: Path, cells: int) -> Row:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    project = tmp / "long"
    project.mkdir()
    os.chdir(project)
    os.environ["MLOPS_NB_HOME"] = str(project / ".mlops_nb")
    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance(config=cfg)
    ip.run_cell("%load_ext mlops_nb", store_history=True)
    ip.run_cell("%track on --experiment long", store_history=True)
    times: list[float] = []
    for i in range(cells):
        t = time.perf_counter()
        ip.run_cell(f"lr = {i} / 1e4\nacc = lr * 2", store_history=True)
        times.append(time.perf_counter() - t)
    tracker = ip._mlops_nb_tracker
    ok = tracker.flush(120)
    home = tracker.home
    tracker.close()
    InteractiveShell.clear_instance()
    files = store_files(home)
    size = sum(p.stat().st_size for p in files)
    df = mnb.runs(home=home)
    tenth = max(1, cells // 10)
    first = sorted(times[:tenth])[tenth // 2]
    last = sorted(times[-tenth:])[tenth // 2]
    return _row(f"long session: {cells:,} cells", len(df), cells - len(df),
                len(df.attrs["problems"]), first_s=first, last_s=last,
                bytes_per_run=size / max(len(df), 1),
                note=f"{len(files)} files in the store" + ("" if ok else "; FLUSH FAILED"))


def chained_session(tmp: Path, cells: int) -> Row:
    """A chain of `cells` cells each depending on the last (`x = x + 1`): `mlops-nb export`
    and `show` of its last run, whose slice is the whole session, in fresh processes."""
    from benchmarks.export_long import measure

    r = measure(cells, tmp / "chain")
    e, s = r["export"], r["show"]
    return _row(f"chained session: {cells:,} cells, export + show of the last run", cells, 0,
                0, note=f"export {e['cpu_s']:.2f} s CPU, {e['peak_mb']:.0f} MB; show "
                        f"{s['cpu_s']:.2f} s, {s['peak_mb']:.0f} MB (target <= 1 s, <= 200 MB)")


def render(rows: list[Row]) -> str:
    head = ["scenario", "runs written", "runs lost", "files unreadable", "s/cell first",
            "s/cell last", "store bytes/run", "note"]
    body = [[r["scenario"], str(r["written"]), str(r["lost"]), str(r["unreadable"]),
             f"{r['first_s']:.4f}" if "first_s" in r else "",
             f"{r['last_s']:.4f}" if "last_s" in r else "",
             f"{r['bytes_per_run']:,.0f}" if "bytes_per_run" in r else "",
             r.get("note", "")] for r in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000, help="cells of the long session")
    parser.add_argument("--kills", type=int, default=3, help="kernels to SIGKILL")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    cwd = os.getcwd()
    mp = pytest.MonkeyPatch()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mnb-reliability-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            rows.append(crash(tmp, args.kills))
            rows.append(concurrency(tmp))
            rows.append(full_disk(tmp, mp, read_only=False))
            rows.append(full_disk(tmp, mp, read_only=True))
            rows.append(corrupt(tmp))
            rows.append(long_session(tmp, args.cells))
            (tmp / "chain").mkdir()
            rows.append(chained_session(tmp, args.cells))
        finally:
            mp.undo()
            os.chdir(cwd)
    print(render(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
