"""Core value types shared by ingest and the service: documents, sections, blocks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from kb import names as _names
from kb.labels import page_span

BlockKind = Literal["heading", "paragraph", "list_item", "table", "code", "formula", "caption"]
# The element kinds a section reports (issue vocabulary): headings are structure, not content.
ElementKind = Literal["paragraph", "list", "table", "code", "formula", "caption"]

_KIND_OF_BLOCK: dict[str, ElementKind] = {
    "paragraph": "paragraph",
    "list_item": "list",
    "table": "table",
    "code": "code",
    "formula": "formula",
    "caption": "caption",
}


@dataclass(frozen=True)
class Block:
    """One structural piece of a section, as the renderer lays it out.

    - heading: `level` 1..6 (relative depth inside the document)
    - list_item: `level` is nesting depth (0 = top), `marker` is "•" or "1." etc.
    - table: `rows` holds the cells, first row is the header when `header` is true
    - code / formula: `text` is verbatim (newlines kept)
    """

    kind: BlockKind
    text: str
    level: int = 0
    marker: str | None = None
    rows: tuple[tuple[str, ...], ...] | None = None
    header: bool = False
    page: int | None = None

    def plain_text(self) -> str:
        """Text as a reader sees it; tables as tab-separated rows."""
        if self.kind == "table" and self.rows:
            return "\n".join("\t".join(r) for r in self.rows)
        if self.kind == "list_item" and self.marker:
            return f"{self.marker} {self.text}"
        return self.text


@dataclass(frozen=True)
class Section:
    """A contiguous part of a document under one heading path; renders to one image."""

    doc_id: str
    ordinal: int
    heading_path: tuple[str, ...]
    blocks: tuple[Block, ...]
    page_start: int | None = None
    page_end: int | None = None
    part: int = 1
    parts: int = 1
    headings: tuple[str, ...] = ()  # every heading inside, in order (several when small sections merged)
    role: str = "body"  # "toc": a contents or index listing (its words name every section: not matched in search)

    @property
    def text(self) -> str:
        return "\n".join(b.plain_text() for b in self.blocks)

    @property
    def kinds(self) -> tuple[ElementKind, ...]:
        seen: dict[ElementKind, None] = {}
        for b in self.blocks:
            k = _KIND_OF_BLOCK.get(b.kind)
            if k is not None:
                seen[k] = None
        return tuple(seen)

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        h.update("\x1f".join(self.heading_path).encode())
        for b in self.blocks:
            h.update(b"\x1e" + repr((b.kind, b.text, b.level, b.marker, b.rows, b.header, b.page)).encode())
        return h.hexdigest()

    @property
    def section_id(self) -> str:
        """Stable id: document id + content hash (so unchanged content keeps its id)."""
        return hashlib.sha256(f"{self.doc_id}\x00{self.content_hash}".encode()).hexdigest()[:32]

    @property
    def heading_label(self) -> str:
        return " › ".join(self.heading_path)

    @property
    def pages(self) -> tuple[int, int] | None:
        return page_span(self.page_start, self.page_end or None)


@dataclass(frozen=True)
class ParsedDocument:
    """What a parser returns: the blocks of one file in reading order, headings included."""

    title: str
    format: str
    blocks: tuple[Block, ...]
    pages: int | None = None
    ocr_used: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)
    toc_pages: tuple[int, ...] = ()  # pages recognised as a table of contents or an index


# In the core because both sides need it: ingest names section ids after it, the catalog files manifests
# under it. The rule itself (canonical names kept, changed ones hashed, tenant prefixes) is kb.names.
doc_id_for = _names.doc_id_for
