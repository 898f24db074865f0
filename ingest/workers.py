"""Worker processes for the slow stage of ingest (parse, render, embed), whatever that stage is.

The process that owns the index only commits (index write + manifest switch), so a burst of
uploads cannot stall searches on the GIL, several files are prepared at once on machines with
cores to spare, and a parser that crashes or exhausts memory takes down a worker, not the server.
Workers run at a lower CPU priority than the requests of the process that started them.

This module knows nothing of what a worker computes: the service passes a `setup` function (run once
per worker, e.g. loading models) and calls module-level functions with `run`; both must be importable
by name (spawned workers import them).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from kb.errors import KbError

log = logging.getLogger(__name__)

WORKER_NICE = 10
T = TypeVar("T")


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


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """In a worker. A KbError comes back as a `_Failure`: its own pickled form drops the hint."""
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

    def run(self, fn: Callable[..., T], *args: Any, what: str = "a file") -> T:
        """`fn(*args)` in a worker; its KbError is raised here with type and hint; a dead worker is a KbError."""
        try:
            out = self.submit(fn, *args).result()
        except BrokenProcessPool:
            self._reset()
            raise KbError(
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
