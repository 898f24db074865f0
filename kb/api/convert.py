"""JSON shapes the API returns: hits and documents without server paths, images as API URLs."""

from __future__ import annotations

from typing import Any

from kb.api.tenancy import user_tags
from kb.catalog import DocumentRecord
from kb.hits import Hit
from kb.labels import page_span


def image_url(key: str) -> str:
    return f"/v1/images/{key}"


def hit_json(h: Hit) -> dict[str, Any]:
    """The `kb search --json` shape, with `images` as /v1/images URLs (never file paths) plus ids."""
    return {
        **h.to_json(),
        "images": [image_url(k) for k in h.image_keys],
        "section_id": h.section_id,
        "heading_path": h.heading_path,
    }


def doc_summary(rec: DocumentRecord) -> dict[str, Any]:
    return {
        "id": rec.doc_id,
        "title": rec.title,
        "name": rec.source_name,
        "format": rec.format,
        "pages": rec.pages,
        "bytes": rec.file_bytes,
        "sha256": rec.file_sha256,
        "sections": len(rec.sections),
        "images": len(set(rec.image_keys)),
        "text_tokens": rec.text_tokens,  # compression = text_tokens / visual_tokens
        "visual_tokens": rec.visual_tokens,
        "tags": user_tags(rec),
        "ingested_at": rec.ingested_at,
        "ocr_used": rec.ocr_used,
        "warnings": rec.warnings,
        "revises": rec.revises,
    }


def doc_detail(rec: DocumentRecord) -> dict[str, Any]:
    return {
        **doc_summary(rec),
        "sections": [
            {
                "id": s.section_id,
                "heading_path": s.heading_path,
                "headings": s.headings,
                "pages": list(span) if (span := page_span(s.page_start, s.page_end)) else None,
                "part": s.part,
                "parts": s.parts,
                "kinds": s.kinds,
                "role": s.role,
                "text": s.text,
                "images": [
                    {
                        "key": i.key,
                        "url": image_url(i.key),
                        "width": i.width,
                        "height": i.height,
                        "visual_tokens": i.visual_tokens,
                    }
                    for i in s.images
                ],
            }
            for s in rec.sections
        ],
    }
