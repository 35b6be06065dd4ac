"""The job manager's bounds: one job per run at a time, a cap on concurrent jobs, a full queue
refused, failures reported. Pure threads, no server."""

from __future__ import annotations

import threading
import time

import pytest

from mlops_nb.server.jobs import DONE, FAILED, JobManager, TooManyJobs


def wait(job, states=(DONE, FAILED), timeout=10.0):
    deadline = time.monotonic() + timeout
    while job.state not in states:
        assert time.monotonic() < deadline, job
        time.sleep(0.01)


def test_one_job_per_run_and_a_cap_on_concurrency():
    jm = JobManager(max_concurrent=2, max_queued=10)
    gate = threading.Event()
    running = []
    peak = []

    def work():
        running.append(1)
        peak.append(len(running))
        gate.wait(5)
        running.pop()
        return {"ok": True}

    jobs = [jm.submit("reproduce", f"run{i}", work) for i in range(4)]
    assert jm.submit("reproduce", "run0", work) is jobs[0]  # the same job, not a second one
    time.sleep(0.2)
    assert sorted(j.state for j in jobs) == ["queued", "queued", "running", "running"]
    gate.set()
    for j in jobs:
        wait(j)
    assert max(peak) == 2
    assert all(j.state == DONE and j.result == {"ok": True} for j in jobs)
    assert jm.submit("reproduce", "run0", work) is not jobs[0]  # done: a new one may start


def test_full_queue_is_refused_and_failures_are_reported():
    jm = JobManager(max_concurrent=1, max_queued=2)
    gate = threading.Event()
    a = jm.submit("reproduce", "a", lambda: gate.wait(5) and {})
    b = jm.submit("reproduce", "b", lambda: {})
    with pytest.raises(TooManyJobs):
        jm.submit("reproduce", "c", lambda: {})
    gate.set()
    wait(a)
    wait(b)

    def boom():
        raise RuntimeError("script failed")

    job = jm.submit("reproduce", "d", boom)
    wait(job)
    assert job.state == FAILED and "script failed" in job.error
    assert job.to_dict()["elapsed_s"] >= 0
