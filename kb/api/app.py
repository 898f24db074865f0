"""`create_app(kb)`: the FastAPI app with its error mapping, health checks and optional CORS."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb.api import compare_routes, guard, openai_compat, routes
from kb.api.state import ApiState
from kb.errors import (
    ConfigError,
    CorruptDocumentError,
    DocumentNotFoundError,
    EmptyDocumentError,
    FileTooLargeError,
    ImageStoreError,
    KbError,
    QueryError,
    RejectedUploadError,
    TooManyFilesError,
    UnsupportedFormatError,
    VlmError,
    VlmUnavailableError,
)
from kb.service import KnowledgeBase

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[KbError], int]] = [
    (DocumentNotFoundError, 404),
    (FileTooLargeError, 413),
    (TooManyFilesError, 413),
    (RejectedUploadError, 422),
    (QueryError, 422),
    (UnsupportedFormatError, 415),
    (EmptyDocumentError, 422),
    (CorruptDocumentError, 422),
    (VlmUnavailableError, 503),
    (ImageStoreError, 503),
    (VlmError, 502),
    (ConfigError, 500),
]


def _status(exc: KbError) -> int:
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)


def _error(status: int, message: str, hint: str = "") -> JSONResponse:
    body: dict[str, Any] = {"error": {"message": message, "status": status}}
    if hint:
        body["error"]["hint"] = hint
    return JSONResponse(body, status_code=status)


def create_app(kb: KnowledgeBase) -> FastAPI:
    """The HTTP API over one KnowledgeBase; tenants are kept apart inside it (see kb.api.tenancy)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        api.recover_jobs()
        yield
        api.close()

    app = FastAPI(
        title="Glyph KB",
        version="1",
        description="Documents as glyph images: upload, search and ask with citations. "
        "Authenticate with `Authorization: Bearer <API key>`; a key serving several tenants names one "
        "with `X-KB-Tenant`.",
        lifespan=lifespan,
    )
    api = ApiState(kb)
    app.state.kb = kb
    app.state.api = api
    guard.install(app, kb.settings)  # authentication and body limits before any body is read
    if kb.settings.api_cors_origins:  # added last: outermost, so preflights never need a key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=kb.settings.api_cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-KB-Tenant"],
        )

    @app.exception_handler(KbError)
    async def kb_error(_: Request, exc: KbError) -> JSONResponse:
        status = _status(exc)
        if isinstance(exc, VlmError) and not isinstance(exc, VlmUnavailableError):
            log.warning("VLM failure: %s", exc)
            return _error(status, "the vision-language model failed to answer", "try again later")
        if isinstance(exc, ImageStoreError):  # the message names the internal store: log it, don't send it
            log.error("image store failure: %s", exc)
            return _error(status, "the image store is unavailable", "try again later")
        if status >= 500:
            log.error("server error: %s", exc)
            return _error(status, exc.message if isinstance(exc, VlmUnavailableError) else "server misconfigured")
        return _error(status, exc.message, exc.hint)

    @app.exception_handler(StarletteHTTPException)  # also FastAPI's, and the router's own 404/405
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        resp = _error(exc.status_code, str(exc.detail))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        body = {"error": {"message": "invalid request", "status": 422, "problems": problems}}
        return JSONResponse(body, status_code=422)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        checks = {"store": _check_store(api), "images": _check_images(kb), "vlm": _check_vlm(api)}
        ready = all(v in ("ok", "not configured") for v in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    app.include_router(routes.router)
    app.include_router(openai_compat.router)
    app.include_router(compare_routes.router)
    return app


def _check_store(api: ApiState) -> str:
    try:
        api.kb.index.count()
        return "ok"
    except Exception as exc:  # any failure means not ready; the reason goes to the log, not the client
        log.warning("store not reachable: %s", exc)
        return "unreachable"


def _check_images(kb: KnowledgeBase) -> str:
    try:
        kb.images.check()
        return "ok"
    except Exception as exc:  # as above: the reason goes to the log
        log.warning("image store not reachable: %s", exc)
        return "unreachable"


def _check_vlm(api: ApiState) -> str:
    try:
        ready = api.answerer_ready()
    except KbError as exc:  # a backend that cannot be made (unknown name, missing package)
        log.warning("VLM backend unavailable: %s", exc)
        return "unavailable"
    if ready is None:
        return "not configured"
    if not ready.ok:
        log.warning("VLM not ready: %s", ready.detail)
        return "unreachable"
    return "ok"
