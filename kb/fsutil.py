"""Crash-safe file writes and the data-dir writer lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from kb.errors import StoreLockedError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file + fsync + rename, so readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


WRITER_WAIT_S = 120.0


@contextlib.contextmanager
def writer_lock(data_dir: Path, *, timeout: float = WRITER_WAIT_S) -> Iterator[None]:
    """One writer per data dir at a time. Writers hold it only for short commits (an ingest's slow
    stages run outside it), so a second writer waits up to `timeout` s, then gets a clear error."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".writer.lock", "w") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"another Glyph KB process has been writing to {data_dir} for over {timeout:g} s",
                        "try again when it is done, or use a separate KB_DATA_DIR",
                    ) from exc
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
