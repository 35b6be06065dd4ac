"""Record steps left to the writer thread (capture/deferred.py): in order, exactly once,
on whichever thread reaches them first; and what the writer does with their outcome."""

from __future__ import annotations

import threading
from pathlib import Path

from mlops_nb.capture.deferred import DeferredSteps
from mlops_nb.records import CellRun
from mlops_nb.store.blobs import blob_hash
from mlops_nb.store.reader import StoreReader
from mlops_nb.store.writer import SessionWriter

BIG = b"x" * 1000


def run(i: int) -> CellRun:
    return CellRun(id=f"{i:032x}", session="s1", experiment="exp", seq=i, started_at=1.0,
                   metrics={"f1": i / 10})


def test_steps_run_in_order_once_whoever_asks_first():
    steps = DeferredSteps()
    done: list[int] = []
    ks = [steps.add(lambda i=i: done.append(i) or True) for i in range(5)]
    assert steps.run_upto(ks[2]) is True
    assert done == [0, 1, 2] and steps.pending == 2
    steps.settle()  # the kernel thread needs the whole state: runs the rest
    assert done == [0, 1, 2, 3, 4] and steps.pending == 0
    # The writer asks for records the kernel thread already settled: their own outcomes,
    # and nothing runs again.
    assert [steps.run_upto(k) for k in ks[3:]] == [True, True]
    assert done == [0, 1, 2, 3, 4]
    assert steps.run_upto(ks[3]) is False  # an outcome is taken once


def test_a_failing_step_reports_false_and_the_next_steps_still_run():
    steps = DeferredSteps()
    done: list[int] = []

    def boom() -> bool:
        raise RuntimeError("bad record")

    a = steps.add(lambda: done.append(0) or True)
    b = steps.add(boom)
    c = steps.add(lambda: done.append(2) or True)
    assert steps.run_upto(c) is True
    assert done == [0, 2]
    assert steps.run_upto(a) is True and steps.run_upto(b) is False


def test_two_threads_racing_run_each_step_once_in_order():
    steps = DeferredSteps()
    done: list[int] = []
    ks = [steps.add(lambda i=i: done.append(i) or True) for i in range(2000)]
    other = threading.Thread(target=lambda: [steps.run_upto(k) for k in ks])
    other.start()
    steps.settle()
    other.join()
    assert done == list(range(2000))


def test_the_writer_stores_what_the_finish_step_made_of_the_record(tmp_path: Path):
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s1")
    seen: list[str] = []

    def finish(cr: CellRun, blobs: dict[str, bytes]) -> bool:
        seen.append(threading.current_thread().name)
        cr.params = {"lr": 0.5}
        blobs[blob_hash(BIG)] = BIG  # a blob made by the step is stored, and counted
        return True

    cr = run(0)
    blobs: dict[str, bytes] = {}
    assert w.append(cr, blobs, finish=lambda: finish(cr, blobs))
    dropped = run(1)
    assert w.append(dropped, {}, finish=lambda: False)
    assert w.append(run(2))
    assert w.flush(10) is True  # a record let go by its step is not waited for
    assert w.waiting == 0 and w._pending_bytes == 0
    w.close()
    assert seen == [w._thread.name]  # completed on the writer's thread, not the caller's
    log = StoreReader(home).session_log("s1")
    assert [c.seq for c in log] == [0, 2]
    assert log[0].params == {"lr": 0.5}
    assert StoreReader(home).blobs.get(blob_hash(BIG)) == BIG
