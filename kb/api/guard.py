"""Limits before work: an ASGI middleware in front of every /v1 route.

From the headers alone, before one byte of the body is read, it
- authenticates the request (and checks the admin role of the routes that write), so a caller without
  a valid key costs nothing: no 200 MB JSON is buffered, no 100 MB multipart is spooled to disk, and
- refuses a body whose declared length is over the route's limit (uploads: the file size limit times
  the file count; JSON routes: a small cap);
then it counts the body as the app reads it, so a body without a length (chunked) stops at the limit too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.api.auth import require_admin, resolve
from kb.settings import Settings, mb_bytes

MULTIPART_SLACK = 1 << 20  # part headers and form fields around the files


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The largest body a route takes, in bytes."""
    if method == "POST" and path.rstrip("/") == "/v1/documents":
        return mb_bytes(settings.api_max_upload_mb) * settings.api_max_files + MULTIPART_SLACK
    return settings.api_max_json_kb * 1024


def writes(method: str, path: str) -> bool:
    """Routes that change documents need an admin key (the route's own check says the same)."""
    return path.startswith("/v1/documents") and method not in ("GET", "HEAD", "OPTIONS")


async def send_error(send: Send, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
    body = json.dumps({"error": {"message": message, "status": status}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    # the body is not read: tell the client this connection ends here
    raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = Headers(scope=scope)
        try:
            principal = resolve(self.settings, headers.get("authorization"), headers.get("x-kb-tenant"))
            if writes(method, path):
                require_admin(principal)
        except HTTPException as exc:
            await send_error(send, exc.status_code, str(exc.detail), exc.headers)
            return
        scope.setdefault("state", {})["principal"] = principal
        limit = body_limit(self.settings, method, path)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await send_error(send, 413, _too_large(limit))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI passes an HTTPException raised while reading the body through to its handler
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counted, send)


def _too_large(limit: int) -> str:
    return f"the request body is over this route's {_size(limit)} limit"


def _size(n: int) -> str:
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n / 1024:g} KB"


def install(app: Any, settings: Settings) -> None:
    app.add_middleware(Guard, settings=settings)
