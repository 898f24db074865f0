"""Tables in a PDF's text layer, rule-based (no model): ruled tables with pdfplumber's line finder, only on
pages that draw enough vector rules; unruled tables from lines whose wide-gap pieces line up in columns."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.formats.pdf_clean import join_lines
from ingest.formats.pdf_text import Line, PageText

log = logging.getLogger(__name__)

_MIN_RULES = 4  # path objects on a page before pdfplumber is asked to look for a ruled table
_MAX_CELL = 400


@dataclass
class PdfTable:
    page: int
    x0: float
    top: float
    x1: float
    bottom: float
    rows: list[list[str]]
    header: bool

    def holds(self, ln: Line) -> bool:
        cy = (ln.top + ln.bottom) / 2
        cx = (ln.x0 + ln.x1) / 2
        return self.top - 1 <= cy <= self.bottom + 1 and self.x0 - 1 <= cx <= self.x1 + 1


def find_tables(path: Path, pages: list[PageText], skip: set[int]) -> dict[int, list[PdfTable]]:
    """Tables per page number. `skip`: pages not to look at (contents/index pages)."""
    out: dict[int, list[PdfTable]] = {}
    ruled = [p for p in pages if p.hrules >= _MIN_RULES and p.lines and p.number not in skip]
    if ruled:
        for t in _ruled(path, ruled):
            same_page = out.setdefault(t.page, [])
            if not any(o.top < t.bottom and t.top < o.bottom and o.x0 < t.x1 and t.x0 < o.x1 for o in same_page):
                same_page.append(t)  # nested or overlapping finds: the first (outer) one stands
    for p in pages:
        if p.number in skip:
            continue
        taken = out.get(p.number, [])
        for t in _unruled(p, taken):
            out.setdefault(p.number, []).append(t)
    return out


def _ruled(path: Path, pages: list[PageText]) -> list[PdfTable]:
    try:
        import pdfplumber
    except ImportError:  # pragma: no cover - a declared dependency
        log.warning("pdfplumber is not installed: ruled tables in PDFs stay text")
        return []
    found: list[PdfTable] = []
    try:
        with pdfplumber.open(str(path)) as pdf:
            for p in pages:
                page = pdf.pages[p.number - 1]
                # booktabs-style tables draw only horizontal rules: their columns come from the text
                vertical = "lines" if p.vrules >= 2 else "text"
                settings = {"vertical_strategy": vertical, "horizontal_strategy": "lines", "snap_tolerance": 3}
                try:
                    tables = page.find_tables(settings)
                    for t in tables:
                        x0, top, x1, bottom = (float(v) for v in t.bbox)
                        if vertical == "lines":
                            rows = _clean_rows(t.extract())
                            if rows and _dense(rows):
                                found.append(PdfTable(p.number, x0, top, x1, bottom, rows, header=len(rows) > 1))
                                continue
                        # rows between horizontal rules; columns from where the text's pieces line up
                        box = PdfTable(p.number, x0, top, x1, bottom, [], header=True)
                        inside = [ln for ln in p.lines if box.holds(ln)]
                        for run in _aligned_runs(inside):
                            aligned = _as_table(p.number, run, len(p.lines), min_rows=2)
                            if aligned is not None:
                                aligned.header = True
                                found.append(aligned)
                finally:
                    page.close()  # pdfplumber caches each page's objects: free them as we go
    except Exception as exc:  # a table finder failure must not lose the document's text
        log.info("pdfplumber failed on %s: %s", path.name, exc)
    return found


def _clean_rows(raw: list[list[Any]]) -> list[list[str]] | None:
    rows = [[_cell(c) for c in r] for r in raw if r]
    rows = [r for r in rows if any(r)]
    if len(rows) < 2:
        return None
    width = max(len(r) for r in rows)
    # drop columns that are empty everywhere (merged cells leave them)
    cols = [j for j in range(width) if any(j < len(r) and r[j] for r in rows)]
    if len(cols) < 2:
        return None  # a framed box (code listing, note), not a table
    rows = [[r[j] if j < len(r) else "" for j in cols] for r in rows]
    # boxes drawn for other reasons (shaded code, page frames) give rows of one long cell
    filled = sum(1 for r in rows if sum(1 for c in r if c) >= 2)
    if filled < 0.6 * len(rows) or max(len(c) for r in rows for c in r) > _MAX_CELL:
        return None
    return rows


def _dense(rows: list[list[str]]) -> bool:
    """A clean grid: most rows fill most columns (a split word or a paragraph in one cell does not)."""
    width = len(rows[0])
    full = sum(1 for r in rows if sum(1 for c in r if c) >= max(2, width - 1))
    return full >= 0.7 * len(rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = ""
    for part in str(value).split("\n"):
        part = " ".join(part.split())
        if part:
            text = join_lines(text, part) if text else part
    return text


def _unruled(p: PageText, taken: list[PdfTable]) -> list[PdfTable]:
    """Runs of >= 3 lines split by wide gaps into pieces that start at the same x positions."""
    lines = [ln for ln in p.lines if not any(t.holds(ln) for t in taken)]
    found = (_as_table(p.number, run, len(lines)) for run in _aligned_runs(lines))
    return [t for t in found if t is not None]


def _aligned_runs(lines: list[Line]) -> list[list[Line]]:
    """Maximal runs of multi-piece lines (and wrapped-cell lines under a later column), close together."""
    runs: list[list[Line]] = []
    i = 0
    while i < len(lines):
        if not _multi(lines[i]):
            i += 1
            continue
        j = i
        while j + 1 < len(lines) and (_multi(lines[j + 1]) or _continues(lines[j + 1], lines[i : j + 1])):
            if lines[j + 1].top - lines[j].bottom > 2.5 * max(lines[j].height, 1):
                break
            j += 1
        runs.append(lines[i : j + 1])
        i = j + 1
    return runs


def _multi(ln: Line) -> bool:
    return len(ln.segments) >= 2 and not ln.mono and "..." not in ln.text and ". . ." not in ln.text


def _continues(ln: Line, run: list[Line]) -> bool:
    """A one-piece line that starts under a later column: a wrapped cell."""
    if len(ln.segments) != 1 or ln.mono:
        return False
    starts = {round(s.x0) for r in run for s in r.segments[1:]}
    return any(abs(ln.x0 - x) < 4 for x in starts)


def _as_table(page: int, run: list[Line], page_lines: int, min_rows: int = 3) -> PdfTable | None:
    multi = [ln for ln in run if len(ln.segments) >= 2]
    if len(multi) < min_rows or not run:
        return None
    xs = sorted(s.x0 for ln in multi for s in ln.segments)
    cols: list[list[float]] = []
    for x in xs:
        if cols and x - cols[-1][-1] < 6:
            cols[-1].append(x)
        else:
            cols.append([x])
    starts = [sum(c) / len(c) for c in cols if len(c) >= max(2, len(multi) // 2)]
    if len(starts) < 2:
        return None
    pieces = [s for ln in multi for s in ln.segments]
    if len(run) > 0.6 * page_lines and sum(len(s.text) for s in pieces) / len(pieces) > 40:
        return None  # two text columns, not a table
    rows: list[list[str]] = []
    for ln in run:
        cells = [""] * len(starts)
        for s in ln.segments:
            k = max((n for n, x in enumerate(starts) if x <= s.x0 + 4), default=0)
            cells[k] = join_lines(cells[k], s.text) if cells[k] else s.text
        if len(ln.segments) == 1 and rows and not cells[0]:
            rows[-1] = [join_lines(a, b) if b else a for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    if len(rows) < min_rows:
        return None
    first = run[0]
    header = first.bold or first.size > run[-1].size + 0.5
    return PdfTable(
        page,
        min(ln.x0 for ln in run),
        min(ln.top for ln in run),
        max(ln.x1 for ln in run),
        max(ln.bottom for ln in run),
        rows,
        header,
    )
