"""The chat as a reader meets it, in a real browser: `kb ui` on 127.0.0.1, headless Debian Chromium
(Playwright), and an OpenAI-compatible stand-in model on loopback that logs every request it receives.

- a question, then a follow-up that only makes sense with the first: the stand-in's log shows the earlier
  turns in the follow-up's request, and only payments-spec sources go to the model;
- clicking [1] opens the source with the supporting lines marked on the glyph image;
- the model down: a plain sentence and the passages; the model back, Retry: the answer.

Screenshots go to docs/ when KB_UPDATE_SCREENSHOTS is set (or when missing).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.test_answer_openai import free_port
from tests.tiny_models import settings_fields
from tests.ui_server import running_ui

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "docs"
CHROMIUM = Path(os.environ.get("KB_TEST_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
MODEL = "stand-in/vlm"
Q1 = "What is the p99 latency of POST /payments?"
A1 = "The p99 latency of POST /payments MUST be below 200 ms at 500 requests per second [1]."
Q2 = "And how long must they keep the records?"
A2 = "Payment records MUST be retained for 7 years [1]."
Q3 = "Which regions must the API sustain 2000 requests per second in?"
A3 = "The API MUST sustain 2000 requests per second per region [1]."

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


class StandIn:
    """An OpenAI-compatible chat server on a fixed loopback port that can be stopped and started again.
    It answers from the last question's words and logs each request body."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reply(self, question: str, labels: list[str]) -> str:
        """The answer for the question, citing the v1 specification's number (its figures are v1's)."""
        q = question.lower()
        text = A2 if "records" in q else A3 if "regions" in q else A1
        n = next((lb[1 : lb.index("]")] for lb in labels if "Specification v1" in lb), "1")
        return text.replace("[1]", f"[{n}]")

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._send(200, "application/json", json.dumps({"data": [{"id": MODEL}]}).encode())

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                last = body["messages"][-1]["content"]
                question = last[-1]["text"] if isinstance(last, list) else str(last)
                words = fake.reply(question, _labels(body)).split(" ")
                chunks = [{"choices": [{"delta": {"content": (" " if i else "") + w}}]} for i, w in enumerate(words)]
                chunks[-1]["choices"][0]["finish_reason"] = "stop"
                data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
                self._send(200, "text/event-stream", data.encode())

            def _send(self, status: int, ctype: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture()
def model() -> Iterator[StandIn]:
    m = StandIn(free_port())
    m.start()
    yield m
    m.stop()


@pytest.fixture()
def server(tmp_path: Path, model_env: dict[str, str], shared_embedders: object, model: StandIn) -> Iterator[str]:
    data = tmp_path / "data"
    s = Settings(data_dir=data, **settings_fields(model_env))
    public = Path(os.environ.get("KB_PUBLIC_DOCS", ROOT.parent / "shared" / "eval" / "public" / "docs"))
    others = [public / n for n in ("sqlite-limits-v2.md", "pg15-file-system-backup.txt")] if public.is_dir() else []
    with KnowledgeBase(s, embedders=shared_embedders) as kb:  # type: ignore[arg-type]
        results = kb.ingest([EXAMPLES, *[p for p in others if p.is_file()]])
    assert all(r.status != "failed" for r in results), results
    env = {
        **model_env,
        "KB_DATA_DIR": str(data),
        "KB_VLM_BACKEND": "openai",
        "KB_VLM_BASE_URL": model.url,
        "KB_VLM_MODEL": MODEL,
        "KB_VLM_RETRIES": "0",
        "KB_VLM_CONNECT_TIMEOUT": "2",
    }
    with running_ui(env, tmp_path) as url:
        yield url


def _ask(page: Any, question: str) -> None:
    box = page.get_by_placeholder("Ask a question about your documents")
    box.wait_for(timeout=60_000)
    box.fill(question)
    box.press("Enter")


def answer(page: Any, text: str) -> Any:
    """The answer (not a source's text in a closed expander) that says `text`."""
    return page.locator(".kb-answer", has_text=text).last


def _labels(request: dict[str, Any]) -> list[str]:
    content = request["messages"][-1]["content"]
    return [p["text"] for p in content if p.get("type") == "text" and p["text"].startswith("[")]


def _shot(page: Any, tmp: Path, name: str) -> Path:
    out = tmp / name
    page.screenshot(path=str(out), full_page=False)
    docs = ROOT / "docs" / name
    if os.environ.get("KB_UPDATE_SCREENSHOTS") or not docs.exists():
        shutil.copyfile(out, docs)
    return out


def test_conversation_citations_and_a_model_outage(server: str, model: StandIn, tmp_path: Path) -> None:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(server, timeout=90_000)
            page.get_by_text("● available").first.wait_for(timeout=60_000)

            # 1. a question: only the payments specification goes to the model
            _ask(page, Q1)
            answer(page, "below 200 ms").wait_for(timeout=120_000)
            (first,) = model.requests
            labels = _labels(first)
            assert labels and all(lb.split("] ", 1)[1].startswith("Payments API Specification") for lb in labels)

            # 2. a follow-up that only makes sense after the first: the model receives the earlier turns
            _ask(page, Q2)
            answer(page, "retained for 7 years").wait_for(timeout=120_000)
            follow = model.requests[-1]["messages"]
            assert [m["role"] for m in follow] == ["system", "user", "assistant", "user"]
            assert follow[1]["content"] == Q1 and follow[2]["content"].startswith(A1.split(" [")[0])
            assert follow[3]["content"][-1]["text"] == f"Question: {Q2}"
            assert "This is a conversation" in follow[0]["content"]

            # 3. [1] in the answer opens its source, the supporting lines marked on the glyph image
            cite = page.locator("a.kb-cite").last
            assert cite.inner_text().startswith("[")
            cite.click()
            panel = page.locator(".kb-overlay:target")
            panel.wait_for(state="visible", timeout=10_000)
            assert "Payments API Specification" in panel.locator(".kb-head").inner_text()
            assert "Marked:" in panel.inner_text() and "retained for 7 years" in panel.locator(".kb-text").inner_text()
            # a one-image section: no separate close-up (it would repeat most of the image), the image itself marked
            assert panel.locator("img.kb-crop").count() == 0
            shown = panel.locator("img")
            assert shown.count() == 1
            shown.first.wait_for(state="visible", timeout=10_000)
            assert shown.first.evaluate("(el) => el.naturalWidth > 0 && el.getBoundingClientRect().width > 1000")
            _shot(page, tmp_path, "chat-source.png")
            panel.locator(".kb-close").click()
            page.locator(".kb-overlay:target").wait_for(state="detached", timeout=10_000)
            answer(page, "retained for 7 years").scroll_into_view_if_needed()
            _shot(page, tmp_path, "chat-conversation.png")
            assert page.locator('[data-testid="stException"]').count() == 0

            # 4. the model goes down: a plain sentence, the passages, details tucked away; no server address
            model.stop()
            sent = len(model.requests)
            _ask(page, Q3)
            page.get_by_text("The assistant is not available right now").first.wait_for(timeout=120_000)
            body = page.locator("body").inner_text()
            assert "127.0.0.1" not in body and "Errno" not in body
            assert page.get_by_text("Details (for the administrator)").count() >= 1
            page.get_by_text("● not available right now").first.wait_for(timeout=30_000)
            _shot(page, tmp_path, "chat-down.png")

            # 5. back up; Retry asks the question again and it is answered
            model.start()
            page.get_by_role("button", name="Retry").click()
            answer(page, "per second per region").wait_for(timeout=120_000)
            page.get_by_text("● available").first.wait_for(timeout=30_000)
            assert len(model.requests) == sent + 1
            assert page.get_by_text("The assistant is not available right now").count() == 0
            assert page.locator('[data-testid="stException"]').count() == 0
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
            raise
        finally:
            browser.close()
