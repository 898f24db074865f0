"""Tenant isolation on one shared knowledge base.

Design: every document uploaded through the API records its tenant twice — as the reserved tag
`tenant:<name>` on its manifest and indexed points, and as the prefix `<name>--` of its document id
(the staged file is named that way), so two tenants uploading `report.pdf` get two documents.
Every read goes through this module: a document, section or image key of another tenant is
reported exactly like one that does not exist, and searches are restricted to the tenant's own
document ids inside the Qdrant query, then checked again on the hits.

Documents ingested without the API (`kb ingest`) carry no tenant tag; they belong to the knowledge
base's default tenant (`settings.tenant`, "default" unless set), so a CLI-built corpus is served to
the keys bound to that tenant and to no other."""

from __future__ import annotations

from kb.catalog import DocSummary, DocumentRecord
from kb.errors import DocumentNotFoundError
from kb.service import KnowledgeBase

TAG_PREFIX = "tenant:"


def tenant_tag(tenant: str) -> str:
    return f"{TAG_PREFIX}{tenant}"


def owns(rec: DocumentRecord | DocSummary, tenant: str, default_tenant: str) -> bool:
    tagged = [t for t in rec.tags if t.startswith(TAG_PREFIX)]
    if not tagged:
        return tenant == default_tenant
    return tagged == [tenant_tag(tenant)] and rec.doc_id.startswith(f"{tenant}--")


def documents(kb: KnowledgeBase, tenant: str) -> list[DocumentRecord]:
    return [r for r in kb.documents() if owns(r, tenant, kb.settings.tenant)]


def summaries(kb: KnowledgeBase, tenant: str) -> list[DocSummary]:
    """The tenant's documents, cheaply (per-request scoping and image checks)."""
    return [d for d in kb.catalog.summaries().values() if owns(d, tenant, kb.settings.tenant)]


def require(kb: KnowledgeBase, tenant: str, doc_id: str) -> DocumentRecord:
    """The tenant's document, or the same 404 whether it is missing, malformed or someone else's."""
    not_found = DocumentNotFoundError(f"no document {doc_id!r}", "GET /v1/documents lists the ids")
    try:
        rec = kb.catalog.get(doc_id)
    except DocumentNotFoundError:
        raise not_found from None
    if rec is None or not owns(rec, tenant, kb.settings.tenant):
        raise not_found
    return rec


def owns_image(kb: KnowledgeBase, tenant: str, key: str) -> bool:
    return any(key in d.image_keys for d in summaries(kb, tenant))


def user_tags(rec: DocumentRecord) -> list[str]:
    return [t for t in rec.tags if not t.startswith(TAG_PREFIX)]
