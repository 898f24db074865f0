"""A client that leaves a streamed answer cancels the model's work (issue 10, item 7).

The real API on uvicorn (127.0.0.1) in front of a real OpenAI-compatible stand-in that streams 40 chunks 0.2 s
apart and records how many it sent before its connection dropped. An httpx client reads two events of
`/v1/ask` (SSE) or `/v1/chat/completions` (stream=true), then goes away: the stand-in must see the drop within a
few seconds, long before its 40th chunk. The in-process transformers backend: see test_answer_hf.py.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from kb.api import create_app
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.test_answer_openai import free_port
from tests.tiny_models import settings_fields

MODEL = "stand-in/slow-vlm"
KEY = "reader-key-cancel-aaaaaa"
ADMIN = "admin-key-cancel-aaaaaaa"
CHUNKS = 40
GAP = 0.2


@dataclass
class Record:
    """One streamed request as the stand-in saw it."""

    sent: int = 0
    dropped_at: float | None = None  # when a write failed: the client went away
    finished: bool = False


class SlowVlm:
    """Streams CHUNKS chat-completion chunks GAP seconds apart; notes when a write fails (the client left)."""

    def __init__(self) -> None:
        self.current = Record()
        self.started = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                rec = fake.current = Record()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                fake.started.set()
                try:
                    for i in range(CHUNKS):
                        piece = {"choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(piece)}\n\n".encode())
                        self.wfile.flush()
                        rec.sent = i + 1
                        time.sleep(GAP)
                    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                    self.wfile.flush()
                    rec.finished = True
                except (BrokenPipeError, ConnectionResetError):
                    rec.dropped_at = time.monotonic()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def vlm() -> Iterator[SlowVlm]:
    f = SlowVlm()
    yield f
    f.close()


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str], shared_embedders: Any, vlm: SlowVlm
) -> Iterator[str]:
    import uvicorn

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("cancel") / "data",
        vlm_backend="openai",
        vlm_base_url=vlm.url,
        vlm_model=MODEL,
        vlm_retries=0,
        vlm_timeout=10.0,
        api_keys=[
            {"key": KEY, "role": "reader", "tenants": ["acme"]},
            {"key": ADMIN, "role": "admin", "tenants": ["acme"]},
        ],
        **settings_fields(model_env),
    )
    kb = KnowledgeBase(settings, embedders=shared_embedders)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(kb), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        doc = b"# Payments\n\nThe p99 latency of POST /payments MUST be below 200 ms.\n"
        r = httpx.post(
            f"{base}/v1/documents",
            headers={"Authorization": f"Bearer {ADMIN}"},
            files=[("files", ("payments.md", doc, "text/markdown"))],
            timeout=60,
        )
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        deadline = time.monotonic() + 300
        while True:
            j = httpx.get(f"{base}/v1/jobs/{job}", headers={"Authorization": f"Bearer {ADMIN}"}).json()
            if j["status"] in ("done", "failed"):
                assert j["status"] == "done", j
                break
            assert time.monotonic() < deadline, "ingest did not finish"
            time.sleep(0.1)
        yield base
    finally:
        server.should_exit = True
        t.join(timeout=10)
        kb.close()


def leave_after_two_events(url: str, body: dict[str, Any]) -> float:
    """Open the stream, read two `data:` events, close the client; returns when it left."""
    with (
        httpx.Client(timeout=30) as c,
        c.stream("POST", url, json=body, headers={"Authorization": f"Bearer {KEY}"}) as r,
    ):
        assert r.status_code == 200, r.read()
        seen = 0
        for line in r.iter_lines():
            if line.startswith("data:"):
                seen += 1
                if seen == 2:
                    break
        assert seen == 2
    return time.monotonic()


def assert_upstream_cancelled(rec: Record, left: float) -> None:
    while rec.dropped_at is None and not rec.finished and time.monotonic() < left + 5:
        time.sleep(0.05)
    assert not rec.finished, "the stand-in streamed all its chunks: the upstream request was not cancelled"
    assert rec.dropped_at is not None, f"the stand-in was still streaming 5 s after the client left ({rec.sent} sent)"
    assert rec.dropped_at - left < 3, f"the upstream saw the drop {rec.dropped_at - left:.1f}s after the client left"
    assert rec.sent < CHUNKS // 2, rec.sent


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/ask", {"question": "What is the p99 latency of POST /payments?", "stream": True}),
        (
            "/v1/chat/completions",
            {
                "model": "glyph-kb",
                "stream": True,
                "messages": [{"role": "user", "content": "What is the p99 latency of POST /payments?"}],
            },
        ),
    ],
    ids=["ask-sse", "chat-completions"],
)
def test_client_leaving_cancels_the_upstream_stream(api: str, vlm: SlowVlm, path: str, body: dict[str, Any]) -> None:
    vlm.started.clear()
    left = leave_after_two_events(api + path, body)
    assert vlm.started.is_set()
    assert_upstream_cancelled(vlm.current, left)  # the record of this request (set when it arrived)
    # the API still answers afterwards (nothing wedged in the thread pool)
    with contextlib.closing(httpx.Client(timeout=10)) as c:
        assert c.get(f"{api}/v1/documents", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
