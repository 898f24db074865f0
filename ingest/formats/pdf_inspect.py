"""PDF specifics: sanity checks, scanned-page detection, OCR availability, font hints."""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ingest.formats.common import norm_key
from kb.errors import CorruptDocumentError

log = logging.getLogger(__name__)

_MONO = re.compile(r"mono|courier|consol|code|menlo|typewriter", re.IGNORECASE)
_BOLD = re.compile(r"bold|black|heavy|semibold", re.IGNORECASE)


@dataclass
class PdfInfo:
    pages: int
    title: str | None
    text_chars: int
    empty_pages: tuple[int, ...]


def inspect_pdf(path: Path) -> PdfInfo:
    """Open with pypdf: page count, metadata title, how much text the text layer holds."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                ok = bool(reader.decrypt(""))
            except Exception:  # pypdf raises several types for unsupported crypto
                ok = False
            if not ok:
                raise CorruptDocumentError(
                    f"{path.name} is password-protected", "remove the password (e.g. qpdf --decrypt) and upload again"
                )
        n = len(reader.pages)
        title = None
        try:
            meta = reader.metadata
            if meta is not None and meta.title:
                title = str(meta.title)
        except Exception:
            title = None
        chars = 0
        empty: list[int] = []
        for i, page in enumerate(reader.pages, start=1):
            try:
                t = page.extract_text() or ""
            except Exception:
                t = ""
            c = len(t.strip())
            chars += c
            if c < 10:
                empty.append(i)
    except CorruptDocumentError:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptDocumentError(
            f"{path.name} is not a readable PDF: {exc}", "check the file opens in a PDF viewer, or re-export it"
        ) from exc
    if n == 0:
        raise CorruptDocumentError(f"{path.name} has no pages", "re-export the PDF")
    return PdfInfo(pages=n, title=title, text_chars=chars, empty_pages=tuple(empty))


def ocr_tools_missing() -> list[str]:
    """Debian packages needed for OCR that are not installed."""
    missing = []
    if shutil.which("tesseract") is None:
        missing.append("tesseract-ocr")
    if shutil.which("pdftoppm") is None:
        missing.append("poppler-utils")
    return missing


@dataclass
class FontHints:
    """Per page: runs of consecutive monospace lines (code) and large/bold lines (headings)."""

    code_runs: dict[int, list[list[str]]] = field(default_factory=dict)
    heading_keys: set[str] = field(default_factory=set)

    def code_lines(self, page: int | None, text: str) -> list[str] | None:
        """The verbatim lines when `text` is a monospace run (or a contiguous part of one)."""
        if page is None:
            return None
        k = norm_key(text)
        if not k:
            return None
        for run in self.code_runs.get(page, []):
            keys = [norm_key(x) for x in run]
            joined = " ".join(keys)
            if k not in joined:
                continue
            # pick the contiguous lines that make up `text`
            for i in range(len(run)):
                acc = ""
                for j in range(i, len(run)):
                    acc = (acc + " " + keys[j]).strip()
                    if acc == k:
                        return run[i : j + 1]
                    if len(acc) > len(k):
                        break
            return [text]
        return None


def font_hints(path: Path) -> FontHints:
    """One pdfminer pass over the text layer; failures just mean no hints."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTChar, LTTextContainer, LTTextLine

    hints = FontHints()
    lines: list[tuple[int, str, bool, bool, float]] = []
    try:
        for pno, page in enumerate(extract_pages(str(path)), start=1):
            for box in page:
                if not isinstance(box, LTTextContainer):
                    continue
                for line in box:
                    if not isinstance(line, LTTextLine):
                        continue
                    chars = [c for c in line if isinstance(c, LTChar) and c.get_text().strip()]
                    if not chars:
                        continue
                    mono = all(_MONO.search(c.fontname) for c in chars)
                    bold = all(_BOLD.search(c.fontname) for c in chars)
                    size = max(c.size for c in chars)
                    lines.append((pno, line.get_text().rstrip("\n"), mono, bold, size))
    except Exception as exc:
        log.debug("pdfminer font pass failed: %s", exc)
        return hints
    if not lines:
        return hints
    body = Counter(round(s, 1) for _, t, _, _, s in lines for _ in range(max(1, len(t) // 20))).most_common(1)[0][0]
    prev_page = -1
    run: list[str] = []
    for pno, text, mono, bold, size in lines:
        if mono:
            if pno != prev_page:
                run = []
                hints.code_runs.setdefault(pno, []).append(run)
            run.append(text)
        else:
            run = []
            hints.code_runs.setdefault(pno, []).append(run)
            if bold and size > body + 0.5:
                hints.heading_keys.add(norm_key(text))
        prev_page = pno
    for p in hints.code_runs:
        hints.code_runs[p] = [r for r in hints.code_runs[p] if r]
    return hints


_PAGE_NUM = re.compile(r"^(page\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?(\s*(of|/)\s*\d{1,4})?$", re.IGNORECASE)


def is_page_number(text: str) -> bool:
    return bool(_PAGE_NUM.match(text.strip()))


def running_key(text: str) -> str:
    """Header/footer identity: digits replaced so "Page 3" and "Page 4" match."""
    return re.sub(r"\d+", "#", norm_key(text))
