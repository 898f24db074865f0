"""Worker processes for the slow stage of ingest (parse, render, embed), whatever that stage is.

The process that owns the index only commits (index write + manifest switch), so a burst of
uploads cannot stall searches on the GIL, several files are prepared at once on machines with
cores to spare, and a parser that crashes or exhausts memory takes down a worker, not the server.
Workers run at a lower CPU priority than the requests of the process that started them.

`run` can bound one call: past `seconds` of wall time, or once the worker's resident memory passes
`memory_mb`, the parent kills that worker and raises `BudgetExceededError`; a worker that dies of itself
raises `WorkerLostError`. Either way the caller cleans up what the call had written.

This module knows nothing of what a worker computes: the service passes a `setup` function (run once
per worker, e.g. loading models) and calls module-level functions with `run`; both must be importable
by name (spawned workers import them).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from kb.errors import KbError

log = logging.getLogger(__name__)

WORKER_NICE = 10
POLL_S = 0.05  # how often the parent checks a bounded call's time and memory
T = TypeVar("T")


class WorkerLostError(KbError):
    """The worker running a call died (killed by the kernel, a crash in a parser) or was killed."""


class BudgetExceededError(WorkerLostError):
    """A call went past its wall-time or memory budget, so its worker was killed."""


def _exit_with_parent(parent: int) -> None:
    """A worker holds its task queue open itself, so it would outlive a parent killed with -9 (and keep
    its models in memory); it checks once a second and exits when the parent is gone."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _init(setup: Callable[..., None], args: tuple[Any, ...], nice: int, torch_threads: int, parent: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent,), name="kb-parent-watch", daemon=True).start()
    if nice:
        with contextlib.suppress(OSError):  # not permitted: run at normal priority
            os.nice(nice)
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    setup(*args)


def _call(fn: Callable[..., Any], args: tuple[Any, ...], ticket: str | None = None) -> Any:
    """In a worker. A KbError comes back as a `_Failure`: its own pickled form drops the hint.
    `ticket`: a file that gets this worker's pid, so the parent can watch (and kill) the call's worker."""
    if ticket:
        Path(ticket).write_text(str(os.getpid()))
    try:
        return fn(*args)
    except KbError as exc:
        return _Failure(type(exc).__name__, exc.message, exc.hint)


@dataclass(frozen=True)
class _Failure:
    """A KbError raised in a worker: class name, message, hint."""

    name: str
    message: str
    hint: str


class WorkerPool:
    """A lazily started pool of spawned, niced worker processes; `run(fn, *args)` calls `fn` in one."""

    def __init__(
        self,
        setup: Callable[..., None],
        setup_args: tuple[Any, ...] = (),
        *,
        workers: int = 1,
        nice: int = WORKER_NICE,
        torch_threads: int | None = None,
    ) -> None:
        self.workers = max(1, workers)
        self.nice = nice
        self._setup = setup
        self._setup_args = setup_args
        # several workers share the cores: one torch thread each; one worker may use torch's default
        self._torch_threads = (1 if self.workers > 1 else 0) if torch_threads is None else torch_threads
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn: a fork of a process with torch and request threads running is not safe
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init,
                    initargs=(self._setup, self._setup_args, self.nice, self._torch_threads, os.getpid()),
                )
            return self._pool

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[Any]:
        return self._executor().submit(_call, fn, args)

    def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        what: str = "a file",
        seconds: float | None = None,
        memory_mb: float | None = None,
    ) -> T:
        """`fn(*args)` in a worker; its KbError is raised here with type and hint. A worker that dies is a
        `WorkerLostError`; one past `seconds` (from the call's start in the worker) or `memory_mb` (resident)
        is killed: `BudgetExceededError`."""
        breach: str | None = None
        with tempfile.TemporaryDirectory(prefix="kb-call-") as tmp:
            ticket = Path(tmp) / "pid"
            future = self._executor().submit(_call, fn, args, str(ticket) if seconds or memory_mb else None)
            started: float | None = None
            try:
                while True:
                    try:
                        out = future.result(timeout=POLL_S if seconds or memory_mb else None)
                        break
                    except FutureTimeout:
                        pass
                    pid = _read_pid(ticket)
                    if pid is None or breach is not None:
                        continue  # not started yet, or killed and waiting for the pool to notice
                    started = started or time.monotonic()
                    if seconds and time.monotonic() - started > seconds:
                        breach = f"{what} took longer than {seconds:g} s to process (the per-file time budget)"
                    elif memory_mb and _rss_mb(pid) > memory_mb:
                        breach = f"{what} needed more than {memory_mb:g} MB of memory to process (the per-file budget)"
                    if breach is not None:
                        log.warning("killing ingest worker %d: %s", pid, breach)
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
            except BrokenProcessPool:
                self._reset()
                if breach is not None:
                    raise BudgetExceededError(
                        breach, "it was not ingested; split the file, or ask the operator to raise the budget"
                    ) from None
                raise WorkerLostError(
                    f"the ingest worker died while processing {what} (out of memory, or a crash in a parser)",
                    "check the file; it was not ingested, and nothing else was affected",
                ) from None
        if isinstance(out, _Failure):
            raise _error(out.name, out.message, out.hint)
        return cast(T, out)

    def _reset(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _error(name: str, message: str, hint: str) -> KbError:
    import kb.errors as errors

    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, KbError)):
        cls = KbError
    return cls(message, hint)


def _read_pid(ticket: Path) -> int | None:
    try:
        return int(ticket.read_text())
    except (OSError, ValueError):  # not written yet (or half-written)
        return None


def _rss_mb(pid: int) -> float:
    """Resident memory of `pid` in MB (0 when it is gone or /proc is missing)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0
