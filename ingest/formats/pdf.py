"""PDF: unstructured's partitioner (fast text layer, or OCR for scans) plus pdfminer font hints for code
and headings, running headers/footers dropped, line-broken fragments re-joined."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ingest.formats._offline import prepare_unstructured
from ingest.formats.base import Format, Mismatch, looks_pdf
from ingest.formats.common import (
    CODEISH,
    Draft,
    clean_code,
    document_title,
    draft_from_element,
    heading_number_depth,
    is_admonition,
    norm_key,
    partition,
    resolve_levels,
)
from ingest.formats.pdf_inspect import (
    FontHints,
    font_hints,
    inspect_pdf,
    is_page_number,
    ocr_tools_missing,
    running_key,
)
from kb.errors import EmptyDocumentError
from kb.settings import Settings
from kb.types import Block, ParsedDocument


def sniff_pdf(head: bytes) -> Mismatch | None:
    if looks_pdf(head):
        return None
    return Mismatch("is not a PDF (no %PDF- header)", "check the file, or rename it to its real type")


def _ocr_languages(settings: Settings) -> list[str]:
    return [x for x in re.split(r"[+,\s]+", settings.ocr_languages) if x] or ["eng"]


def parse_pdf(path: Path, settings: Settings) -> ParsedDocument:
    """Text PDFs take the fast pdfium path; scanned pages (all, or some in a mixed file) go to OCR."""
    from ingest.formats.pdf_fast import ocr_pages, read_fast

    fast = read_fast(path)  # a password, a damaged file or no pages: a clear CorruptDocumentError
    if len(fast.scanned) == fast.pages or not fast.blocks:
        return _parse_pdf_unstructured(path, settings)
    blocks = list(fast.blocks)
    warnings = list(fast.warnings)
    ocr_used = False
    if fast.scanned:
        missing = ocr_tools_missing()
        listed = ", ".join(map(str, fast.scanned))
        if settings.ocr == "never" or missing:
            why = "OCR is off" if settings.ocr == "never" else "OCR tools missing: " + ", ".join(missing)
            warnings.append(f"pages without a text layer (not OCRed, {why}): {listed}")
        else:
            extra = ocr_pages(path, fast.scanned, lambda sub: _ocr_blocks(sub, settings))
            blocks = _insert_pages(blocks, extra)
            ocr_used = bool(extra)
            warnings.append(f"pages OCRed (no text layer): {listed}")
    title = document_title([fast.title], blocks, path)
    return ParsedDocument(
        title=title,
        format="pdf",
        blocks=tuple(blocks),
        pages=fast.pages,
        ocr_used=ocr_used,
        warnings=tuple(warnings),
        toc_pages=tuple(sorted(fast.toc_pages)),
    )


def _ocr_blocks(path: Path, settings: Settings) -> list[Block]:
    """OCR a (sub-)PDF with unstructured; its "titles" stay paragraphs so the outline's tree stands."""
    prepare_unstructured()  # before the first unstructured import
    from unstructured.partition.pdf import partition_pdf

    elements = partition(
        partition_pdf, path, filename=str(path), strategy="ocr_only", languages=_ocr_languages(settings)
    )
    drafts = [d for d in (draft_from_element(e) for e in elements) if d is not None and d.text]
    return [replace(d, kind="paragraph").block() if d.kind == "heading" else d.block() for d in drafts]


def _insert_pages(blocks: list[Block], extra: dict[int, list[Block]]) -> list[Block]:
    """Put OCRed pages' blocks where their pages sit in the reading order."""
    out: list[Block] = []
    pending = sorted(extra)
    for b in blocks:
        while pending and b.page is not None and pending[0] < b.page:
            out.extend(extra[pending.pop(0)])
        out.append(b)
    for n in pending:
        out.extend(extra[n])
    return out


def _parse_pdf_unstructured(path: Path, settings: Settings) -> ParsedDocument:
    """A PDF without a usable text layer: unstructured's partitioner, OCR when allowed."""
    prepare_unstructured()  # before the first unstructured import
    from unstructured.partition.pdf import partition_pdf

    info = inspect_pdf(path)
    warnings: list[str] = []
    scanned = info.text_chars < 20
    use_ocr = settings.ocr == "always" or (scanned and settings.ocr == "auto")
    if scanned and settings.ocr == "never":
        raise EmptyDocumentError(
            f"{path.name} has no text layer: it looks like a scanned (image-only) PDF",
            'enable OCR (ocr = "auto" or KB_OCR=auto) with tesseract-ocr and poppler-utils installed',
        )
    if use_ocr:
        missing = ocr_tools_missing()
        if missing:
            what = "looks like a scanned (image-only) PDF" if scanned else 'needs OCR (ocr = "always")'
            raise EmptyDocumentError(
                f"{path.name} {what}, but OCR tools are missing: {', '.join(missing)}",
                f"install them (apt-get install {' '.join(missing)}) or export the PDF with a text layer",
            )
    if info.empty_pages and not use_ocr and len(info.empty_pages) < info.pages:
        warnings.append(f"pages without a text layer (not OCRed): {', '.join(map(str, info.empty_pages))}")

    langs = _ocr_languages(settings)
    strategy = "ocr_only" if use_ocr else "fast"
    elements = partition(partition_pdf, path, filename=str(path), strategy=strategy, languages=langs)
    no_text = not any(str(e.text or "").strip() for e in elements)
    if no_text and not use_ocr and settings.ocr != "never" and not ocr_tools_missing():
        elements = partition(partition_pdf, path, filename=str(path), strategy="ocr_only", languages=langs)
        use_ocr = True
    if not any(str(e.text or "").strip() for e in elements):
        hint = (
            "enable OCR (KB_OCR=auto) and install tesseract-ocr and poppler-utils"
            if settings.ocr == "never" or ocr_tools_missing()
            else "the PDF may be blank or its images unreadable"
        )
        raise EmptyDocumentError(f"no text found in {path.name} (a scanned PDF?)", hint)

    fonts = FontHints() if use_ocr else font_hints(path)
    drafts = _pdf_drafts(elements, fonts, info.pages)
    numbered = sum(1 for d in drafts if d.kind == "heading" and heading_number_depth(d.text))
    blocks = resolve_levels(drafts, use_numbering=numbered > 0)
    title = document_title([info.title], blocks, path)
    return ParsedDocument(
        title=title, format="pdf", blocks=tuple(blocks), pages=info.pages, ocr_used=use_ocr, warnings=tuple(warnings)
    )


def _pdf_drafts(elements: list[Any], fonts: FontHints, pages: int) -> list[Draft]:
    drafts = [d for d in (draft_from_element(e) for e in elements) if d is not None and d.text]
    # running headers/footers: the same text (digits ignored) at the top or bottom of many pages
    by_page: dict[int, list[int]] = {}
    for i, d in enumerate(drafts):
        if d.page is not None:
            by_page.setdefault(d.page, []).append(i)

    def edge_positions(idxs: list[int]) -> set[int]:
        """First/last element of a page, and whatever unstructured put in header/footer position."""
        return {i for i in idxs if i in (idxs[0], idxs[-1]) or drafts[i].edge}

    seen_on: dict[str, set[int]] = {}
    for idxs in by_page.values():
        for i in edge_positions(idxs):
            if len(drafts[i].text) <= 150:
                seen_on.setdefault(running_key(drafts[i].text), set()).add(drafts[i].page or 0)
    threshold = max(3, (pages + 1) // 2)
    drop: set[int] = set()
    for idxs in by_page.values():
        if len(idxs) < 2:
            continue  # never drop a page's only text
        for i in edge_positions(idxs):
            d = drafts[i]
            repeated = len(seen_on.get(running_key(d.text), ())) >= threshold
            if is_page_number(d.text) or (pages >= 3 and len(d.text) <= 150 and repeated):
                drop.add(i)
    out: list[Draft] = []
    has_numbered = any(d.kind == "heading" and heading_number_depth(d.text) for d in drafts)
    for i, d in enumerate(drafts):
        if i in drop:
            continue
        d.tag_depth = None
        code = fonts.code_lines(d.page, d.text) if d.kind in ("paragraph", "heading", "list_item") else None
        if code:
            out.append(Draft("code", clean_code("\n".join(code)), page=d.page))
            continue
        k = norm_key(d.text)
        big = any(k.startswith(h) for h in fonts.heading_keys if len(h) >= 3)
        numbered = heading_number_depth(d.text) is not None
        if d.kind == "heading" and not d.admonition:
            if not (numbered or big or (not has_numbered and not fonts.heading_keys and _title_like(d.text))):
                d = replace(d, kind="paragraph")
        elif d.kind == "paragraph" and _title_like(d.text) and (big or (d.edge and numbered)):
            # unstructured calls a heading at the top of a page "Header"; fonts say otherwise
            d = replace(d, kind="heading", admonition=is_admonition(d.text))
        out.append(d)
    return _join_pdf_fragments(out)


def _title_like(text: str) -> bool:
    return len(text.split()) <= 12 and not text.endswith((".", ":", ",", ";")) and not CODEISH.search(text)


def _join_pdf_fragments(drafts: list[Draft]) -> list[Draft]:
    """Re-join a list item or paragraph that pdfminer cut at a line break (same page, lower-case start)."""
    out: list[Draft] = []
    for d in drafts:
        prev = out[-1] if out else None
        if (
            prev is not None
            and d.kind == "paragraph"
            and prev.kind in ("paragraph", "list_item")
            and prev.page == d.page
            and d.text[:1].islower()
            and not prev.text.endswith((".", ":", "!", "?"))
        ):
            prev.text = f"{prev.text} {d.text}"
            continue
        out.append(d)
    return out


FORMAT = Format(name="pdf", label="PDF", extensions=(".pdf",), sniff=sniff_pdf, parse=parse_pdf, family="pdf")
