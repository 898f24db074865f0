"""A document as comparable units: sentences, list items, table rows and code lines, grouped into
sections by its own headings (re-derived from the manifest's block spans, so sections merged or
paginated for rendering are whole again)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kb.catalog import DocumentRecord, SectionRecord
from kb.compare.text import Token, clean, is_furniture, sentences, strip_numbering, title_key, tokens
from kb.spans import BlockSpan, decode_blocks

UnitKind = str  # "sentence" | "item" | "row" | "line"


@dataclass
class Span:
    """Where a unit's text lies in one manifest section (= one image)."""

    record: int  # index into DocumentRecord.sections
    start: int
    end: int


@dataclass
class Unit:
    kind: UnitKind
    text: str  # cleaned display text
    toks: list[Token]
    section: int  # index into DocView.sections
    page: int | None
    spans: list[Span]
    key: str = ""  # the normalised words, what alignment compares

    def __post_init__(self) -> None:
        self.key = " ".join(t.norm for t in self.toks)

    def extend(self, more: str, span: Span) -> None:
        """A paragraph or list item cut between two images, made whole again."""
        self.text = clean(self.text + " " + more)
        self.toks = tokens(self.text)
        self.key = " ".join(t.norm for t in self.toks)
        self.spans.append(span)


@dataclass
class CSection:
    path: tuple[str, ...]
    title: str  # title_key of the last heading
    units: list[int] = field(default_factory=list)  # indices into DocView.units

    @property
    def label(self) -> str:
        return " › ".join(self.path)


@dataclass
class DocView:
    doc_id: str
    title: str
    paginated: bool  # page numbers are real (PDF/DOCX): stray page numbers are furniture
    sections: list[CSection]
    units: list[Unit]

    def pages(self, idx: list[int]) -> list[int]:
        return sorted({p for i in idx if (p := self.units[i].page) is not None})


def _fallback_blocks(rec: SectionRecord) -> list[BlockSpan]:
    """Manifests written before block spans were recorded: one paragraph per text line."""
    out, pos = [], 0
    for line in rec.text.split("\n"):
        out.append(BlockSpan("paragraph", 0, 0, False, rec.page_start, pos, pos + len(line)))
        pos += len(line) + 1
    return out


class _Builder:
    def __init__(self, rec: DocumentRecord) -> None:
        self.rec = rec
        self.sections: list[CSection] = []
        self.units: list[Unit] = []
        self.stack: list[tuple[int, str]] = []
        self.last_table_head: str | None = None
        self.open_para: bool = False  # the last unit is a paragraph's last sentence, cut without an ending

    def section(self) -> int:
        if not self.sections:
            path = tuple(self.rec.sections[0].heading_path) if self.rec.sections else (self.rec.title,)
            self.sections.append(CSection(path, title_key(path[-1]) if path else ""))
        return len(self.sections) - 1

    def heading(self, text: str, level: int) -> None:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, clean(text)))
        path = tuple(t for _, t in self.stack)
        self.sections.append(CSection(path, title_key(text)))
        self.open_para = False

    def heading_unit(self, ri: int, text: str, b: BlockSpan) -> None:
        """The heading's words, without its numbering, are a unit too: one parser's heading is another's
        numbered list item or paragraph, and a renamed heading is a change; a renumbered one is not."""
        title = title_key(text)
        if title:
            sec = self.section()
            self.units.append(
                Unit("heading", strip_numbering(clean(text)), tokens(title), sec, b.page, [Span(ri, b.start, b.end)])
            )
            self.sections[sec].units.append(len(self.units) - 1)

    def add(self, kind: UnitKind, raw: str, page: int | None, span: Span) -> None:
        text = clean(raw)
        toks = tokens(text)
        if not toks:
            return
        sec = self.section()
        self.units.append(Unit(kind, text, toks, sec, page, [span]))
        self.sections[sec].units.append(len(self.units) - 1)

    def paragraph(self, ri: int, text: str, b: BlockSpan, continued: bool) -> None:
        start = b.start
        parts = sentences(text)
        if continued and self.open_para and self.units and parts:
            # A paragraph cut between two images: its first piece ends the previous sentence.
            first = parts.pop(0)
            at = text.find(first)
            self.units[-1].extend(first, Span(ri, b.start + max(at, 0), b.start + max(at, 0) + len(first)))
            start = b.start + max(at, 0) + len(first)
        body = self.rec.sections[ri].text
        for s in parts:
            at = body.find(s, start, b.end)
            at = at if at >= 0 else start
            self.add("sentence", s, b.page, Span(ri, at, at + len(s)))
            start = at + len(s)
        self.open_para = bool(parts) and not text.rstrip().endswith((".", "!", "?", ":", ";", "。"))

    def block(self, ri: int, b: BlockSpan, first_in_part: bool) -> None:
        rec = self.rec.sections[ri]
        text = rec.text[b.start : b.end]
        continued = first_in_part and rec.part > 1
        if b.kind == "heading":
            if not continued:
                self.heading(text, max(1, b.level))
                self.heading_unit(ri, text, b)
            return
        if b.kind in ("paragraph", "caption"):
            self.paragraph(ri, text, b, continued)
            return
        self.open_para = False
        if b.kind == "list_item":
            if b.marker_len == 0 and continued and self.units and self.units[-1].kind == "item":
                self.units[-1].extend(text, Span(ri, b.start, b.end))  # a list item cut between two images
                return
            self.add("item", text[b.marker_len :], b.page, Span(ri, b.start + b.marker_len, b.end))
            return
        pos = b.start
        rows = text.split("\n")
        for i, row in enumerate(rows):
            span = Span(ri, pos, pos + len(row))
            pos += len(row) + 1
            if b.kind == "table":
                cells = " | ".join(c.strip() for c in row.split("\t"))
                key = " ".join(t.norm for t in tokens(clean(cells)))
                if i == 0 and b.header:
                    if continued and key == self.last_table_head:
                        continue  # the header row repeated on the next image
                    self.last_table_head = key
                self.add("row", cells, b.page, span)
            elif row.strip():
                self.add("line", row, b.page, span)


def doc_view(rec: DocumentRecord) -> DocView:
    bld = _Builder(rec)
    for ri, srec in enumerate(rec.sections):
        blocks = decode_blocks(srec.blocks) if srec.blocks else _fallback_blocks(srec)
        for k, b in enumerate(blocks):
            bld.block(ri, b, k == 0)
    paginated = rec.format in ("pdf", "docx", "pptx") or rec.pages is not None
    units = _drop_furniture(bld.units, paginated)
    view = DocView(rec.doc_id, rec.title, paginated, bld.sections, [])
    _reindex(view, units)
    return view


def _drop_furniture(units: list[Unit], paginated: bool) -> list[Unit]:
    """Page numbers, and short lines repeated on three or more pages (running headers and footers)."""
    if not paginated:
        return units
    pages: dict[str, set[int | None]] = {}
    for u in units:
        if len(u.text) <= 80:
            pages.setdefault(u.key, set()).add(u.page)
    running = {k for k, p in pages.items() if len(p) >= 3}
    return [u for u in units if not is_furniture(u.text) and u.key not in running]


def _reindex(view: DocView, units: list[Unit]) -> None:
    for s in view.sections:
        s.units = []
    for i, u in enumerate(units):
        view.sections[u.section].units.append(i)
    view.units = units


def key_counts(view: DocView) -> Counter[str]:
    return Counter(u.key for u in view.units)
