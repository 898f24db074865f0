"""Background ingest jobs, run one at a time by one thread, fairly across tenants: each tenant has its
own queue and the thread serves the queues round-robin, so one tenant's large batch delays another's
single file by at most one file: a job of several files calls `yield_turn` between its files, which
runs the next waiting job of another tenant first. The slow part of each file runs in an
ingest worker process at low priority (ingest/workers.py); this thread commits, holding the writer
lock, so it keeps normal priority (a niced lock holder would stall the searches waiting on it).

Without a store jobs live in memory only. With one, every state change is saved as `store/<id>.json`,
so a restarted server or another replica sharing the store can answer a job's status. While a job is
queued or running, the runner that owns it holds an exclusive flock on `store/<id>.lock`; the kernel
drops it when the owner dies (kill -9 included), which is how `recover` tells orphans from live jobs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from kb.fsutil import atomic_write_bytes

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed"]
MAX_KEPT = 1000  # finished jobs kept, in memory and on disk
MAX_ATTEMPTS = 3  # times a job's work may be started before recovery gives up on it
INTERRUPTED = "interrupted by a server restart; upload the files again"
_ID = re.compile(r"[0-9a-f]{32}")
_ACTIVE = ("queued", "running")


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
    params: dict[str, Any] = field(default_factory=dict)  # what redoing the work needs; never sent to clients
    attempts: int = 0  # times the work was started

    def to_json(self) -> dict[str, Any]:
        """What clients see."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "files": list(self.files),
            "created": self.created,
            "finished": self.finished,
            "results": list(self.results),
            "error": self.error,
        }

    def to_record(self) -> dict[str, Any]:
        """What the store keeps."""
        return {**self.to_json(), "tenant": self.tenant, "params": self.params, "attempts": self.attempts}

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Job:
        """The inverse of to_record; ValueError on a malformed record."""
        try:
            status = rec["status"]
            if status not in get_args(JobStatus):
                raise ValueError(f"bad status {status!r}")
            finished = rec.get("finished")
            return cls(
                id=str(rec["id"]),
                tenant=str(rec["tenant"]),
                kind=str(rec["kind"]),
                files=[str(f) for f in rec["files"]],
                status=cast(JobStatus, status),
                created=float(rec["created"]),
                finished=None if finished is None else float(finished),
                results=[dict(r) for r in rec.get("results") or []],
                error=None if rec.get("error") is None else str(rec["error"]),
                params=dict(rec.get("params") or {}),
                attempts=int(rec.get("attempts") or 0),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed job record: {exc}") from exc


class _Results(list[dict[str, Any]]):
    """A running job's results; each append saves the job, so other replicas see the progress."""

    def __init__(self, items: Iterable[dict[str, Any]], on_append: Callable[[], None]) -> None:
        super().__init__(items)
        self._on_append = on_append

    def append(self, item: dict[str, Any], /) -> None:
        super().append(item)
        self._on_append()


class JobRunner:
    def __init__(self, store: Path | None = None) -> None:
        self._jobs: dict[str, Job] = {}
        self._owned: dict[str, int] = {}  # job id -> fd holding the flock on store/<id>.lock
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-ingest")
        # Jobs waiting, per tenant; `_turns` holds each tenant with waiting jobs once, next to serve first.
        # The pool gets one `_run_next` per job, which picks whose job runs when it starts.
        self._queues: dict[str, deque[tuple[Job, Callable[[Job], None]]]] = {}
        self._turns: deque[str] = deque()
        self._serving: list[str] = []  # tenants whose jobs are running (nested by yield_turn), outermost first
        self._stopping = False
        self.store = store
        if store is not None:
            store.mkdir(parents=True, exist_ok=True)

    # -- public ------------------------------------------------------------------------------------
    def submit(
        self,
        tenant: str,
        kind: str,
        files: list[str],
        work: Callable[[Job], None],
        params: dict[str, Any] | None = None,
    ) -> Job:
        job = Job(uuid.uuid4().hex, tenant, kind, files, params=dict(params or {}))
        if self.store is not None:
            fd = self._try_lock(job.id)
            if fd is None:  # a fresh uuid4: cannot happen
                raise RuntimeError(f"job {job.id} is locked by another runner")
            try:
                self._save(job)
            except BaseException:
                self._release(job.id, fd)
                raise
            with self._lock:
                self._owned[job.id] = fd
        self._enqueue(job, work)
        return job

    def get(self, tenant: str, job_id: str) -> Job | None:
        """The tenant's job: this runner's own, else the store's record; None for another tenant's."""
        if not _ID.fullmatch(job_id):
            return None
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None and self.store is not None:
            job = self._load(job_id)
        return job if job is not None and job.tenant == tenant else None

    def recover(self, make_work: Callable[[Job], Callable[[Job], None] | None]) -> list[str]:
        """Re-queue the store's queued/running jobs whose owner is dead (their lock is free); call once
        at startup. `make_work(job)` rebuilds the work from `job.params`, or returns None when it
        cannot (the job then fails). Returns the ids re-queued."""
        if self.store is None:
            return []
        requeued: list[str] = []
        for path in sorted(self.store.glob("*.json")):
            job_id = path.stem
            with self._lock:
                mine = job_id in self._jobs
            if mine or not _ID.fullmatch(job_id):
                continue
            seen = self._load(job_id)
            if seen is None or seen.status not in _ACTIVE:
                continue
            fd = self._try_lock(job_id)
            if fd is None:  # a live runner owns it
                continue
            job = self._load(job_id)  # again, under the lock: the owner may have finished meanwhile
            if job is None or job.status not in _ACTIVE:
                self._release(job_id, fd)
                continue
            with self._lock:
                self._owned[job_id] = fd
            work: Callable[[Job], None] | None = None
            if job.attempts < MAX_ATTEMPTS:
                try:
                    work = make_work(job)
                except Exception:
                    log.exception("cannot rebuild the work of job %s", job_id)
            if work is None:
                log.warning("job %s given up after %d attempt(s)", job_id, job.attempts)
                job.status, job.error, job.finished = "failed", INTERRUPTED, time.time()
                self._finish(job)
                continue
            log.info("re-queueing interrupted job %s (attempt %d)", job_id, job.attempts + 1)
            job.status, job.error, job.finished, job.results = "queued", None, None, []
            self._save_quietly(job)
            self._enqueue(job, work)
            requeued.append(job_id)
        return requeued

    def yield_turn(self, job: Job) -> None:
        """Called by a running job between two of its files: run the first waiting job of the next other
        tenant (in this thread, nested), so a long batch does not hold back other tenants' files."""
        with self._lock:
            if self._stopping:
                return
            picked = self._pop_turn(exclude=set(self._serving))
        if picked is not None:
            self._run(*picked)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """For tests and shutdown: wait until no job of this runner is queued or running."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:  # finished and saved (`_finish` gives up the lock after the last save)
                idle = all(j.finished and j.id not in self._owned for j in self._jobs.values())
            if idle:
                return True
            time.sleep(0.05)
        return False

    def shutdown(self) -> None:
        """Finish the running job. With a store, queued jobs are left queued on disk (their locks are
        released) for the next start to resume, so stopping a server does not wait for a backlog;
        without one they run first, since nothing else would remember them."""
        with self._lock:
            self._stopping = self.store is not None  # without a store the queue still runs (see above)
        self._pool.shutdown(wait=True, cancel_futures=self.store is not None)
        with self._lock:
            owned, self._owned = self._owned, {}
        for fd in owned.values():  # none unless a job is stuck; the next start recovers it
            os.close(fd)

    # -- running -----------------------------------------------------------------------------------
    def _enqueue(self, job: Job, work: Callable[[Job], None]) -> None:
        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > MAX_KEPT:  # forget the oldest finished jobs
                done = sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.created)
                for old in done[: len(self._jobs) - MAX_KEPT]:
                    del self._jobs[old.id]
            queue = self._queues.setdefault(job.tenant, deque())
            if not queue:
                self._turns.append(job.tenant)
            queue.append((job, work))
        self._pool.submit(self._run_next)

    def _run_next(self) -> None:
        """Run the first waiting job of the tenant whose turn it is (one call per job enqueued; a job
        already run by `yield_turn` leaves a call with nothing to do)."""
        with self._lock:
            picked = self._pop_turn(exclude=set())
        if picked is not None:
            self._run(*picked)

    def _pop_turn(self, exclude: set[str]) -> tuple[Job, Callable[[Job], None]] | None:
        """Under the lock: the first waiting job of the first tenant in turn not in `exclude`; that tenant
        then goes last."""
        for tenant in list(self._turns):
            if tenant in exclude:
                continue
            self._turns.remove(tenant)
            queue = self._queues[tenant]
            picked = queue.popleft()
            if queue:
                self._turns.append(tenant)
            else:
                del self._queues[tenant]
            return picked
        return None

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        with self._lock:
            self._serving.append(job.tenant)
        try:
            self._run_one(job, work)
        finally:
            with self._lock:
                self._serving.pop()

    def _run_one(self, job: Job, work: Callable[[Job], None]) -> None:
        job.status = "running"
        job.attempts += 1
        if self.store is not None:
            job.results = _Results(job.results, lambda: self._save_quietly(job))
            self._save_quietly(job)
        try:
            work(job)
            job.status = "failed" if job.results and all(r["status"] == "failed" for r in job.results) else "done"
        except Exception:  # a bug: logged with its traceback, reported without internals
            log.exception("ingest job %s failed", job.id)
            job.status = "failed"
            job.error = "internal error during ingest"
        job.results = list(job.results)
        job.finished = time.time()
        if self.store is not None:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        """Save a finished job, give up its lock, prune old records."""
        self._save_quietly(job)
        with self._lock:
            fd = self._owned.pop(job.id, None)
        if fd is not None:
            self._release(job.id, fd)
        try:
            self._prune()
        except OSError:
            log.exception("cannot prune the job store")

    # -- store -------------------------------------------------------------------------------------
    def _path(self, job_id: str, suffix: str) -> Path:
        assert self.store is not None and _ID.fullmatch(job_id)
        return self.store / f"{job_id}{suffix}"

    def _save(self, job: Job) -> None:
        atomic_write_bytes(self._path(job.id, ".json"), json.dumps(job.to_record()).encode())

    def _save_quietly(self, job: Job) -> None:
        try:
            self._save(job)
        except (OSError, TypeError, ValueError):  # the job goes on; only its record lags behind
            log.exception("cannot save job %s", job.id)

    def _load(self, job_id: str) -> Job | None:
        try:
            job = Job.from_record(json.loads(self._path(job_id, ".json").read_bytes()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("unreadable job record %s: %s", job_id, exc)
            return None
        return job if job.id == job_id else None

    def _try_lock(self, job_id: str) -> int | None:
        """An fd holding the job's lock, or None when another open file (a live owner) holds it."""
        path = self._path(job_id, ".lock")
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:  # the owner deletes the file when done: make sure ours is still the one at the path
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)

    def _release(self, job_id: str, fd: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._path(job_id, ".lock"))
        os.close(fd)

    def _prune(self) -> None:
        """Keep at most MAX_KEPT finished records: drop the oldest (by last write) beyond that."""
        assert self.store is not None
        records = [p for p in self.store.glob("*.json") if _ID.fullmatch(p.stem)]
        excess = len(records) - MAX_KEPT
        if excess <= 0:
            return
        aged: list[tuple[float, Path]] = []
        for p in records:
            with contextlib.suppress(FileNotFoundError):
                aged.append((p.stat().st_mtime, p))
        for _, p in sorted(aged):
            if excess <= 0:
                break
            with self._lock:
                mine = p.stem in self._jobs and not self._jobs[p.stem].finished
            job = None if mine else self._load(p.stem)
            if job is not None and job.status not in _ACTIVE:
                for stale in (p, p.with_suffix(".lock")):  # a lock left by a crash right after finishing
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
                excess -= 1
