"""The document catalog: one JSON manifest per document, written last and atomically.

A document is complete exactly when its manifest exists; images are written before it, so a
crash leaves orphan images (collected later) but never a half-ingested document.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from kb.errors import DocumentNotFoundError
from kb.fsutil import atomic_write_bytes
from kb.names import is_doc_id
from kb.types import doc_id_for as doc_id_for  # re-exported: callers look it up here

SCHEMA_VERSION = 1


class ImageRecord(BaseModel):
    key: str
    width: int
    height: int
    visual_tokens: int
    lines: str = ""  # where each text line is drawn: kb.spans.encode_lines (empty before it was recorded)


class SectionRecord(BaseModel):
    section_id: str
    ordinal: int
    part: int = 1
    parts: int = 1
    heading_path: list[str]
    headings: list[str] = Field(default_factory=list)  # every heading inside, in order
    role: str = "body"  # "toc": a contents/index listing
    page_start: int | None = None
    page_end: int | None = None
    kinds: list[str]
    text: str
    content_hash: str
    text_tokens: int  # content tokens of this part, counted once (ingest/accounting.py)
    images: list[ImageRecord]
    point_id: str | None = None  # the Qdrant point, once indexed
    blocks: str = ""  # the blocks' kinds, levels, pages and spans in `text`: kb.spans.encode_blocks

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
    render_profile: str = ""  # the render profile (kb tune-render) its images were drawn with; "" = [render]
    tokenizer: str = ""  # what counted text_tokens (e.g. "all-MiniLM-L6-v2 WordPiece"); "" in old manifests
    ingested_at: str
    tags: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    sections: list[SectionRecord]
    revises: str | None = None  # the document id of the version this one replaces (kb.compare.versions)

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


@dataclass(frozen=True)
class DocSummary:
    """What per-request checks need from a manifest (scoping, live ids, image ownership), without
    copying its sections."""

    doc_id: str
    tags: tuple[str, ...]
    point_ids: frozenset[str]
    image_keys: frozenset[str]

    @classmethod
    def of(cls, rec: DocumentRecord) -> DocSummary:
        return cls(
            rec.doc_id,
            tuple(rec.tags),
            frozenset(s.point_id for s in rec.sections if s.point_id),
            frozenset(rec.image_keys),
        )


_Stamp = tuple[tuple[str, int, int, int], ...]

STAMP_TTL_S = 0.25
# Manifest writes per catalog directory in this process, shared by every Catalog on it.
_GENERATION: dict[str, int] = {}
_GENERATION_LOCK = threading.Lock()


def _entry(name: str, st: os.stat_result) -> tuple[str, int, int, int]:
    return (name, st.st_ino, st.st_mtime_ns, st.st_size)  # atomic replace gives a new inode


class Catalog:
    """Thread-safe: the API lists and reads it from many request threads while one writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._summaries: tuple[_Stamp, dict[str, DocSummary], frozenset[str]] | None = None
        # Parsed manifests by file name, with the (inode, mtime, size) they were read at: listing the
        # catalog re-parses only what changed.
        self._parsed: dict[str, tuple[tuple[int, int, int], DocumentRecord]] = {}
        self._key = str(root.absolute())
        self._stamp_cache: tuple[int, float, _Stamp] | None = None
        self._stamp_lock = threading.Lock()

    def _path(self, doc_id: str) -> Path:
        if not is_doc_id(doc_id):
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
        self._changed(f"{rec.doc_id}.json")

    def delete(self, doc_id: str) -> DocumentRecord:
        rec = self.require(doc_id)
        self._path(doc_id).unlink()
        self._changed(f"{doc_id}.json")
        return rec

    def _stamp(self) -> _Stamp:
        """Name, inode, mtime and size of every manifest: what changed since the last look.

        Writes in this process are seen at once (they bump a per-directory generation; this catalog's
        own writes patch its stamp in place); another process's (a second API replica on a shared
        data dir) within STAMP_TTL_S."""
        with self._stamp_lock:  # one thread rescans; the others wait for its result
            gen = _GENERATION.get(self._key, 0)
            cached = self._stamp_cache
            now = time.monotonic()
            if cached is not None and cached[0] == gen and now - cached[1] < STAMP_TTL_S:
                return cached[2]
            out = {}
            try:
                entries = list(os.scandir(self.root))
            except FileNotFoundError:
                entries = []
            for e in entries:
                if e.name.endswith(".json") and not e.name.startswith("."):
                    with contextlib.suppress(FileNotFoundError):  # deleted while listing
                        out[e.name] = _entry(e.name, e.stat())
            stamp = tuple(out[k] for k in sorted(out))
            self._stamp_cache = (gen, now, stamp)
            return stamp

    def _changed(self, name: str) -> None:
        with self._stamp_lock, _GENERATION_LOCK:
            gen = _GENERATION[self._key] = _GENERATION.get(self._key, 0) + 1
            cached = self._stamp_cache
            if cached is not None and cached[0] == gen - 1:  # nobody else wrote since: patch, don't rescan
                entries = {e[0]: e for e in cached[2] if e[0] != name}
                with contextlib.suppress(FileNotFoundError):
                    entries[name] = _entry(name, (self.root / name).stat())
                self._stamp_cache = (gen, cached[1], tuple(entries[k] for k in sorted(entries)))

    def _records(self, stamp: _Stamp) -> list[DocumentRecord]:
        """The parsed manifests named by `stamp` (shared objects: never hand them out unchanged)."""
        with self._lock:
            out = []
            for name, ino, mtime, size in stamp:
                cached = self._parsed.get(name)
                if cached is None or cached[0] != (ino, mtime, size):
                    try:
                        data = (self.root / name).read_bytes()
                    except FileNotFoundError:
                        continue
                    cached = ((ino, mtime, size), DocumentRecord.model_validate_json(data))
                    self._parsed[name] = cached
                out.append(cached[1])
            for gone in set(self._parsed) - {name for name, *_ in stamp}:
                del self._parsed[gone]
            return out

    def __iter__(self) -> Iterator[DocumentRecord]:
        for rec in self._records(self._stamp()):
            yield rec.model_copy(deep=True)  # callers may mutate what they get

    def summaries(self) -> Mapping[str, DocSummary]:
        """Every document's summary by id; re-read only when a manifest changed."""
        return self._snapshot()[1]

    def live_point_ids(self) -> frozenset[str]:
        """Point ids of the current version of every document."""
        return self._snapshot()[2]

    def _snapshot(self) -> tuple[_Stamp, dict[str, DocSummary], frozenset[str]]:
        stamp = self._stamp()
        snap = self._summaries
        if snap is None or snap[0] != stamp:
            docs = {r.doc_id: DocSummary.of(r) for r in self._records(stamp)}
            snap = (stamp, docs, frozenset(i for d in docs.values() for i in d.point_ids))
            self._summaries = snap
        return snap

    def referenced_images(self) -> set[str]:
        return {k for d in self.summaries().values() for k in d.image_keys}
