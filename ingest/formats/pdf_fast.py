"""The fast text-PDF path: pypdfium2 lines -> clean text -> headings (outline first) -> blocks.

unstructured stays for OCR: a fully scanned PDF goes its way, and in a mixed PDF only the pages
without a text layer are OCRed (see `ocr_pages`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.formats.pdf_clean import Footnotes, drop_furniture, find_toc_pages, join_lines, take_footnotes, toc_entry
from ingest.formats.pdf_inspect import inspect_pdf
from ingest.formats.pdf_outline import (
    Heading,
    OutlineEntry,
    body_size,
    font_headings,
    match_key,
    match_outline,
    numbered_headings,
    read_outline,
)
from ingest.formats.pdf_tables import PdfTable, find_tables
from ingest.formats.pdf_text import Line, PageText, read_pages
from kb.errors import CorruptDocumentError
from kb.types import Block

log = logging.getLogger(__name__)

_BULLET = re.compile(r"^([•◦▪‣∙·●○■□–—*-]|[0-9]{1,2}[.)]|[a-z][.)])\s+(?=\S)")
_SCANNED_CHARS = 10  # fewer printable characters than this: the page has no usable text layer
TOC_HEADING = {"toc": "Contents", "index": "Index"}


@dataclass
class FastPdf:
    """What the fast path read; `scanned` pages still need OCR."""

    title: str | None
    pages: int
    blocks: list[Block]
    scanned: list[int]
    outline: list[OutlineEntry]
    broken_outline: int
    toc_pages: dict[int, str]
    warnings: list[str]


def open_pdf(path: Path) -> object:
    """Open with pdfium; a password or a damaged file is a `CorruptDocumentError` the user can act on."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        # pdfium's codes are terse ("Failed to load document (PDFium: Success)" for a PDF without pages):
        # pypdf says which it is (password, no pages, damaged) in words the user can act on
        inspect_pdf(path)
        raise CorruptDocumentError(
            f"{path.name} is not a readable PDF: {exc}", "check the file opens in a PDF viewer, or re-export it"
        ) from exc
    if len(doc) == 0:
        doc.close()
        raise CorruptDocumentError(f"{path.name} has no pages", "re-export the PDF")
    return doc


def read_fast(path: Path) -> FastPdf:
    doc = open_pdf(path)
    try:
        n = len(doc)  # type: ignore[arg-type]
        meta = doc.get_metadata_dict(skip_empty=True)  # type: ignore[attr-defined]
        pages = read_pages(doc)
        outline, broken = read_outline(doc, n)
    finally:
        doc.close()  # type: ignore[attr-defined]
    scanned = [p.number for p in pages if p.chars < _SCANNED_CHARS and (p.images > 0 or not p.lines)]
    text_pages = [p for p in pages if p.number not in scanned]
    warnings: list[str] = []
    if broken:
        warnings.append(f"{broken} outline entries point to no page (ignored)")
    size = body_size(text_pages)
    drop_furniture(text_pages)
    toc = find_toc_pages(text_pages)
    notes = take_footnotes([p for p in text_pages if p.number not in toc], size)
    tables = find_tables(text_pages, set(toc))
    headings = _headings(outline, text_pages, size, toc)
    title = str(meta.get("Title") or "").strip() or None
    if title is None:
        title = _title_from_first_page(text_pages, size)
    blocks = _blocks(text_pages, headings, tables, notes, toc, size)
    return FastPdf(title, n, blocks, scanned, outline, broken, toc, warnings)


def _title_from_first_page(pages: list[PageText], size: float) -> str | None:
    if not pages or not pages[0].lines:
        return None
    big = max(pages[0].lines, key=lambda ln: ln.size)
    return big.text if big.size > size * 1.3 else None


def _headings(outline: list[OutlineEntry], pages: list[PageText], size: float, toc: dict[int, str]) -> list[Heading]:
    body = [p for p in pages if p.number not in toc]
    usable = [e for e in outline if e.page is not None]
    if usable:
        found = match_outline(usable, pages, set(toc))
        if len(found) >= max(1, len(usable) // 3):
            return found
        log.info("outline matched only %d of %d entries: using numbered headings", len(found), len(usable))
    found = numbered_headings(body, size)
    return found if found else font_headings(body, size)


def _blocks(
    pages: list[PageText],
    headings: list[Heading],
    tables: dict[int, list[PdfTable]],
    notes: Footnotes,
    toc: dict[int, str],
    size: float,
) -> list[Block]:
    heading_of: dict[int, Heading] = {}
    for h in headings:
        for lid in h.line_ids:
            heading_of[lid] = h
    out: list[Block] = []
    pending_notes: list[Block] = []
    b = _Builder(out, size)
    for p in pages:
        if p.number in toc:
            b.flush()
            named = [heading_of[id(ln)] for ln in p.lines if id(ln) in heading_of]
            _toc_blocks(out, p, toc[p.number], pending_notes, named, {id(ln) for ln in p.lines if id(ln) in heading_of})
            continue
        placed: set[int] = set()
        page_tables = tables.get(p.number, [])
        for ln in p.lines:
            t = next((t for t in page_tables if t.holds(ln)), None)
            if t is not None:
                if id(t) not in placed:
                    placed.add(id(t))
                    b.flush()
                    rows = tuple(tuple(r) for r in t.rows)
                    out.append(
                        Block("table", "\n".join("\t".join(r) for r in rows), rows=rows, header=t.header, page=p.number)
                    )
                continue
            head = heading_of.get(id(ln))
            if head is not None:
                if head.line_ids[0] != id(ln):
                    continue  # the second line of a two-line heading
                b.flush()
                out.extend(pending_notes)  # footnotes close the section they belong to
                pending_notes.clear()
                out.append(Block("heading", head.text, level=max(1, min(6, head.level)), page=p.number))
                continue
            b.add(ln)
        b.end_page()
        pending_notes.extend(Block("paragraph", n, page=p.number) for n in notes.by_page.get(p.number, []))
    b.flush()
    out.extend(pending_notes)
    return out


def _toc_blocks(
    out: list[Block], p: PageText, kind: str, pending: list[Block], named: list[Heading], skip: set[int]
) -> None:
    """A contents/index page: entries as a list without dot leaders, under the outline's heading for the
    page when it has one ("Concept index"), else a generic "Contents"/"Index" heading once per run."""
    headed = False
    for ln in p.lines:
        if id(ln) in skip:
            h = next(h for h in named if h.line_ids[0] == id(ln) or id(ln) in h.line_ids)
            if h.line_ids[0] == id(ln):
                out.extend(pending)
                pending.clear()
                out.append(Block("heading", h.text, level=max(1, min(6, h.level)), page=p.number))
                headed = True
            continue
        if match_key(ln.text) in ("contents", "tableofcontents", "index"):
            continue
        if not headed and not _continues_toc(out, p.number):
            out.extend(pending)
            pending.clear()
            out.append(Block("heading", TOC_HEADING[kind], level=1, page=p.number))
        headed = True
        text = toc_entry(ln.text)
        if text:
            out.append(Block("list_item", text, level=0, marker="", page=p.number))


def _continues_toc(out: list[Block], page: int) -> bool:
    """The previous page's contents listing goes on here."""
    return bool(out) and out[-1].kind == "list_item" and out[-1].marker == "" and out[-1].page == page - 1


class _Builder:
    """Lines -> paragraphs, list items and code blocks."""

    def __init__(self, out: list[Block], size: float) -> None:
        self.out = out
        self.size = size
        self.lines: list[Line] = []
        self.kind = "paragraph"
        self.left: float | None = None  # the body's left margin, from the lines seen

    def add(self, ln: Line) -> None:
        prev = self.lines[-1] if self.lines else None
        kind = "code" if ln.mono else ("list_item" if _BULLET.match(ln.text) else "paragraph")
        if prev is None:
            self._start(ln, kind)
            return
        if prev.page != ln.page:
            # a paragraph runs over the page break only when the sentence visibly goes on
            gap_break = not (ln.text[:1].islower() or prev.text.endswith(("-", ",")))
        else:
            gap_break = ln.top - prev.bottom > 0.8 * max(prev.height, ln.height, 1)
        if kind == "code" or self.kind == "code":
            if kind == self.kind and not (gap_break and ln.top - prev.bottom > 2 * max(ln.height, 1)):
                self.lines.append(ln)
            else:
                self.flush()
                self._start(ln, kind)
            return
        indented = self.left is not None and ln.x0 > self.left + 6 and prev.x0 <= ln.x0 - 6
        starts_new = kind == "list_item" or gap_break or (indented and self.kind == "paragraph")
        if starts_new:
            self.flush()
            self._start(ln, kind)
        else:
            self.lines.append(ln)

    def _start(self, ln: Line, kind: str) -> None:
        self.lines = [ln]
        self.kind = kind
        if not ln.mono and (self.left is None or ln.x0 < self.left):
            self.left = ln.x0

    def end_page(self) -> None:
        if self.kind == "code":
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        first = self.lines[0]
        if self.kind == "code":
            left = min(ln.x0 for ln in self.lines)
            em = max(first.size * 0.6, 1.0)
            text = "\n".join(" " * max(0, round((ln.x0 - left) / em)) + ln.text for ln in self.lines)
            self.out.append(Block("code", text, page=first.page))
        else:
            text = first.text
            for ln in self.lines[1:]:
                text = join_lines(text, ln.text)
            if self.kind == "list_item":
                m = _BULLET.match(text)
                marker = m.group(1) if m else "•"
                marker = "•" if marker in "•◦▪‣∙·●○■□–—*-" else marker
                level = 1 if self.left is not None and first.x0 > self.left + 20 else 0
                self.out.append(
                    Block("list_item", text[m.end() :] if m else text, level=level, marker=marker, page=first.page)
                )
            else:
                self.out.append(Block("paragraph", text, page=first.page))
        self.lines = []


def ocr_pages(path: Path, numbers: list[int], ocr: Callable[[Path], list[Block]]) -> dict[int, list[Block]]:
    """OCR only `numbers` (1-based): copy them into a small PDF, run `ocr` on it, map pages back."""
    import tempfile

    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(str(path))
    part = pdfium.PdfDocument.new()
    try:
        part.import_pages(src, [n - 1 for n in numbers])
        with tempfile.TemporaryDirectory(prefix="kb-ocr-") as tmp:
            sub = Path(tmp) / "pages.pdf"
            part.save(str(sub))
            blocks = ocr(sub)
    finally:
        part.close()
        src.close()
    out: dict[int, list[Block]] = {}
    for blk in blocks:
        real = numbers[(blk.page or 1) - 1] if 0 < (blk.page or 1) <= len(numbers) else numbers[0]
        out.setdefault(real, []).append(Block(blk.kind, blk.text, blk.level, blk.marker, blk.rows, blk.header, real))
    return out
