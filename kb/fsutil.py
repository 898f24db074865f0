"""Crash-safe file writes and the data-dir writer lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
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
HOLDER_FILE = ".kb-holder.json"


def holder_record() -> str:
    """Who this process is, for a lock another process may wait on: pid and command line."""
    return json.dumps({"pid": os.getpid(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_holder(raw: str) -> str:
    """`holder_record()` text as words: "process 1234 (kb ui --port 8501)", or "" if unknown or gone."""
    try:
        rec = json.loads(raw)
        pid, command = int(rec["pid"]), str(rec["command"])
    except (ValueError, KeyError, TypeError):
        return ""
    return f"process {pid} ({command})" if pid != os.getpid() and _alive(pid) else ""


def record_store_holder(store: Path) -> None:
    """Note in the embedded store's folder which process opened it (local mode allows one)."""
    with contextlib.suppress(OSError):
        (store / HOLDER_FILE).write_text(holder_record())


def store_holder(store: Path) -> str:
    try:
        return describe_holder((store / HOLDER_FILE).read_text())
    except OSError:
        return ""


@contextlib.contextmanager
def writer_lock(data_dir: Path, *, timeout: float = WRITER_WAIT_S) -> Iterator[None]:
    """One writer per data dir at a time. Writers hold it only for short commits (an ingest's slow
    stages run outside it), so a second writer waits up to `timeout` s, then gets a clear error."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".writer.lock", "a+") as f:  # not "w": a waiter must not wipe the holder's record
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    f.seek(0)
                    who = describe_holder(f.read()) or "another Glyph KB process"
                    raise StoreLockedError(
                        f"{who} has been writing to {data_dir} for over {timeout:g} s",
                        "try again when it is done, stop that process, or use a separate KB_DATA_DIR",
                    ) from exc
                time.sleep(0.05)
        f.seek(0)
        f.truncate()
        f.write(holder_record())
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
