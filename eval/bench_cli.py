"""How long the everyday `kb` commands take, as a user runs them.

    .venv/bin/python eval/bench_cli.py [--runs 5]

In a scratch copy of examples/ (no KB_* settings, as on a fresh machine) it ingests the examples, then
times, each as the median of --runs fresh processes:
  - `python -c "import kb"` (the interpreter and the package: the floor), `kb --help` and `kb docs`
    (answered by the standard-library fast lane, kb/cli/_fast.py), and `kb docs` by the full typer path;
  - a cold local `kb search` (a new process: imports, opening the store, loading the text model);
  - `kb search` through a running `kb serve` (KB_SERVER_URL; the server keeps the models loaded).

The code measured is this checkout's (PYTHONPATH), run through the venv's `kb` script. Bytecode is cached
as on an installed package (PYTHONDONTWRITEBYTECODE is dropped) and each command runs once untimed first,
so no figure pays for compiling or a cold file cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "p99 latency of POST /payments"
KEY = "bench-cli-admin-key-0123456789"


def kb_command() -> list[str]:
    script = Path(sys.executable).parent / "kb"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "kb.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KB_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)
    return {**env, **extra}


def timed(cmd: list[str], cwd: Path, env: dict[str, str], runs: int) -> float:
    """Median wall seconds of `runs` fresh processes (each must succeed), after one untimed run."""
    return timed_together([cmd], cwd, env, runs)[0]


def timed_together(cmds: list[list[str]], cwd: Path, env: dict[str, str], runs: int) -> list[float]:
    """Median wall seconds of each command over `runs` rounds that run every command once, after one untimed
    round: a burst of load from elsewhere on the machine lands on all of them alike."""
    times: list[list[float]] = [[] for _ in cmds]
    for n in range(runs + 1):
        for cmd, ts in zip(cmds, times, strict=True):
            t0 = time.perf_counter()
            res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
            if n:
                ts.append(time.perf_counter() - t0)
            if res.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return [statistics.median(ts) for ts in times]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    kb = kb_command()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "examples", work / "examples")
        env = clean_env(COLUMNS="120")
        subprocess.run([*kb, "ingest", "examples/docs"], cwd=work, env=env, check=True, capture_output=True)

        floor, help_s, docs_s = timed_together(
            [[sys.executable, "-c", "import kb"], [*kb, "--help"], [*kb, "docs"]], work, env, args.runs
        )
        full_docs = timed([*kb, "docs"], work, clean_env(COLUMNS="120", KB_FAST_LANE="0"), args.runs)
        cold = timed([*kb, "search", QUESTION], work, env, max(1, args.runs // 2))

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        keys = json.dumps([{"key": KEY, "role": "admin", "tenants": ["default"]}])
        server = subprocess.Popen(
            [*kb, "serve", "--port", str(port), "--no-access-log"],
            cwd=work,
            env=clean_env(KB_API_KEYS=keys),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client_env = clean_env(COLUMNS="120", KB_SERVER_URL=url, KB_SERVER_KEY=KEY)
            deadline = time.monotonic() + 300
            while True:  # up, and the models loaded by a first search
                if (
                    subprocess.run([*kb, "search", QUESTION], cwd=work, env=client_env, capture_output=True).returncode
                    == 0
                ):
                    break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("kb serve did not come up")
                time.sleep(0.5)
            remote = timed([*kb, "search", QUESTION], work, client_env, args.runs)
        finally:
            server.terminate()
            server.wait(60)

    print(f"median of {args.runs} runs, {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
    print("| command | seconds | target |")
    print("|---|---|---|")
    print(f'| `python -c "import kb"` (floor) | {floor:.3f} | |')
    print(f"| `kb --help` | {help_s:.3f} ({help_s / floor:.2f}× the floor) | ≤ 1.5× |")
    print(f"| `kb docs` | {docs_s:.3f} ({docs_s / floor:.2f}× the floor) | ≤ 1.5× |")
    print(f"| `kb docs` by the full typer path (KB_FAST_LANE=0), for reference | {full_docs:.3f} | |")
    print(f"| `kb search` cold, local | {cold:.2f} | ≤ 8 s |")
    print(f"| `kb search` via a running `kb serve` | {remote:.2f} | ≤ 1 s |")


if __name__ == "__main__":
    main()
