"""Tenant isolation on one shared knowledge base.

Design: every document uploaded through the API records its tenant twice — as the reserved tag
`tenant:<name>` on its manifest and indexed points, and as the prefix `<name>--` of its document id
(the staged file is named that way), so two tenants uploading `report.pdf` get two documents.
Every read goes through this module: a document, section or image key of another tenant is
reported exactly like one that does not exist, and searches are restricted to the tenant's own
document ids inside the Qdrant query, then checked again on the hits."""

from __future__ import annotations

from kb.catalog import DocumentRecord
from kb.errors import DocumentNotFoundError
from kb.service import KnowledgeBase

TAG_PREFIX = "tenant:"


def tenant_tag(tenant: str) -> str:
    return f"{TAG_PREFIX}{tenant}"


def owns(rec: DocumentRecord, tenant: str) -> bool:
    return tenant_tag(tenant) in rec.tags and rec.doc_id.startswith(f"{tenant}--")


def documents(kb: KnowledgeBase, tenant: str) -> list[DocumentRecord]:
    return [r for r in kb.documents() if owns(r, tenant)]


def require(kb: KnowledgeBase, tenant: str, doc_id: str) -> DocumentRecord:
    """The tenant's document, or the same 404 whether it is missing, malformed or someone else's."""
    not_found = DocumentNotFoundError(f"no document {doc_id!r}", "GET /v1/documents lists the ids")
    try:
        rec = kb.catalog.get(doc_id)
    except DocumentNotFoundError:
        raise not_found from None
    if rec is None or not owns(rec, tenant):
        raise not_found
    return rec


def image_keys(kb: KnowledgeBase, tenant: str) -> set[str]:
    return {k for r in documents(kb, tenant) for k in r.image_keys}


def user_tags(rec: DocumentRecord) -> list[str]:
    return [t for t in rec.tags if not t.startswith(TAG_PREFIX)]
