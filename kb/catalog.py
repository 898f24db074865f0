"""The document catalog: one JSON manifest per document, written last and atomically.

A document is complete exactly when its manifest exists; images are written before it, so a
crash leaves orphan images (collected later) but never a half-ingested document.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from kb.errors import DocumentNotFoundError
from kb.fsutil import atomic_write_bytes

SCHEMA_VERSION = 1


class ImageRecord(BaseModel):
    key: str
    width: int
    height: int
    visual_tokens: int


class SectionRecord(BaseModel):
    section_id: str
    ordinal: int
    part: int = 1
    parts: int = 1
    heading_path: list[str]
    page_start: int | None = None
    page_end: int | None = None
    kinds: list[str]
    text: str
    content_hash: str
    text_tokens: int
    images: list[ImageRecord]
    point_id: str | None = None  # the Qdrant point, once indexed

    @property
    def visual_tokens(self) -> int:
        return sum(i.visual_tokens for i in self.images)


class DocumentRecord(BaseModel):
    schema_version: int = SCHEMA_VERSION
    doc_id: str
    title: str
    source_name: str
    source_path: str
    format: str
    file_sha256: str
    file_bytes: int
    pages: int | None = None
    ocr_used: bool = False
    render_fingerprint: str
    ingested_at: str
    tags: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    sections: list[SectionRecord]

    @property
    def image_keys(self) -> list[str]:
        return [i.key for s in self.sections for i in s.images]

    @property
    def text_tokens(self) -> int:
        return sum(s.text_tokens for s in self.sections)

    @property
    def visual_tokens(self) -> int:
        return sum(s.visual_tokens for s in self.sections)

    @property
    def compression(self) -> float:
        v = self.visual_tokens
        return self.text_tokens / v if v else 0.0


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def doc_id_for(path: Path) -> str:
    """A readable, filesystem-safe id from the file name; non-ASCII names get a hash suffix to stay unique."""
    name = unicodedata.normalize("NFC", path.name)
    safe = _UNSAFE.sub("-", name).strip("-.") or "doc"
    if safe != name:
        import hashlib

        safe = f"{safe[:80]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return safe[:120]


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._live: tuple[tuple[tuple[str, int, int], ...], frozenset[str]] | None = None
        # Parsed manifests by file name, with the (mtime, size) they were read at: listing the
        # catalog (every search in the API, every image request) re-parses only what changed.
        self._parsed: dict[str, tuple[tuple[int, int, int], DocumentRecord]] = {}

    def _path(self, doc_id: str) -> Path:
        if not doc_id or "/" in doc_id or doc_id.startswith(".") or _UNSAFE.search(doc_id):
            raise DocumentNotFoundError(f"not a document id: {doc_id!r}", "see `kb docs` for ids")
        return self.root / f"{doc_id}.json"

    def get(self, doc_id: str) -> DocumentRecord | None:
        p = self._path(doc_id)
        if not p.is_file():
            return None
        return DocumentRecord.model_validate_json(p.read_bytes())

    def require(self, doc_id: str) -> DocumentRecord:
        rec = self.get(doc_id)
        if rec is None:
            raise DocumentNotFoundError(f"no document {doc_id!r} in the knowledge base", "see `kb docs` for ids")
        return rec

    def put(self, rec: DocumentRecord) -> None:
        data = json.dumps(rec.model_dump(mode="json"), ensure_ascii=False, indent=1).encode()
        atomic_write_bytes(self._path(rec.doc_id), data)

    def delete(self, doc_id: str) -> DocumentRecord:
        rec = self.require(doc_id)
        self._path(doc_id).unlink()
        return rec

    def __iter__(self) -> Iterator[DocumentRecord]:
        if not self.root.is_dir():
            return
        seen: set[str] = set()
        for p in sorted(self.root.glob("*.json")):
            try:
                st = p.stat()
            except FileNotFoundError:  # deleted while listing
                continue
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # atomic replace gives a new inode
            seen.add(p.name)
            cached = self._parsed.get(p.name)
            if cached is None or cached[0] != stamp:
                cached = (stamp, DocumentRecord.model_validate_json(p.read_bytes()))
                self._parsed[p.name] = cached
            yield cached[1].model_copy(deep=True)  # callers may mutate what they get
        for name in set(self._parsed) - seen:
            del self._parsed[name]

    def live_point_ids(self) -> frozenset[str]:
        """Point ids of the current version of every document; re-read only when a manifest changed."""
        stamp = tuple(
            (p.name, st.st_mtime_ns, st.st_size)
            for p in sorted(self.root.glob("*.json"))
            if self.root.is_dir()
            for st in [p.stat()]
        )
        if self._live is None or self._live[0] != stamp:
            ids = frozenset(s.point_id for rec in self for s in rec.sections if s.point_id)
            self._live = (stamp, ids)
        return self._live[1]

    def referenced_images(self) -> set[str]:
        return {k for rec in self for k in rec.image_keys}
