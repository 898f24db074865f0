"""eval/probe_api.py against a real `kb serve` on loopback reports no BUG (issue 10: the probe runs in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_probe_api_reports_no_bug() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(
        [sys.executable, str(ROOT / "eval" / "probe_api.py")], env=env, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0 and "0 BUG" in r.stdout, r.stdout + r.stderr
