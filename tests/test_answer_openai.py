"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1, and `kb ask` end to end."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from kb.answer.backend import make_answerer
from kb.answer.openai_backend import OpenAIAnswerer
from kb.answer.prompt import build_prompt
from kb.cli import app
from kb.errors import VlmError, VlmUnavailableError
from kb.settings import Settings
from tests.test_prompt import make_hit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"
MODEL = "test/tiny-vlm"


def sse(*events: Any, done: bool = True) -> bytes:
    lines = [
        f"{e}\n\n" if isinstance(e, str) and e.startswith(":") else f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n"
        for e in events
    ]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def delta(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


Reply = Callable[[dict[str, Any]], tuple[int, str, bytes]]  # request body -> status, content type, body


class FakeVlm:
    """A chat-completions server: records each request body and answers with `reply`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.reply: Reply = self.answer_with("The p99 latency is 300 ms [1].")
        self.delay = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    status, ctype, data = 404, "text/plain", b"no such route"
                else:
                    status, ctype, data = fake.reply(body)
                time.sleep(fake.delay)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def answer_with(text: str) -> Reply:
        def reply(body: dict[str, Any]) -> tuple[int, str, bytes]:
            if body.get("stream"):
                words = text.split(" ")
                chunks = [delta(w if i == 0 else " " + w) for i, w in enumerate(words)]
                chunks[-1]["choices"][0]["finish_reason"] = "stop"
                usage = {"choices": [], "usage": {"prompt_tokens": 900, "completion_tokens": len(words)}}
                return 200, "text/event-stream", sse(": keep-alive", *chunks, usage)
            msg = {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
            return 200, "application/json", json.dumps({**msg, "usage": {"completion_tokens": 7}}).encode()

        return reply

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def vlm() -> Iterator[FakeVlm]:
    f = FakeVlm()
    yield f
    f.close()


def settings(tmp: Path, url: str, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp / "d",
        "vlm_backend": "openai",
        "vlm_base_url": url,
        "vlm_model": MODEL,
        "vlm_retries": 0,
        "vlm_timeout": 5.0,
    }
    return Settings(**{**base, **kw})


def answerer(s: Settings) -> OpenAIAnswerer:
    a = make_answerer(s)
    assert isinstance(a, OpenAIAnswerer)
    a.backoff = 0.0
    return a


def three_source_prompt(tmp: Path, s: Settings) -> Any:
    hits = [make_hit(tmp, i, (280 * i, 280)) for i in (1, 2, 3)]  # widths tell the images apart
    return build_prompt("How fast is POST /payments?", hits, s)


def test_request_shape_and_streaming(tmp_path: Path, vlm: FakeVlm) -> None:
    s = settings(tmp_path, vlm.url, vlm_api_key="sk-test")
    a = answerer(s)
    pieces = list(a.stream(three_source_prompt(tmp_path, s)))
    assert len(pieces) > 3 and "".join(pieces) == "The p99 latency is 300 ms [1]."
    assert a.last_usage["completion_tokens"] == 7
    (body,) = vlm.requests
    assert body["model"] == MODEL and body["stream"] is True and body["max_tokens"] == s.vlm_max_new_tokens
    assert body["stream_options"] == {"include_usage": True}
    assert vlm.headers[0]["Authorization"] == "Bearer sk-test"
    system, user = body["messages"]
    assert system["role"] == "system" and "cannot find this in the knowledge base" in system["content"]
    assert user["role"] == "user" and len(body["messages"]) == 2
    content = user["content"]
    assert [c["type"] for c in content] == ["text", "image_url"] * 3 + ["text"]
    for i, n in enumerate((1, 2, 3)):
        label, img = content[2 * i], content[2 * i + 1]
        assert label["text"].startswith(f"[{n}] Doc a.md › Part › Section {n}")
        url = img["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        png = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert png.format == "PNG" and png.size == (280 * n, 280)  # rank order kept
    assert content[-1]["text"] == "Question: How fast is POST /payments?"


def test_generate_without_streaming(tmp_path: Path, vlm: FakeVlm) -> None:
    s = settings(tmp_path, vlm.url)
    a = answerer(s)
    assert a.generate(three_source_prompt(tmp_path, s)) == "The p99 latency is 300 ms [1]."
    assert vlm.requests[0]["stream"] is False and "Authorization" not in vlm.headers[0]
    assert a.last_usage == {"completion_tokens": 7}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_down_is_a_clear_unavailable_error(tmp_path: Path) -> None:
    s = settings(tmp_path, f"http://127.0.0.1:{free_port()}/v1", vlm_retries=1)
    a = answerer(s)
    with pytest.raises(VlmUnavailableError, match="cannot reach the VLM server") as exc:
        list(a.stream(three_source_prompt(tmp_path, s)))
    assert "KB_VLM_BASE_URL" in exc.value.hint


def test_timeout(tmp_path: Path, vlm: FakeVlm) -> None:
    vlm.delay = 1.5
    s = settings(tmp_path, vlm.url, vlm_timeout=0.3)
    with pytest.raises(VlmError, match=r"did not answer within 0.3s") as exc:
        answerer(s).generate(three_source_prompt(tmp_path, s))
    assert "KB_VLM_TIMEOUT" in exc.value.hint


def test_5xx_is_retried_then_reported_with_status_and_body(tmp_path: Path, vlm: FakeVlm) -> None:
    vlm.reply = lambda body: (503, "application/json", b'{"error": "model is overloaded"}')
    s = settings(tmp_path, vlm.url, vlm_retries=2)
    with pytest.raises(VlmError, match=r"HTTP 503: .*model is overloaded"):
        list(answerer(s).stream(three_source_prompt(tmp_path, s)))
    assert len(vlm.requests) == 3


def test_5xx_then_success(tmp_path: Path, vlm: FakeVlm) -> None:
    ok = vlm.reply
    vlm.reply = lambda body: (502, "text/plain", b"bad gateway") if len(vlm.requests) == 1 else ok(body)
    s = settings(tmp_path, vlm.url, vlm_retries=1)
    assert "300 ms" in "".join(answerer(s).stream(three_source_prompt(tmp_path, s)))


def test_server_that_refuses_stream_options(tmp_path: Path, vlm: FakeVlm) -> None:
    ok = vlm.reply
    refuse = (400, "application/json", b'{"error": "Unrecognized request argument: stream_options"}')
    vlm.reply = lambda body: refuse if "stream_options" in body else ok(body)
    s = settings(tmp_path, vlm.url)
    a = answerer(s)
    assert "300 ms" in "".join(a.stream(three_source_prompt(tmp_path, s)))
    assert "".join(a.stream(three_source_prompt(tmp_path, s)))
    assert ["stream_options" in b for b in vlm.requests] == [True, False, False]


def test_4xx_is_not_retried_and_says_what_to_check(tmp_path: Path, vlm: FakeVlm) -> None:
    msg = b'{"object":"error","message":"At most 2 image(s) may be provided in one request."}'
    vlm.reply = lambda body: (400, "application/json", msg)
    s = settings(tmp_path, vlm.url, vlm_retries=2)
    with pytest.raises(VlmError, match=r"HTTP 400: .*At most 2 image") as exc:
        answerer(s).generate(three_source_prompt(tmp_path, s))
    assert len(vlm.requests) == 1 and "KB_VLM_MAX_IMAGES" in exc.value.hint
    s404 = settings(tmp_path, vlm.url.removesuffix("/v1"))
    with pytest.raises(VlmError, match="HTTP 404") as exc:
        answerer(s404).generate(three_source_prompt(tmp_path, s404))
    assert "KB_VLM_BASE_URL" in exc.value.hint


@pytest.mark.parametrize(
    ("stream_body", "match"),
    [
        (sse(delta("Hel"), "{not json"), "malformed answer stream.*not JSON"),
        (sse(delta("Hel"), {"id": "x"}), "malformed answer stream.*without choices"),
        (sse(delta("Hel"), done=False), r"malformed answer stream.*ended before \[DONE\]"),
        (sse(delta("Hel"), {"error": {"message": "CUDA out of memory"}}), "error mid-answer: CUDA out of memory"),
    ],
)
def test_malformed_stream(tmp_path: Path, vlm: FakeVlm, stream_body: bytes, match: str) -> None:
    vlm.reply = lambda body: (200, "text/event-stream", stream_body)
    s = settings(tmp_path, vlm.url)
    got: list[str] = []
    with pytest.raises(VlmError, match=match):
        for piece in answerer(s).stream(three_source_prompt(tmp_path, s)):
            got.append(piece)
    assert got == ["Hel"]


def test_malformed_json_reply(tmp_path: Path, vlm: FakeVlm) -> None:
    vlm.reply = lambda body: (200, "text/html", b"<html>hello</html>")
    s = settings(tmp_path, vlm.url)
    with pytest.raises(VlmError, match="malformed reply"):
        answerer(s).generate(three_source_prompt(tmp_path, s))


def test_make_answerer(tmp_path: Path) -> None:
    assert make_answerer(Settings(data_dir=tmp_path)) is None  # the default: no VLM, retrieval only
    a = make_answerer(Settings(data_dir=tmp_path, vlm_backend="openai", vlm_model="m"))
    assert a is not None and a.backend == "openai" and a.model == "m"


def test_make_answerer_transformers_is_lazy_and_missing_backend_is_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Settings(data_dir=tmp_path, vlm_backend="transformers", vlm_model=str(tmp_path / "no-model"))
    a = make_answerer(s)  # nothing loads until the first answer
    assert a is not None and a.backend == "transformers" and a.model == str(tmp_path / "no-model")
    monkeypatch.setitem(sys.modules, "kb.answer.hf", None)
    with pytest.raises(VlmUnavailableError, match="transformers answering backend is not available"):
        make_answerer(s)


def test_cli_ask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_env: dict[str, str], vlm: FakeVlm) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    for k, v in model_env.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(EXAMPLES)]).exit_code == 0
    q = "How fast must POST /payments answer at p99?"
    # all k sources go to the model here (the relevance cut-off has its own tests): this is about k and limits
    monkeypatch.setenv("KB_ANSWER_MIN_RELEVANCE", "0")

    # no VLM configured: a plain message, how to configure one, the sources, no answer, non-zero exit
    res = runner.invoke(app, ["ask", q, "--k", "3"])
    assert res.exit_code == 2, res.output
    assert "no vision-language model is configured" in res.output
    assert "KB_VLM_BACKEND" in res.output and "KB_VLM_BASE_URL" in res.output and "KB_VLM_MODEL" in res.output
    assert "Sources" in res.output and "[1] " in res.output and "[3] " in res.output
    assert "300 ms" not in res.output and not vlm.requests

    # configured but down: the same, naming the server
    monkeypatch.setenv("KB_VLM_BACKEND", "openai")
    monkeypatch.setenv("KB_VLM_RETRIES", "0")
    monkeypatch.setenv("KB_VLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    res = runner.invoke(app, ["ask", q, "--k", "3"])
    assert res.exit_code == 2 and "cannot reach the VLM server" in res.output and "[3] " in res.output
    res = runner.invoke(app, ["ask", q, "--k", "3", "--json"])
    down = json.loads(res.stdout)
    assert res.exit_code == 2 and down["answer"] is None and "cannot reach" in down["error"]
    assert len(down["citations"]) == 3

    # up: streamed answer, then the numbered sources
    monkeypatch.setenv("KB_VLM_BASE_URL", vlm.url)
    monkeypatch.setenv("KB_VLM_MODEL", MODEL)
    res = runner.invoke(app, ["ask", q, "--k", "3"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("The p99 latency is 300 ms [1].\n")
    assert "Sources" in res.stdout and "[1] " in res.stdout
    user = vlm.requests[-1]["messages"][1]["content"]
    assert sum(c["type"] == "image_url" for c in user) >= 3 and vlm.requests[-1]["model"] == MODEL

    # --json: {answer, citations: [hit...], usage, timings} with hits shaped as in `kb search --json`
    res = runner.invoke(app, ["ask", q, "--k", "3", "--json"])
    assert res.exit_code == 0, res.output
    js = json.loads(res.stdout)
    assert js["answer"] == "The p99 latency is 300 ms [1]." and js["found"] is True
    assert js["backend"] == "openai" and js["model"] == MODEL
    assert len(js["citations"]) == 3 and [c["n"] for c in js["citations"]] == [1, 2, 3]
    c1 = js["citations"][0]
    assert c1["cited"] is True and js["citations"][1]["cited"] is False
    assert {"doc", "title", "section", "pages", "text", "score", "scores", "images"} <= set(c1)
    assert c1["doc"].startswith("payments-api-spec") and all(Path(p).is_file() for p in c1["images"])
    assert js["usage"]["images_sent"] >= 3 and js["usage"]["visual_tokens"] > 0 and js["usage"]["text_tokens"] > 0
    assert js["usage"]["completion_tokens"] == 7
    assert {"retrieve", "prompt", "generate", "total"} <= set(js["timings"])
    assert vlm.requests[-1]["stream"] is False

    # the image limit: lowest-ranked sources are not sent, and the output says so
    monkeypatch.setenv("KB_VLM_MAX_IMAGES", "2")
    res = runner.invoke(app, ["ask", q, "--k", "3", "--no-stream"])
    assert res.exit_code == 0, res.output
    assert sum(c["type"] == "image_url" for c in vlm.requests[-1]["messages"][1]["content"]) == 2
    assert "(not sent to the model) [3] " in res.stdout and "at most 2 images" in res.output
    monkeypatch.delenv("KB_VLM_MAX_IMAGES")

    # the model says it is not there: found is false
    vlm.reply = vlm.answer_with("I cannot find this in the knowledge base.")
    js = json.loads(runner.invoke(app, ["ask", "What is the CEO's shoe size?", "--json"]).stdout)
    assert js["found"] is False
