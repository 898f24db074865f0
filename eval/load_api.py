"""Load test for the HTTP API: N concurrent clients for a bounded time against `kb serve` on 127.0.0.1.

    python eval/load_api.py [--clients 16] [--duration 30] [--mix search=70,ask=20,upload=10]
                            [--url http://127.0.0.1:8000 --key KEY [--tenant T]] [--workdir DIR] [--s3]

Without --url it starts `kb serve` itself on a free port with a scratch data dir (tiny random CLIP from
tests/tiny_models and the bundled MiniLM, on the CPU), an admin key for tenant `load`, and an in-process fake
OpenAI-compatible VLM (tests/test_answer_openai.FakeVlm) as the ask backend; it uploads examples/docs and waits
for them to be ingested before the clock starts. Each client loops over a weighted random mix of
`POST /v1/search`, `POST /v1/ask` (JSON) and `POST /v1/documents` (a small unique Markdown file). At the end it
waits for the uploads' ingest jobs and counts failed jobs as errors.

--s3 keeps the glyph images in an S3 bucket instead of the data dir: it starts moto's S3 server on loopback
(another process) and points KB_IMAGE_STORE_URL at it, so every ask reads its images over HTTP.

Prints throughput and p50/p95/p99 latency per operation, and every error. Exit status 1 when there were errors.
Target: 0 errors and search p95 under 300 ms at 16 clients on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = [
    "payments latency",
    "p99 latency budget",
    "incident severity levels",
    "who is paged for a sev1 incident",
    "refund endpoint",
    "rate limits per API key",
    "idempotency key",
    "webhook retries",
    "postmortem deadline",
    "authentication header",
]
WORDS = [
    "p95",
    "timeout",
    "retry",
    "owner",
    "escalation",
    "sla",
    "budget",
    "region",
    "outage",
    "audit",
    "token",
    "header",
    "status",
    "code",
    "limit",
    "window",
    "burst",
    "quota",
    "refund",
    "partial",
    "currency",
    "ledger",
    "settlement",
    "webhook",
    "signature",
    "replay",
    "clock",
    "skew",
]
KEY = "load-admin-key-aaaaaaaaaaaa"


def make_query(rng: random.Random) -> str:
    """A question that is almost never repeated, so nothing the server might cache flatters the figures."""
    return f"{rng.choice(QUERIES)} {rng.choice(WORDS)} {rng.choice(WORDS)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def wait_job(c: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = c.get(f"/v1/jobs/{job_id}")
        r.raise_for_status()
        j = dict(r.json())
        if j["status"] in ("done", "failed") or time.monotonic() > deadline:
            return j
        time.sleep(0.1)


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited; see {log}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"{what} did not start in 120 s")
        time.sleep(0.2)


def start_s3(workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """moto's S3 server on a free loopback port, with a bucket; returns it and the app's env for it."""
    port = free_port()
    log = workdir / "s3.log"
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(endpoint, proc, "moto_server", log)
    httpx.put(f"{endpoint}/glyph-kb").raise_for_status()  # create the bucket
    opts = {"endpoint_url": endpoint, "key": "load", "secret": "load", "client_kwargs": {"region_name": "us-east-1"}}
    return proc, {"KB_IMAGE_STORE_URL": "s3://glyph-kb/load/images", "KB_IMAGE_STORE_OPTIONS": json.dumps(opts)}


def start_server(workdir: Path, vlm_url: str, extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    from tests.tiny_models import build_tiny_clip

    cfg, ckpt = build_tiny_clip(workdir / "clip")
    port = free_port()
    env = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "KB_DATA_DIR": str(workdir / "data"),
        "KB_CLIP_MODEL": "glyph-tiny-clip",
        "KB_CLIP_PRETRAINED": str(ckpt),
        "KB_CLIP_MODEL_CONFIG": str(cfg),
        "KB_TEXT_MODEL": "minilm-bundled",
        "KB_DEVICE": "cpu",
        "KB_VLM_BACKEND": "openai",
        "KB_VLM_BASE_URL": vlm_url,
        "KB_VLM_MODEL": "fake-vlm",
        "KB_VLM_RETRIES": "0",
        "KB_API_KEYS": json.dumps([{"key": KEY, "role": "admin", "tenants": ["load"]}]),
        **extra,
    }
    log = open(workdir / "serve.log", "wb")  # noqa: SIM115 - kept open for the server's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc, "kb serve", workdir / "serve.log")
    return proc, url


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    ap.add_argument("--mix", default="search=70,ask=20,upload=10", help="relative weights per operation")
    ap.add_argument("--url", help="target a running kb serve instead of starting one")
    ap.add_argument("--key", default=KEY, help="admin API key (with --url)")
    ap.add_argument("--tenant", help="X-KB-Tenant header, for keys bound to several tenants")
    ap.add_argument("--workdir", type=Path, help="scratch dir (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--s3", action="store_true", help="images in an S3 bucket (moto on loopback)")
    args = ap.parse_args()

    mix = {k: float(v) for k, v in (p.split("=") for p in args.mix.split(","))}
    unknown = set(mix) - {"search", "ask", "upload"}
    if unknown:
        ap.error(f"unknown operations in --mix: {sorted(unknown)}")

    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="kb-load-")
    workdir = args.workdir or Path(tmp.name)  # type: ignore[union-attr]
    workdir.mkdir(parents=True, exist_ok=True)
    vlm = proc = s3 = None
    headers = {"Authorization": f"Bearer {args.key}"}
    if args.tenant:
        headers["X-KB-Tenant"] = args.tenant
    try:
        if args.url:
            url = args.url.rstrip("/")
        else:
            from tests.test_answer_openai import FakeVlm

            vlm = FakeVlm()
            extra: dict[str, str] = {}
            if args.s3:
                s3, extra = start_s3(workdir)
            proc, url = start_server(workdir, vlm.url, extra)
            t0 = time.monotonic()
            with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
                files = [
                    ("files", (p.name, p.read_bytes(), "application/octet-stream"))
                    for p in sorted((ROOT / "examples" / "docs").iterdir())
                ]
                r = c.post("/v1/documents", files=files, data={"tags": ["examples"]})
                r.raise_for_status()
                j = wait_job(c, r.json()["id"], 300)
                if j["status"] != "done":
                    raise SystemExit(f"ingesting examples/docs failed: {j}")
            print(f"server {url} ready, examples/docs ingested in {time.monotonic() - t0:.1f} s", flush=True)

        lat: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        jobs: list[str] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + args.duration
        ops, weights = list(mix), list(mix.values())
        counter = iter(range(10**9))

        def client(n: int) -> None:
            rng = random.Random(args.seed * 1000 + n)
            with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
                while time.monotonic() < stop_at:
                    op = rng.choices(ops, weights)[0]
                    t = time.perf_counter()
                    try:
                        if op == "search":
                            r = c.post("/v1/search", json={"query": make_query(rng), "k": 5})
                            ok = r.status_code == 200 and isinstance(r.json().get("hits"), list)
                        elif op == "ask":
                            r = c.post("/v1/ask", json={"question": make_query(rng) + "?"})
                            ok = r.status_code == 200 and bool(r.json().get("answer"))
                        else:
                            i = next(counter)
                            body = f"# Load note {n}-{i}\n\nNote {i} from client {n}: payments latency drill.\n"
                            r = c.post(
                                "/v1/documents",
                                files=[("files", (f"load-{n}-{i}.md", body.encode(), "text/markdown"))],
                            )
                            ok = r.status_code == 202
                            if ok:
                                with lock:
                                    jobs.append(r.json()["id"])
                        dt = time.perf_counter() - t
                        with lock:
                            if ok:
                                lat[op].append(dt)
                            else:
                                errors.append(f"{op}: HTTP {r.status_code} {r.text[:200]}")
                    except (httpx.HTTPError, ValueError) as exc:
                        with lock:
                            errors.append(f"{op}: {type(exc).__name__}: {exc}")

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.monotonic() - t0

        failed_jobs = 0
        t1 = time.monotonic()
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            for jid in jobs:
                j = wait_job(c, jid, max(5.0, 180 - (time.monotonic() - t1)))
                if j["status"] != "done":
                    failed_jobs += 1
                    errors.append(f"upload job {jid}: {j['status']} {j.get('error') or ''}")
        drain = time.monotonic() - t1

        total = sum(len(v) for v in lat.values())
        print(f"\n{args.clients} clients, {elapsed:.1f} s, mix {args.mix}")
        print(f"{'operation':<10}{'ok':>7}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for op in ops:
            xs = [x * 1000 for x in lat.get(op, [])]
            print(
                f"{op:<10}{len(xs):>7}{len(xs) / elapsed:>9.1f}{pct(xs, 50):>9.0f}{pct(xs, 95):>9.0f}"
                f"{pct(xs, 99):>9.0f}{max(xs, default=float('nan')):>9.0f}"
            )
        print(f"{'all':<10}{total:>7}{total / elapsed:>9.1f}")
        print(f"upload jobs: {len(jobs)} accepted, {len(jobs) - failed_jobs} ingested ({drain:.1f} s to drain)")
        print(f"errors: {len(errors)}")
        for e in errors[:20]:
            print("  " + e)
        search_p95 = pct([x * 1000 for x in lat.get("search", [])], 95)
        if "search" in mix:
            verdict = "met" if not errors and search_p95 < 300 else "NOT met"
            print(f"target (0 errors, search p95 < 300 ms): {verdict}")
        return 1 if errors else 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if s3 is not None:
            s3.terminate()
            s3.wait(20)
        if vlm is not None:
            vlm.close()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
