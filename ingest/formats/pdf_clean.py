"""Page furniture out, reader's text in: running headers/footers, page numbers, table-of-contents and
index pages, footnotes, hyphenated line ends."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from ingest.formats.pdf_text import Line, PageText

_PAGE_NUM = re.compile(
    r"^(page\s*)?[-–—]?\s*([0-9]{1,4}|[ivxlcdm]{1,6})\s*[-–—]?(\s*(of|/)\s*[0-9]{1,4})?$", re.IGNORECASE
)
_LEADER = re.compile(r"(?:\s*\.){3,}\s*([0-9ivxlcdm]{1,6})?\s*$|\s{2,}([0-9]{1,4})\s*$", re.IGNORECASE)
_TOC_TITLE = re.compile(r"^(table of )?contents$|^index$|^(list of )(figures|tables)$|^目次$|^索引$", re.IGNORECASE)
_ENDS_WITH_NUMBER = re.compile(r"\S\s+([0-9]{1,4}|[ivxlc]{1,6})$", re.IGNORECASE)
_INDEX_ENTRY = re.compile(r"^\S.{0,60}?[, ]\s*[0-9]{1,4}(\s*[,–-]\s*[0-9]{1,4})*$")
_DIGITS = re.compile(r"[0-9]+")


def is_page_number(text: str) -> bool:
    return bool(_PAGE_NUM.match(text.strip()))


def _furniture_key(text: str) -> str:
    return _DIGITS.sub("#", " ".join(text.casefold().split()))


def drop_furniture(pages: list[PageText]) -> int:
    """Remove running headers/footers and page numbers in place; returns how many lines went.

    A line is furniture when it sits in the first or last row of its page, in a horizontal band where
    many pages carry text that repeats (digits ignored) or a page number. Per-chapter headers
    ("Chapter 2: Vectors   9") repeat within their chapter, so the band, not the exact text, decides."""
    if len(pages) < 3:
        return _drop_page_numbers(pages)
    edges: dict[int, list[Line]] = {}
    for p in pages:
        rows = _edge_rows(p)
        if rows:
            edges[p.number] = rows
    seen: dict[tuple[str, int, str], set[int]] = defaultdict(set)
    for pno, rows in edges.items():
        for ln, zone in ((ln, _zone(ln, pages[0])) for ln in rows):
            seen[(zone, _band(ln), _furniture_key(ln.text))].add(pno)
    band_pages: dict[tuple[str, int], set[int]] = defaultdict(set)
    for (zone, band, key), pnos in seen.items():
        if len(pnos) >= 2 or is_page_number(key.replace("#", "1")):
            band_pages[(zone, band)].update(pnos)
    need = max(2, len(pages) // 5)
    bands = {b for b, pnos in band_pages.items() if len(pnos) >= need}
    removed = 0
    for p in pages:
        edge_ids = {id(ln) for ln in edges.get(p.number, [])}
        keep: list[Line] = []
        for ln in p.lines:
            zone = _zone(ln, p)
            band_hit = any((zone, _band(ln) + d) in bands for d in (-1, 0, 1))
            if (
                id(ln) in edge_ids
                and (band_hit or (zone != "body" and is_page_number(ln.text)))
                and len(ln.text) <= 160
            ):
                removed += 1
                continue
            keep.append(ln)
        if keep or not p.lines:
            p.lines = keep
    return removed


def _drop_page_numbers(pages: list[PageText]) -> int:
    removed = 0
    for p in pages:
        rows = {id(ln) for ln in _edge_rows(p)}
        before = len(p.lines)
        p.lines = [ln for ln in p.lines if not (id(ln) in rows and _zone(ln, p) != "body" and is_page_number(ln.text))]
        removed += before - len(p.lines)
    return removed


def _edge_rows(p: PageText) -> list[Line]:
    """Lines of the top row and the bottom row of a page (several lines may share a row)."""
    if len(p.lines) < 2:
        return []
    by_top = sorted(p.lines, key=lambda ln: ln.top)
    first, last = by_top[0], by_top[-1]
    top_row = [ln for ln in p.lines if abs(ln.top - first.top) < 3]
    bottom_row = [ln for ln in p.lines if abs(ln.bottom - last.bottom) < 3]
    return top_row + [ln for ln in bottom_row if ln not in top_row]


def _zone(ln: Line, p: PageText) -> str:
    if ln.top < p.height * 0.15:
        return "top"
    if ln.bottom > p.height * 0.85:
        return "bottom"
    return "body"


def _band(ln: Line) -> int:
    return round(ln.top / 6)


@dataclass
class TocPage:
    number: int
    kind: str  # "toc" or "index"


def find_toc_pages(pages: list[PageText]) -> dict[int, str]:
    """Pages that are a table of contents (dot leaders / trailing page numbers) or a back-of-book index."""
    out: dict[int, str] = {}
    for p in pages:
        lines = p.lines
        if len(lines) < 5:
            continue
        title = next((ln.text for ln in lines[:3] if _TOC_TITLE.match(ln.text.strip())), None)
        leaders = sum(1 for ln in lines if re.search(r"(\s*\.){4,}", ln.text))
        numbered = sum(1 for ln in lines if _ENDS_WITH_NUMBER.search(ln.text) or _LEADER.search(ln.text))
        index_like = sum(1 for ln in lines if _INDEX_ENTRY.match(ln.text))
        if leaders >= 0.3 * len(lines) or (title and numbered >= 0.5 * len(lines)):
            out[p.number] = "index" if title and title.strip().casefold() in ("index", "索引") else "toc"
        elif index_like >= 0.6 * len(lines) and (title or out.get(p.number - 1) == "index"):
            out[p.number] = "index"
    # a contents listing continues on the next page without its title
    for p in pages:
        prev = out.get(p.number - 1)
        if prev == "toc" and p.number not in out and len(p.lines) >= 5:
            leaders = sum(
                1 for ln in p.lines if re.search(r"(\s*\.){4,}", ln.text) or _ENDS_WITH_NUMBER.search(ln.text)
            )
            if leaders >= 0.6 * len(p.lines):
                out[p.number] = "toc"
    return out


def toc_entry(text: str) -> str:
    """ "1.2 Related software . . . . 2" -> "1.2 Related software (p. 2)"."""
    m = _LEADER.search(text)
    if not m:
        return text.strip()
    head = text[: m.start()].rstrip(" .")
    num = m.group(1) or m.group(2)
    return f"{head} (p. {num})" if num else head


@dataclass
class Footnotes:
    """Footnote lines per page, taken out of the body."""

    by_page: dict[int, list[str]] = field(default_factory=dict)


_FOOTNOTE_START = re.compile(r"^([0-9]{1,3}|[*†‡§]|[¹²³⁴⁵⁶⁷⁸⁹⁰]+)\s*(?=\S)")
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def take_footnotes(pages: list[PageText], body_size: float) -> Footnotes:
    """Small-type lines at the foot of a page that start with a marker: removed from the flow and kept."""
    notes = Footnotes()
    for p in pages:
        lines = p.lines
        if len(lines) < 3:
            continue
        start = None
        i = len(lines) - 1
        while i > 0 and lines[i].size < body_size * 0.92 and lines[i].top > p.height * 0.5:
            if _FOOTNOTE_START.match(lines[i].text):
                start = i
            i -= 1
        if start is None or start == 0:
            continue
        texts: list[str] = []
        for ln in lines[start:]:
            m = _FOOTNOTE_START.match(ln.text)
            if m:
                mark = m.group(1).translate(_SUP)
                texts.append(f"{mark} {ln.text[m.end() :].strip()}")
            elif texts:
                texts[-1] = join_lines(texts[-1], ln.text)
        notes.by_page[p.number] = texts
        p.lines = lines[:start]
    return notes


_HYPHEN_END = re.compile(r"[^\W\d_]-$")


def join_lines(prev: str, nxt: str) -> str:
    """Join two wrapped lines; "recom-" + "mended" -> "recommended"."""
    if _HYPHEN_END.search(prev) and nxt[:1].islower():
        return prev[:-1] + nxt
    return f"{prev} {nxt}"
