"""`kb ui` as a real process on a free loopback port, for the browser tests (chat, compare, the first page)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.test_answer_openai import free_port


@contextlib.contextmanager
def running_ui(env: Mapping[str, str], cwd: Path, *, start_s: float = 90) -> Iterator[str]:
    """Start `kb ui` with os.environ plus `env` (no KB_CONFIG), wait for its health check, yield its URL; the
    log goes to cwd/ui.log and is shown when it does not start within `start_s`."""
    port = free_port()
    full = {**os.environ, **env}
    full.pop("KB_CONFIG", None)
    log_path = cwd / "ui.log"
    log = log_path.open("wb")
    cmd = [sys.executable, "-m", "kb.cli", "ui", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=full, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"kb ui did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
