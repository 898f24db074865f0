"""Ingest workers: the slow stage of ingest (parse, render, embed) in separate processes.

The process that owns the index only commits (index write + manifest switch), so a burst of
uploads cannot stall searches on the GIL, several files are prepared at once on machines with
cores to spare, and a parser that crashes or exhausts memory takes down a worker, not the server.
Workers run at a lower CPU priority than the requests of the process that started them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ingest.pipeline import Ingestor, PreparedDoc
from kb.catalog import DocumentRecord
from kb.errors import KbError
from kb.images import open_image_store
from kb.settings import Settings

log = logging.getLogger(__name__)

WORKER_NICE = 10

_ingestor: Ingestor | None = None


def _exit_with_parent(parent: int) -> None:
    """A worker holds its task queue open itself, so it would outlive a parent killed with -9 (and keep
    its models in memory); it checks once a second and exits when the parent is gone."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _init(settings: Settings, index: bool, nice: int, torch_threads: int, parent: int) -> None:
    global _ingestor
    threading.Thread(target=_exit_with_parent, args=(parent,), name="kb-parent-watch", daemon=True).start()
    if nice:
        with contextlib.suppress(OSError):  # not permitted: run at normal priority
            os.nice(nice)
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    embedders = None
    if index:
        from kb.embed.factory import build_embedders

        embedders = build_embedders(settings)
    _ingestor = Ingestor(settings, None, open_image_store(settings), embedders=embedders)


def _prepare(path: str, sha: str, nbytes: int, old: str | None, tags: list[str]) -> PreparedDoc | tuple[str, str, str]:
    """In a worker. A KbError comes back as (class name, message, hint): its pickled form drops the hint."""
    assert _ingestor is not None
    try:
        rec = DocumentRecord.model_validate_json(old) if old else None
        return _ingestor.prepare(Path(path), sha, nbytes, rec, tags)
    except KbError as exc:
        return (type(exc).__name__, exc.message, exc.hint)


class PreparePool:
    """`prepare(path, sha, nbytes, old, tags)` for `Ingestor.ingest_file`, run in worker processes."""

    def __init__(self, settings: Settings, *, workers: int = 1, index: bool = True, nice: int = WORKER_NICE) -> None:
        self.settings = settings
        self.workers = max(1, workers)
        self.index = index
        self.nice = nice
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
                    initargs=(self.settings, self.index, self.nice, 1 if self.workers > 1 else 0, os.getpid()),
                )
            return self._pool

    def submit(
        self, path: Path, sha: str, nbytes: int, old: DocumentRecord | None, tags: list[str]
    ) -> Future[PreparedDoc | tuple[str, str, str]]:
        return self._executor().submit(_prepare, str(path), sha, nbytes, old.model_dump_json() if old else None, tags)

    def __call__(self, path: Path, sha: str, nbytes: int, old: DocumentRecord | None, tags: list[str]) -> PreparedDoc:
        try:
            out = self.submit(path, sha, nbytes, old, tags).result()
        except BrokenProcessPool:
            self._reset()
            raise KbError(
                f"the ingest worker died while processing {path.name} (out of memory, or a crash in a parser)",
                "check the file; it was not ingested, and nothing else was affected",
            ) from None
        if isinstance(out, tuple):
            raise _error(*out)
        return out

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
