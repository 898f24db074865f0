"""Crash-safe file writes and the data-dir writer lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
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


@contextlib.contextmanager
def writer_lock(data_dir: Path, *, wait: bool = False) -> Iterator[None]:
    """One writer per data dir; a second one gets a clear error instead of racing."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".writer.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise StoreLockedError(
                f"another Glyph KB process is writing to {data_dir}",
                "wait for it to finish, or use a separate KB_DATA_DIR",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
