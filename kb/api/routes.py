"""The /v1 resource endpoints: documents, jobs, search, ask, images."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from kb.answer.conversation import turns
from kb.answer.prepare import Scope
from kb.answer.run import AnswerStream, generate
from kb.answer.types import Answer
from kb.api import tenancy, uploads
from kb.api.auth import Admin, Reader
from kb.api.convert import doc_detail, doc_summary, hit_json
from kb.api.inputs import Question, Text, TopK, TurnText
from kb.api.state import ApiState
from kb.api.streaming import event_stream
from kb.errors import ImageStoreError, VlmError, VlmUnavailableError
from kb.labels import clean_tags
from kb.uploads import discard

router = APIRouter(prefix="/v1")
log = logging.getLogger(__name__)


def state(request: Request) -> ApiState:
    st: ApiState = request.app.state.api
    return st


# -- documents -----------------------------------------------------------------------------------
class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    files: list[str]
    created: float
    finished: float | None
    results: list[dict[str, Any]]
    error: str | None


@router.post("/documents", status_code=202, response_model=JobOut, tags=["documents"])
async def upload_documents(
    request: Request,
    principal: Admin,
    files: Annotated[list[UploadFile], File(description="one or more documents")],
    tags: Annotated[list[str] | None, Form(description="tags for every file (repeat the field)")] = None,
) -> dict[str, Any]:
    """Upload documents; they are ingested in the background — poll GET /v1/jobs/{id}."""
    st = state(request)
    if not files:
        raise HTTPException(422, "no files")
    tags = clean_tags(tags)
    if any(t.startswith(tenancy.TAG_PREFIX) for t in tags):
        raise HTTPException(422, f"tags starting with {tenancy.TAG_PREFIX!r} are reserved")
    staged = await uploads.stage_all(files, principal.tenant, st.tenant_uploads(principal.tenant), st.kb.settings)
    return st.submit_upload(principal.tenant, staged.files, tags, staged.folder).to_json()


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["documents"])
def get_job(request: Request, principal: Reader, job_id: str) -> dict[str, Any]:
    job = state(request).jobs.get(principal.tenant, job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    return job.to_json()


@router.get("/documents", tags=["documents"])
def list_documents(request: Request, principal: Reader) -> dict[str, Any]:
    return {"documents": [doc_summary(r) for r in tenancy.documents(state(request).kb, principal.tenant)]}


@router.get("/documents/{doc_id}", tags=["documents"])
def get_document(request: Request, principal: Reader, doc_id: str) -> dict[str, Any]:
    """A document with its sections, pages and images."""
    return doc_detail(tenancy.require(state(request).kb, principal.tenant, doc_id))


@router.delete("/documents/{doc_id}", tags=["documents"])
def delete_document(request: Request, principal: Admin, doc_id: str) -> dict[str, Any]:
    st = state(request)
    images_left = False
    with st.lock:
        rec = tenancy.require(st.kb, principal.tenant, doc_id)
        try:
            st.kb.delete(rec.doc_id)
        except ImageStoreError:
            if st.kb.catalog.get(rec.doc_id) is not None:
                raise  # not deleted: a 503 is the truth
            # the document is gone (its manifest and points); only its images stay until `kb gc`
            log.warning("deleted %s, but its images stay until the image store is back (kb gc)", rec.doc_id)
            images_left = True
    discard(Path(rec.source_path).parent, st.tenant_uploads(principal.tenant))
    out: dict[str, Any] = {"deleted": rec.doc_id, "sections": len(rec.sections)}
    if images_left:
        out["warning"] = "the image store is unavailable: its images are removed when it is back"
    return out


@router.post("/documents/{doc_id}/reingest", status_code=202, response_model=JobOut, tags=["documents"])
def reingest_document(request: Request, principal: Admin, doc_id: str) -> dict[str, Any]:
    """Parse, render and index the kept upload again (e.g. after a settings change)."""
    st = state(request)
    rec = tenancy.require(st.kb, principal.tenant, doc_id)
    src = Path(rec.source_path)
    if not src.is_file():
        raise HTTPException(409, "the uploaded file of this document is no longer kept; upload it again")
    return st.submit_reingest(principal.tenant, rec.doc_id, src, tenancy.user_tags(rec)).to_json()


# -- search and ask ------------------------------------------------------------------------------
class SearchIn(BaseModel):
    query: Question
    k: TopK | None = None
    doc_ids: list[Text] | None = Field(None, max_length=200)
    tags: list[Text] | None = Field(None, max_length=50)
    signals: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=16, description="configured signals to use (GET /v1/signals); default: all"
    )
    diverse: bool | None = None


@router.get("/signals", tags=["retrieval"])
def signals(request: Request, _: Reader) -> dict[str, Any]:
    """The configured retrieval signals, in fusion order, with each one's vector kind and model."""
    kb = state(request).kb
    return {
        "signals": [
            {"name": s.name, "kind": s.kind, "model": s.model_id, "weight": kb.settings.signal_weights.get(s.name, 1.0)}
            for s in kb.embedders
        ]
    }


@router.post("/search", tags=["retrieval"])
def search(request: Request, principal: Reader, body: SearchIn) -> dict[str, Any]:
    """Hits in the `kb search --json` shape; `images` are /v1/images URLs."""
    hits = state(request).search(
        principal.tenant,
        body.query,
        k=body.k,
        doc_ids=body.doc_ids,
        tags=body.tags,
        signals=list(body.signals) if body.signals else None,
        diverse=body.diverse,
    )
    return {"hits": [hit_json(h) for h in hits]}


class TurnIn(BaseModel):
    """One earlier turn. `docs` and `cross_document` (from the earlier answer) let a comparison carry over."""

    role: Literal["user", "assistant"]
    content: TurnText
    docs: list[str] | None = Field(None, max_length=200)
    cross_document: bool = False


class AskIn(BaseModel):
    question: Question
    history: list[TurnIn] | None = Field(
        None, max_length=200, description="the conversation so far, oldest first; the model gets its newest turns"
    )
    k: TopK | None = None
    doc_ids: list[Text] | None = Field(None, max_length=200)
    tags: list[Text] | None = Field(None, max_length=50)
    mode: Literal["image", "text", "image+text"] | None = None
    cross: bool | None = None
    stream: bool = False


def answer_json(a: Answer) -> dict[str, Any]:
    out = a.to_json()
    out["citations"] = [
        {"n": c.n, "cited": c.cited, "label": c.label or c.hit.label(c.n), **hit_json(c.hit)} for c in a.citations
    ]
    return out


def sse(data: Any, event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/ask", tags=["retrieval"])
def ask(request: Request, principal: Reader, body: AskIn) -> Any:
    """An answer with citations; with `stream: true`, SSE: `delta` events, then one `answer` event
    (or an `error` event)."""
    st = state(request)
    scope = Scope(k=body.k, doc_ids=body.doc_ids, tags=body.tags, cross_document=body.cross, mode=body.mode)
    history = turns(t.model_dump() for t in body.history or [])
    prep = st.prepare(principal.tenant, body.question, scope, history)
    answerer = st.answerer()
    if answerer is None:
        raise VlmUnavailableError("no vision-language model is configured, so there is no answer", "use /v1/search")
    if not body.stream:
        return answer_json(generate(prep, answerer, st.kb.settings))

    def events() -> Iterator[str]:
        stream = AnswerStream(prep, answerer, st.kb.settings)
        try:
            for piece in stream:
                yield sse({"text": piece}, "delta")
            assert stream.answer is not None
            yield sse(answer_json(stream.answer), "answer")
        except VlmError:
            yield sse({"error": "the vision-language model failed to answer"}, "error")

    return event_stream(request, events())


# -- images --------------------------------------------------------------------------------------
@router.get("/images/{key}", tags=["retrieval"], response_class=FileResponse)
def image(request: Request, principal: Reader, key: str) -> Response:
    """A glyph image by content key — only one of the caller's tenant's documents."""
    st = state(request)
    if (
        len(key) != 64
        or any(c not in "0123456789abcdef" for c in key)
        or not tenancy.owns_image(st.kb, principal.tenant, key)
    ):
        raise HTTPException(404, "no such image")
    headers = {"Cache-Control": "private, max-age=86400"}  # content-addressed: a key's bytes never change
    path = st.kb.images.local_path(key)
    if path is not None:
        if not path.is_file():
            raise HTTPException(404, "no such image")
        return FileResponse(path, media_type="image/png", headers=headers)
    try:
        data = st.kb.images.read(key)
    except FileNotFoundError:
        raise HTTPException(404, "no such image") from None
    return Response(data, media_type="image/png", headers=headers)
