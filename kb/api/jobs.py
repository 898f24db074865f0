"""Background ingest: one worker thread (ingest holds the KB writer lock anyway), jobs kept in memory."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed"]
MAX_KEPT = 1000


@dataclass
class Job:
    id: str
    tenant: str
    kind: str
    files: list[str]
    status: JobStatus = "queued"
    created: float = field(default_factory=time.time)
    finished: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "files": self.files,
            "created": self.created,
            "finished": self.finished,
            "results": self.results,
            "error": self.error,
        }


class JobRunner:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-ingest")

    def submit(self, tenant: str, kind: str, files: list[str], work: Callable[[Job], None]) -> Job:
        job = Job(uuid.uuid4().hex, tenant, kind, files)
        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > MAX_KEPT:  # forget the oldest finished jobs
                for old in sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.created)[
                    : len(self._jobs) - MAX_KEPT
                ]:
                    del self._jobs[old.id]
        self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        job.status = "running"
        try:
            work(job)
            job.status = "failed" if job.results and all(r["status"] == "failed" for r in job.results) else "done"
        except Exception:  # a bug: logged with its traceback, reported without internals
            log.exception("ingest job %s failed", job.id)
            job.status = "failed"
            job.error = "internal error during ingest"
        job.finished = time.time()

    def get(self, tenant: str, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.tenant == tenant else None

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """For tests and shutdown: wait until no job is queued or running."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(j.finished for j in list(self._jobs.values())):
                return True
            time.sleep(0.05)
        return False

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
