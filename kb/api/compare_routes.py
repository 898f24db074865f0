"""POST /v1/diff and POST /v1/crosscheck: what changed between two of the tenant's documents, and
where several of them contradict each other (tenant-scoped like search: another tenant's document is
reported exactly like one that does not exist)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from kb.api import tenancy
from kb.api.auth import Admin, Reader
from kb.api.state import ApiState

router = APIRouter(prefix="/v1", tags=["compare"])


def _state(request: Request) -> ApiState:
    st: ApiState = request.app.state.api
    return st


class DiffIn(BaseModel):
    a: str = Field(description="document id of the older side")
    b: str = Field(description="document id of the newer side")


class CrosscheckIn(BaseModel):
    docs: list[str] = Field(min_length=2, max_length=20, description="document ids")
    topic: str | None = Field(default=None, max_length=500, description="only claims mentioning these words")


@router.post("/diff")
def diff(request: Request, principal: Reader, body: DiffIn) -> dict[str, Any]:
    """`{a, b, changes, only_in_a, only_in_b}`, as `kb diff --json` gives it."""
    from kb.compare.answering import cached_compare

    kb = _state(request).kb
    a = tenancy.require(kb, principal.tenant, body.a)
    b = tenancy.require(kb, principal.tenant, body.b)
    return cached_compare(a, b).result.to_json()


@router.post("/crosscheck")
def crosscheck(request: Request, principal: Reader, body: CrosscheckIn) -> dict[str, Any]:
    """Conflicts and agreements between the documents' normative claims, each side cited (deterministic;
    no model verdicts over the API)."""
    from kb.compare_jobs.crosscheck import crosscheck as run

    kb = _state(request).kb
    recs = [tenancy.require(kb, principal.tenant, d) for d in dict.fromkeys(body.docs)]
    res = run(recs, topic=body.topic)
    res.notes.append("deterministic findings only: model verdicts are given by `kb crosscheck` with a VLM")
    return res.to_json()


class RevisesIn(BaseModel):
    revises: str | None = Field(description="the id of the version this document replaces; null: none")


@router.put("/documents/{doc_id}/revises")
def set_revises(request: Request, principal: Admin, doc_id: str, body: RevisesIn) -> dict[str, Any]:
    """Record which of the tenant's documents this one is a new version of (chat then answers from the
    newest, and "what changed" questions use the diff)."""
    from kb.api.convert import doc_summary

    kb = _state(request).kb
    tenancy.require(kb, principal.tenant, doc_id)
    if body.revises is not None:
        tenancy.require(kb, principal.tenant, body.revises)
    return doc_summary(kb.set_revises(doc_id, body.revises))
