"""Reproduce jobs: run `reproduce` off the event loop, bounded, and remembered by the server.

The browser only holds job ids; a reload asks `GET jobs` again and finds its jobs running or
done. One reproduce per run at a time (asking again returns the running job), and at most
`max_concurrent` jobs run at once; the rest wait their turn in the queue.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
KEEP_FINISHED = 200


class TooManyJobs(Exception):
    """The queue is full: the caller should try again later (HTTP 429)."""


@dataclass
class Job:
    id: str
    kind: str
    run_id: str
    state: str = QUEUED
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        now = time.time()
        end = self.finished_at or now
        return {
            "id": self.id, "kind": self.kind, "run_id": self.run_id, "state": self.state,
            "created_at": self.created_at, "started_at": self.started_at,
            "finished_at": self.finished_at,
            "elapsed_s": round(end - self.started_at, 1) if self.started_at else 0.0,
            "result": self.result, "error": self.error,
        }


class JobManager:
    def __init__(self, max_concurrent: int = 2, max_queued: int = 16) -> None:
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        # Daemon threads, not an executor: a reproduce still running must not hold up the
        # server's shutdown (its subprocess has its own timeout).
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, run_id: str, work: Callable[[], dict[str, Any]]) -> Job:
        """Queue `work` for run `run_id`, or return the job already queued or running for it."""
        with self._lock:
            for job in self._jobs.values():
                if job.kind == kind and job.run_id == run_id and job.state in (QUEUED, RUNNING):
                    return job
            pending = sum(j.state in (QUEUED, RUNNING) for j in self._jobs.values())
            if pending >= self.max_queued:
                raise TooManyJobs(f"{pending} jobs are already waiting; try again when one "
                                  "finishes")
            job = Job(uuid.uuid4().hex, kind, run_id)
            self._jobs[job.id] = job
            self._forget_old()
        threading.Thread(target=self._run, args=(job, work), daemon=True,
                         name=f"mlops-nb-{kind}-{run_id[:8]}").start()
        return job

    def _run(self, job: Job, work: Callable[[], dict[str, Any]]) -> None:
        with self._slots:  # queued until one of the max_concurrent slots frees
            job.started_at = time.time()
            job.state = RUNNING
            try:
                job.result = work()
                job.state = DONE
            except Exception as exc:  # the job reports it; the server keeps serving
                job.error = f"{type(exc).__name__}: {exc}"
                job.state = FAILED
            finally:
                job.finished_at = time.time()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at)

    def _forget_old(self) -> None:
        done = sorted((j for j in self._jobs.values() if j.state in (DONE, FAILED)),
                      key=lambda j: j.created_at)
        for job in done[:max(0, len(done) - KEEP_FINISHED)]:
            self._jobs.pop(job.id, None)

