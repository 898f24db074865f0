"""Headings of a PDF: its outline (bookmarks) when it has one, else numbered headings set in a bigger or
bolder font. Each heading found becomes a split point of the section tree."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ingest.formats.pdf_text import Line, PageText

log = logging.getLogger(__name__)

_NUMBERED = re.compile(
    r"^(?:(?:chapter|section|part|appendix)\s+)?((?:[0-9]+|[A-Z])(?:\.[0-9]+)*)\.?\s+(?=\S)", re.IGNORECASE
)
_CHAPTER_WORD = re.compile(r"^(chapter|part|appendix)\s+([0-9]+|[A-Z]|[IVXLC]+)\b", re.IGNORECASE)
_NON_WORD = re.compile(r"[^\w]+")


@dataclass
class OutlineEntry:
    level: int  # 1 = top
    title: str
    page: int | None  # 1-based target page; None when the entry points nowhere


@dataclass
class Heading:
    """A line (or two) of the text marked as a heading."""

    page: int
    line_ids: tuple[int, ...]  # ids of `Line` objects (id()) that make up the heading
    text: str
    level: int


def match_key(text: str) -> str:
    """Letters and digits only, case-folded: outline titles and typeset lines differ in spacing and quotes."""
    t = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub("", t)


def read_outline(doc: Any, pages: int) -> tuple[list[OutlineEntry], int]:
    """(entries, how many point nowhere). A damaged outline yields what could be read."""
    out: list[OutlineEntry] = []
    broken = 0
    try:
        for bm in doc.get_toc(max_depth=8):
            title = " ".join(str(bm.get_title() or "").split())
            if not title:
                continue
            page: int | None = None
            try:
                dest = bm.get_dest()
                index = dest.get_index() if dest is not None else None
                if index is not None and 0 <= index < pages:
                    page = index + 1
            except Exception:  # a destination pdfium cannot resolve
                page = None
            if page is None:
                broken += 1
            out.append(OutlineEntry(level=int(bm.level) + 1, title=title, page=page))
    except Exception as exc:  # a cyclic or truncated outline tree
        log.info("outline unreadable after %d entries: %s", len(out), exc)
    return out, broken


def match_outline(entries: list[OutlineEntry], pages: list[PageText], toc: set[int]) -> list[Heading]:
    """Find each outline entry in the text of its target page (or the next): a heading per match.

    Entries are matched in order; a title is searched in the page's lines from the previous match on,
    as one line, the start of a line, or two consecutive lines."""
    by_number = {p.number: p for p in pages}
    found: list[Heading] = []
    used: set[int] = set()
    for e in entries:
        if e.page is None:
            continue
        key = match_key(e.title)
        if not key:
            continue
        for pno in (e.page, e.page + 1, e.page - 1):
            page = by_number.get(pno)
            if page is None or (pno in toc and pno != e.page):
                continue  # a contents page lists every title: only its own entry ("Contents") is its heading
            hit = _find(page.lines, key, used)
            if hit is not None:
                used.update(id(ln) for ln in hit)
                found.append(Heading(pno, tuple(id(ln) for ln in hit), " ".join(ln.text for ln in hit), e.level))
                break
    return found


def _find(lines: list[Line], key: str, used: set[int]) -> list[Line] | None:
    best: list[Line] | None = None
    for i, ln in enumerate(lines):
        if id(ln) in used:
            continue
        k = match_key(ln.text)
        if not k:
            continue
        if k == key or (k.startswith(key) and len(key) >= 0.6 * len(k)):
            return [ln]
        # "Appendix A Essential programs" typeset for the outline's "A Essential programs"
        if k.endswith(key) and len(key) >= 0.6 * len(k) and _CHAPTER_WORD.match(ln.text):
            return [ln]
        if key.startswith(k) and len(k) >= 3:
            # a long title wrapped over two or three lines
            acc = k
            for n in range(1, 3):
                if i + n >= len(lines):
                    break
                acc += match_key(lines[i + n].text)
                if acc == key or (acc.startswith(key) and len(key) >= 0.6 * len(acc)):
                    return lines[i : i + n + 1]
                if not key.startswith(acc):
                    break
        # the line carries a number the outline leaves out ("2.1 Simple compilation" vs "Simple compilation")
        m = _NUMBERED.match(ln.text)
        if best is None and m and match_key(ln.text[m.end() :]) == key:
            best = [ln]
    return best


def numbered_headings(pages: list[PageText], body_size: float) -> list[Heading]:
    """Without an outline: short lines that start with a section number and stand out by size or weight."""
    found: list[Heading] = []
    depth_sizes: dict[int, list[float]] = {}
    for page in pages:
        for i, ln in enumerate(page.lines):
            if (
                ln.mono
                or len(ln.text) > 120
                or (ln.text.endswith((".", ",", ";", ":")) and not _NUMBERED.match(ln.text))
            ):
                continue
            bigger = ln.size > body_size + 0.5
            if not (bigger or ln.bold):
                continue
            depth = heading_depth(ln.text)
            if depth is None:
                continue
            ids, text = [id(ln)], ln.text
            nxt = page.lines[i + 1] if i + 1 < len(page.lines) else None
            if (
                nxt is not None
                and abs(nxt.size - ln.size) < 0.3
                and nxt.bold == ln.bold
                and 0 <= nxt.top - ln.bottom < 0.6 * ln.height
                and heading_depth(nxt.text) is None
                and len(text) + len(nxt.text) <= 160
            ):
                ids.append(id(nxt))  # a title wrapped onto a second line in the same type
                text = f"{text} {nxt.text}"
            found.append(Heading(page.number, tuple(ids), text, depth))
            depth_sizes.setdefault(depth, []).append(ln.size)
    return found


def heading_depth(text: str) -> int | None:
    """1 for "3", "Chapter 3", "A"; 2 for "3.1" / "A.2"; None for an unnumbered line."""
    if _CHAPTER_WORD.match(text):
        return 1
    m = _NUMBERED.match(text)
    if not m or len(text.split()) > 16:
        return None
    num = m.group(1)
    if len(num) == 1 and num.isalpha() and "." not in text[: m.end()]:
        return None  # "A word" is prose, "A.2" or "Appendix A" is a heading
    return len(num.split("."))


def font_headings(pages: list[PageText], body_size: float) -> list[Heading]:
    """Last resort: short lines in a clearly bigger font; level by size rank."""
    cands: list[tuple[PageText, Line]] = []
    for page in pages:
        for ln in page.lines:
            if ln.size >= body_size * 1.15 and len(ln.text) <= 100 and not ln.mono and len(ln.text.split()) <= 14:
                cands.append((page, ln))
    sizes = sorted({round(ln.size) for _, ln in cands}, reverse=True)[:4]
    rank = {s: i + 1 for i, s in enumerate(sizes)}
    return [Heading(p.number, (id(ln),), ln.text, rank[round(ln.size)]) for p, ln in cands if round(ln.size) in rank]


def body_size(pages: list[PageText]) -> float:
    """The most common font size, weighted by characters."""
    c: Counter[float] = Counter()
    for p in pages:
        for ln in p.lines:
            c[round(ln.size, 1)] += len(ln.text)
    return c.most_common(1)[0][0] if c else 10.0
