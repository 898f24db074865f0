"""Answerer over any OpenAI-compatible chat-completions server (vLLM, SGLang, Ollama, LM Studio, OpenAI).

One user message carries, per source, a text part with its label and then its glyph image as a base64 PNG
`image_url` part (and/or its text), then the question. Streaming reads the server-sent events.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
from PIL import Image

from kb.answer.backend import AnswerBackend, Readiness
from kb.answer.prompt import user_parts
from kb.answer.types import Prompt
from kb.errors import VlmError, VlmUnavailableError
from kb.settings import Settings

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


def png_data_url(im: Image.Image, stored: bytes | None = None) -> str:
    """`stored`: the image's PNG file as stored, sent as-is (re-encoding costs more than the request)."""
    if stored is None:
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=False)
        stored = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(stored).decode("ascii")


def chat_messages(prompt: Prompt) -> list[dict[str, Any]]:
    stored = {id(im): png for src in prompt.sources for im, png in zip(src.images, src.png, strict=False) if png}
    content: list[dict[str, Any]] = []
    for part in user_parts(prompt):
        if isinstance(part, str):
            content.append({"type": "text", "text": part})
        else:
            url = png_data_url(part, stored.get(id(part)))
            content.append({"type": "image_url", "image_url": {"url": url}})
    turns = [{"role": t.role, "content": t.text} for t in prompt.history]
    return [{"role": "system", "content": prompt.system}, *turns, {"role": "user", "content": content}]


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "check KB_VLM_API_KEY"
    if status == 404:
        return "check KB_VLM_BASE_URL (usually ends in /v1) and KB_VLM_MODEL (the served model name)"
    if status == 413:
        return "the request is too large: lower KB_VLM_MAX_IMAGES or KB_VLM_MAX_PIXELS"
    if 400 <= status < 500:
        return (
            "the server refused the request: does the model accept images, and this many "
            "(vLLM --limit-mm-per-prompt vs KB_VLM_MAX_IMAGES)? Is KB_VLM_MAX_CONTEXT_TOKENS within its context?"
        )
    return "the VLM server failed; see its log"


class OpenAIAnswerer(AnswerBackend):
    """An answer backend over HTTP. Retries connection errors, timeouts, 429 and 5xx before any output."""

    backend = "openai"
    can_stream = True

    def __init__(self, settings: Settings, *, client: httpx.Client | None = None) -> None:
        super().__init__()
        self.api_key = settings.vlm_api_key
        self.connect_timeout = settings.vlm_connect_timeout
        self.model = settings.vlm_model
        self.base_url = settings.vlm_base_url.rstrip("/")
        self.max_new_tokens = settings.vlm_max_new_tokens
        self.temperature = settings.vlm_temperature
        self.retries = settings.vlm_retries
        self.timeout = settings.vlm_timeout
        headers = {"Accept": "application/json"}
        if settings.vlm_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.vlm_api_key.get_secret_value()}"
        self._client = client or httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(settings.vlm_timeout, connect=settings.vlm_connect_timeout),
        )
        self.backoff = 0.5
        self.stream_usage = True  # turned off for servers that refuse `stream_options`

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIAnswerer:
        return cls(settings)

    def close(self) -> None:
        self._client.close()

    def ready(self) -> Readiness:
        """The server answers `GET /models`: any reply but a gateway or overload error means it is up
        (some servers lack the route)."""
        headers = {"Authorization": f"Bearer {self.api_key.get_secret_value()}"} if self.api_key else {}
        try:
            r = httpx.get(f"{self.base_url}/models", headers=headers, timeout=min(5.0, self.connect_timeout))
        except httpx.HTTPError as exc:
            return Readiness(False, f"VLM server at {self.base_url} not reachable: {exc}")
        if r.status_code in (502, 503, 504):
            return Readiness(False, f"VLM server at {self.base_url} answers {r.status_code}")
        return Readiness(True)

    def payload(self, prompt: Prompt, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat_messages(prompt),
            "max_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "stream": stream,
        }
        if stream and self.stream_usage:
            body["stream_options"] = {"include_usage": True}  # token counts in the last event
        return body

    # -- answering ---------------------------------------------------------------------
    def generate(self, prompt: Prompt) -> str:
        body = self.payload(prompt, stream=False)
        resp = self._send(body)
        try:
            resp.read()
            data = resp.json()
            text = data["choices"][0]["message"]["content"] or ""
        except httpx.TimeoutException as exc:
            raise VlmError(
                f"the VLM server at {self.base_url} did not finish within {self.timeout:g}s", "raise KB_VLM_TIMEOUT"
            ) from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise VlmError(
                f"malformed reply from the VLM server at {self.url}: {_short(resp.text, 200)}",
                "is KB_VLM_BASE_URL an OpenAI-compatible /v1 endpoint?",
            ) from exc
        finally:
            resp.close()
        self.last_usage = _usage(data)
        return str(text)

    def stream(self, prompt: Prompt) -> Iterator[str]:
        body = self.payload(prompt, stream=True)
        self.last_usage = {}
        resp = self._send(body)
        try:
            yield from self._events(resp)
        finally:
            resp.close()

    # -- transport ---------------------------------------------------------------------------------
    def _send(self, body: dict[str, Any]) -> httpx.Response:
        """POST with retries; returns an open (streaming) response with a 2xx status."""
        attempt = 0
        while True:
            try:
                req = self._client.build_request("POST", self.url, json=body)
                resp = self._client.send(req, stream=True)
            except httpx.ConnectError as exc:
                err: VlmError = VlmUnavailableError(
                    f"cannot reach the VLM server at {self.base_url} ({_reason(exc)})",
                    "start it (e.g. `vllm serve Qwen/Qwen2.5-VL-7B-Instruct --limit-mm-per-prompt "
                    "'{\"image\": 8}'`) or set KB_VLM_BASE_URL",
                )
            except httpx.TimeoutException as exc:
                err = VlmError(
                    f"the VLM server at {self.base_url} did not answer within {self.timeout:g}s ({_reason(exc)})",
                    "raise KB_VLM_TIMEOUT, or send fewer/smaller images (KB_VLM_MAX_IMAGES, KB_VLM_MAX_PIXELS)",
                )
            except httpx.HTTPError as exc:
                err = VlmError(f"request to the VLM server at {self.url} failed: {_reason(exc)}", "see the server log")
            else:
                if resp.status_code < 300:
                    return resp
                resp.read()
                resp.close()
                err = VlmError(
                    f"the VLM server answered HTTP {resp.status_code}: {_short(resp.text)}",
                    _status_hint(resp.status_code),
                )
                if resp.status_code == 400 and "stream_options" in body and "stream_options" in resp.text:
                    log.info("the VLM server refuses stream_options; streaming without usage counts")
                    self.stream_usage = False
                    body = {k: v for k, v in body.items() if k != "stream_options"}
                    continue
                if resp.status_code not in _RETRY_STATUS:
                    raise err
            if attempt >= self.retries:
                raise err
            attempt += 1
            log.warning("VLM request failed (%s); retry %d of %d", err.message, attempt, self.retries)
            time.sleep(self.backoff * 2 ** (attempt - 1))

    def _events(self, resp: httpx.Response) -> Iterator[str]:
        done = finished = False
        try:
            for line in resp.iter_lines():
                line = line.strip()
                if not line or line.startswith(":") or not line.startswith("data:"):
                    continue  # blank separators, comments, event:/id: fields
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError as exc:
                    raise _malformed(f"not JSON: {_short(data)}") from exc
                if not isinstance(chunk, dict):
                    raise _malformed(f"unexpected event: {_short(data)}")
                if "error" in chunk:
                    e = chunk["error"]
                    msg = e.get("message", e) if isinstance(e, dict) else e
                    raise VlmError(f"the VLM server reported an error mid-answer: {_short(str(msg))}", "see its log")
                if chunk.get("usage"):
                    self.last_usage = _usage(chunk)
                choices = chunk.get("choices")
                if not isinstance(choices, list):
                    raise _malformed(f"event without choices: {_short(data)}")
                for ch in choices:
                    delta = ch.get("delta") if isinstance(ch, dict) else None
                    if not isinstance(delta, dict):
                        raise _malformed(f"choice without delta: {_short(data)}")
                    piece = delta.get("content")
                    if piece:
                        yield str(piece)
                    if ch.get("finish_reason"):
                        finished = True
        except httpx.TimeoutException as exc:
            raise VlmError(
                f"the VLM server stopped sending for {self.timeout:g}s mid-answer", "raise KB_VLM_TIMEOUT"
            ) from exc
        except httpx.HTTPError as exc:
            raise VlmError(f"the answer stream broke: {_reason(exc)}", "see the VLM server log") from exc
        if not (done or finished):
            raise _malformed("the stream ended before [DONE]")


def _usage(data: dict[str, Any]) -> dict[str, int]:
    u = data.get("usage") or {}
    return {k: int(v) for k, v in u.items() if isinstance(v, int)} if isinstance(u, dict) else {}


def _malformed(what: str) -> VlmError:
    return VlmError(f"malformed answer stream from the VLM server: {what}", "is it an OpenAI-compatible server?")


def _short(s: str, n: int = 300) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n] + "…"


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
