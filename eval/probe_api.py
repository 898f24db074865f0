"""Replay the issue-10 probes against a real `kb serve` on 127.0.0.1 and print probe / expected /
observed / verdict (BUG when observed differs). Exit status 1 when any probe is a BUG.

    .venv/bin/python eval/probe_api.py            # starts its own server (BM25 only: no models needed)
    .venv/bin/python eval/probe_api.py --keep     # leave the scratch data dir for a look

Each probe sends what an attacker would: no key with a huge body, a reader key on admin routes, bodies
over the route limits, colliding tenant/file names, lone surrogates, `k: true`, whitespace queries,
unknown routes, stray-end-tag HTML, a 10,001-entry DOCX, and a client that leaves a streamed answer (a slow
stand-in VLM on loopback, 40 chunks 0.2 s apart, must see its connection drop early). Sizes are declared,
not sent: a server that waited for the body would time out, which is itself the BUG.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ADMIN_A = "probe-admin-a-aaaaaaaaaaaa"
ADMIN_AB = "probe-admin-ab-bbbbbbbbbbb"
READER_A = "probe-reader-a-aaaaaaaaaaa"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_status(port: int, head: str) -> str:
    """Status of a request whose declared body is never sent (timeout = the server waited for it)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head.encode() + b"\r\n")
            data = s.recv(65536)
        return data.split(b" ", 2)[1].decode()
    except TimeoutError:
        return "timeout (waited for the body)"


def docx_with_entries(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(n):
            z.writestr(f"e{i}", b"")
    return buf.getvalue()


@dataclass
class Record:
    """One streamed request as the stand-in saw it."""

    sent: int = 0
    dropped_at: float | None = None  # when a write failed: the client went away
    finished: bool = False


class SlowVlm:
    """An OpenAI-compatible stand-in that streams 40 chunks 0.2 s apart and notes when its client left."""

    chunks, gap = 40, 0.2

    def __init__(self) -> None:
        self.current = Record()
        vlm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"data": [{"id": "slow"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                rec = vlm.current = Record()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for i in range(vlm.chunks):
                        piece = {"choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(piece)}\n\n".encode())
                        self.wfile.flush()
                        rec.sent = i + 1
                        time.sleep(vlm.gap)
                    self.wfile.write(b"data: [DONE]\n\n")
                    rec.finished = True
                except (BrokenPipeError, ConnectionResetError):
                    rec.dropped_at = time.monotonic()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def leave_early(self, c: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> str:
        """Read two events of a streamed answer, close the connection; what the stand-in saw."""
        self.current = Record()
        with c.stream("POST", path, json=body, headers=headers) as r:
            seen = 0
            for line in r.iter_lines():
                seen += line.startswith("data:")
                if seen == 2:
                    break
        left, rec = time.monotonic(), self.current
        while rec.dropped_at is None and not rec.finished and time.monotonic() < left + 5:
            time.sleep(0.05)
        if rec.dropped_at is not None and rec.dropped_at - left < 3 and rec.sent < self.chunks // 2:
            return "upstream dropped"
        return f"{rec.sent}/{self.chunks} chunks sent 5 s after the client left, finished={rec.finished}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the scratch data dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kb-probe-"))
    port = free_port()
    vlm = SlowVlm()
    keys = [
        {"key": ADMIN_A, "role": "admin", "tenants": ["a"]},
        {"key": ADMIN_AB, "role": "admin", "tenants": ["a-b"]},
        {"key": READER_A, "role": "reader", "tenants": ["a"]},
    ]
    env = {
        **os.environ,
        "KB_DATA_DIR": str(tmp / "data"),
        "KB_API_KEYS": json.dumps(keys),
        "KB_CLIP_MODEL": "",
        "KB_TEXT_MODEL": "",
        "KB_API_MAX_UPLOAD_MB": "1",
        "KB_API_MAX_FILES": "2",
        "KB_VLM_BACKEND": "openai",
        "KB_VLM_BASE_URL": vlm.url,
        "KB_VLM_MODEL": "slow",
        "KB_VLM_RETRIES": "0",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "serve", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, str, str, bool]] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                print("kb serve did not start", file=sys.stderr)
                return 2
            time.sleep(0.2)
        c = httpx.Client(base_url=base, timeout=120)

        def h(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        def probe(name: str, expected: str, run: Callable[[], str]) -> None:
            try:
                observed = run()
            except Exception as exc:  # a probe that crashes is reported, not fatal
                observed = f"{type(exc).__name__}: {exc}"
            rows.append((name, expected, observed, observed == expected))

        def wait(job: dict[str, object], key: str) -> dict[str, object]:
            for _ in range(1200):
                j = c.get(f"/v1/jobs/{job['id']}", headers=h(key)).json()
                if j["status"] in ("done", "failed"):
                    return dict(j)
                time.sleep(0.1)
            return dict(j)

        def upload(key: str, name: str, data: bytes) -> httpx.Response:
            return c.post("/v1/documents", headers=h(key), files=[("files", (name, data, "application/octet-stream"))])

        search_head = "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        probe("200 MB JSON, no key", "401", lambda: raw_status(port, search_head + "Content-Length: 200000000\r\n"))
        up_head = "POST /v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        probe("100 MB upload, no key", "401", lambda: raw_status(port, up_head + "Content-Length: 100000000\r\n"))
        probe(
            "100 MB upload, reader key",
            "403",
            lambda: raw_status(port, up_head + f"Authorization: Bearer {READER_A}\r\nContent-Length: 100000000\r\n"),
        )
        probe(
            "5 MB upload over 1 MB x 2 files",
            "413",
            lambda: raw_status(port, up_head + f"Authorization: Bearer {ADMIN_A}\r\nContent-Length: 5000000\r\n"),
        )
        probe(
            "2 MB JSON with a key",
            "413",
            lambda: raw_status(port, search_head + f"Authorization: Bearer {READER_A}\r\nContent-Length: 2000000\r\n"),
        )

        def collide() -> str:
            a = wait(upload(ADMIN_A, "b--c.md", b"# A\n\ntenant a text\n").json(), ADMIN_A)
            b = wait(upload(ADMIN_AB, "c.md", b"# AB\n\ntenant a-b text\n").json(), ADMIN_AB)
            ids = [r["document"] for j in (a, b) for r in j["results"]]  # type: ignore[attr-defined]
            listed = [d["id"] for d in c.get("/v1/documents", headers=h(READER_A)).json()["documents"]]
            return "distinct, both kept" if len(set(ids)) == 2 and ids[0] in listed else f"ids {ids}, a lists {listed}"

        probe("tenant a 'b--c.md' vs tenant a-b 'c.md'", "distinct, both kept", collide)

        def unicode_names() -> str:
            ids = [
                r["document"]
                for n in ("報告.md", "議事録.md")
                for r in wait(upload(ADMIN_A, n, f"# {n}\n\ntext\n".encode()).json(), ADMIN_A)["results"]  # type: ignore[attr-defined]
            ]
            return "two documents" if len(set(ids)) == 2 else f"ids {ids}"

        probe("'報告.md' then '議事録.md'", "two documents", unicode_names)

        def one_line() -> str:
            j = wait(upload(ADMIN_A, "oneline.txt", b"z" * 100_000).json(), ADMIN_A)
            return str(j["status"])

        probe("100 KB one-line .txt ingests", "done", one_line)

        def fair_queue() -> str:
            text = "\n\n".join(f"Paragraph {i}: " + " ".join(f"word{i}x{j}" for j in range(60)) for i in range(1500))
            batch = c.post(
                "/v1/documents",
                headers=h(ADMIN_AB),
                files=[("files", (f"big{i}.txt", text.encode()[:900_000], "text/plain")) for i in range(2)],
            ).json()
            single = wait(upload(ADMIN_A, "small.md", b"# Small\n\nA short note.\n").json(), ADMIN_A)
            big = wait(batch, ADMIN_AB)
            if single["status"] != "done" or big["status"] != "done":
                return f"single {single['status']}, batch {big['status']}"
            return "single first" if float(single["finished"]) < float(big["finished"]) else "single waited for the batch"  # type: ignore[arg-type]

        probe("tenant a's file vs tenant a-b's 2-file batch", "single first", fair_queue)

        def post(path: str, body: str) -> str:
            r = c.post(path, headers={**h(READER_A), "Content-Type": "application/json"}, content=body.encode())
            return str(r.status_code) + ("" if "error" in r.json() else " (no error shape)")

        probe(
            "lone surrogate in chat content",
            "422",
            lambda: post("/v1/chat/completions", '{"messages":[{"role":"user","content":"hi \\ud800"}]}'),
        )
        probe(
            "1.1 MB chat message",
            "413",
            lambda: post(
                "/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "x" * 1_100_000}]})
            ),
        )
        probe(
            "100 KB chat question",
            "422",
            lambda: post(
                "/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "x" * 100_000}]})
            ),
        )
        probe("k: true", "422", lambda: post("/v1/search", '{"query": "x", "k": true}'))
        probe("whitespace query", "422", lambda: post("/v1/search", '{"query": "   "}'))
        probe(
            "signals [image] with CLIP off",
            "422",
            lambda: post("/v1/search", '{"query": "text", "signals": ["image"]}'),
        )
        probe(
            "unknown /v1 route",
            "404",
            lambda: (
                str(c.get("/v1/nope", headers=h(READER_A)).status_code)
                + ("" if "error" in c.get("/v1/nope", headers=h(READER_A)).json() else " (detail shape)")
            ),
        )

        def stray_tags() -> str:
            return str(
                upload(ADMIN_A, "deep.html", b"<html><body>" + b"<div></x>" * 3000 + b"hi</body></html>").status_code
            )

        probe("HTML depth via stray end tags", "422", stray_tags)

        def many_entries() -> str:
            r = upload(ADMIN_A, "many.docx", docx_with_entries(10_001))
            return f"{r.status_code} {'entries' if 'entries' in r.text else 'wrong message'}"

        probe("DOCX with 10,001 entries", "413 entries", many_entries)

        def other_tenant_doc() -> str:
            return str(c.get("/v1/documents/a-b--c.md", headers=h(READER_A)).status_code)

        probe("read another tenant's document", "404", other_tenant_doc)
        question = "tenant a text"
        probe(
            "client leaves /v1/ask stream",
            "upstream dropped",
            lambda: vlm.leave_early(c, "/v1/ask", {"question": question, "stream": True}, h(READER_A)),
        )
        chat = {"stream": True, "messages": [{"role": "user", "content": question}]}
        probe(
            "client leaves chat stream",
            "upstream dropped",
            lambda: vlm.leave_early(c, "/v1/chat/completions", chat, h(READER_A)),
        )
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        vlm.server.shutdown()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    w = max(len(r[0]) for r in rows)
    print(f"| {'probe':<{w}} | expected | observed | verdict |")
    print(f"|{'-' * (w + 2)}|---|---|---|")
    for name, exp, obs, ok in rows:
        print(f"| {name:<{w}} | {exp} | {obs} | {'ok' if ok else 'BUG'} |")
    bugs = sum(not r[3] for r in rows)
    print(f"\n{len(rows)} probes, {bugs} BUG")
    return 1 if bugs else 0


if __name__ == "__main__":
    raise SystemExit(main())
