"""Tables in a PDF's text layer, rule-based (no model): ruled tables with pdfplumber's line finder, only on
pages that draw enough vector rules; unruled tables from lines whose wide-gap pieces line up in columns."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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


def find_tables(pages: list[PageText], skip: set[int]) -> dict[int, list[PdfTable]]:
    """Tables per page number. `skip`: pages not to look at (contents/index pages)."""
    out: dict[int, list[PdfTable]] = {}
    for p in pages:
        if p.number in skip or not p.lines:
            continue
        found = out.setdefault(p.number, [])
        if p.hrules >= _MIN_RULES:
            for t in _ruled(p):
                if not any(o.top < t.bottom and t.top < o.bottom and o.x0 < t.x1 and t.x0 < o.x1 for o in found):
                    found.append(t)  # nested or overlapping finds: the first (outer) one stands
        found.extend(_unruled(p, found))
    return {k: v for k, v in out.items() if v}


def _ruled(p: PageText) -> list[PdfTable]:
    """Ruled tables from the page's thin paths (read by pdfium, so pdfplumber need not parse the page):
    a grid of horizontal and vertical rules goes through pdfplumber's cell finder; rules that are only
    horizontal (booktabs style) bound a region whose columns come from aligned text pieces."""
    from pdfplumber.table import cells_to_tables, edges_to_intersections, intersections_to_cells, merge_edges

    edges: list[dict[str, Any]] = []
    for x0, top, x1, bottom in p.rules:
        if bottom - top < 2.5:
            y = (top + bottom) / 2
            edges.append({"x0": x0, "x1": x1, "top": y, "bottom": y, "width": x1 - x0, "height": 0, "orientation": "h"})
        else:
            x = (x0 + x1) / 2
            edges.append({"x0": x, "x1": x, "top": top, "bottom": bottom, "width": 0, "height": bottom - top, "orientation": "v"})
    found: list[PdfTable] = []
    if p.vrules >= 2:
        merged = merge_edges(edges, 3, 3, 3, 3)
        cells = intersections_to_cells(edges_to_intersections(merged, 3, 3))
        for group in cells_to_tables(cells):
            t = _grid_table(p, [tuple(float(v) for v in c) for c in group])
            if t is not None:
                found.append(t)
    for x0, top, x1, bottom in _hrule_regions(p, found):
        box = PdfTable(p.number, x0, top, x1, bottom, [], header=True)
        for run in _aligned_runs([ln for ln in p.lines if box.holds(ln)]):
            aligned = _as_table(p.number, run, len(p.lines), min_rows=2)
            if aligned is not None:
                aligned.header = True
                found.append(aligned)
    return found


def _grid_table(p: PageText, cells: list[tuple[float, ...]]) -> PdfTable | None:
    """Cell boxes -> rows of text: each line piece goes to the cell holding its centre."""
    if len(cells) < 4:
        return None
    tops = _cluster(sorted({c[1] for c in cells}))
    lefts = _cluster(sorted({c[0] for c in cells}))
    grid = [["" for _ in lefts] for _ in tops]
    x0, top = min(c[0] for c in cells), min(c[1] for c in cells)
    x1, bottom = max(c[2] for c in cells), max(c[3] for c in cells)
    for ln in p.lines:
        cy = (ln.top + ln.bottom) / 2
        if not (top <= cy <= bottom):
            continue
        for seg in ln.segments:
            cx = (seg.x0 + seg.x1) / 2
            cell = next((c for c in cells if c[0] <= cx <= c[2] and c[1] <= cy <= c[3]), None)
            if cell is None:
                continue
            r, k = _nearest(tops, cell[1]), _nearest(lefts, cell[0])
            grid[r][k] = join_lines(grid[r][k], seg.text) if grid[r][k] else seg.text
    rows = _clean_rows([list(r) for r in grid])
    if rows is None or not _dense(rows):
        return None
    return PdfTable(p.number, x0, top, x1, bottom, rows, header=len(rows) > 1)


def _cluster(values: list[float], tol: float = 2.0) -> list[float]:
    out: list[float] = []
    for v in values:
        if not out or v - out[-1] > tol:
            out.append(v)
    return out


def _nearest(values: list[float], v: float) -> int:
    return min(range(len(values)), key=lambda i: abs(values[i] - v))


def _hrule_regions(p: PageText, taken: list[PdfTable]) -> list[tuple[float, float, float, float]]:
    """Stacks of >= 2 horizontal rules of about the same extent, outside grids already found."""
    hs = sorted((r for r in p.rules if r[3] - r[1] < 2.5), key=lambda r: r[1])
    regions: list[list[tuple[float, float, float, float]]] = []
    for r in hs:
        cy = (r[1] + r[3]) / 2
        if any(t.top - 2 <= cy <= t.bottom + 2 and t.x0 - 2 <= r[0] <= t.x1 + 2 for t in taken):
            continue
        last = regions[-1][-1] if regions else None
        if last is not None and abs(last[0] - r[0]) < 6 and abs(last[2] - r[2]) < 6 and r[1] - last[3] < 120:
            regions[-1].append(r)
        else:
            regions.append([r])
    return [
        (min(r[0] for r in g), min(r[1] for r in g), max(r[2] for r in g), max(r[3] for r in g))
        for g in regions
        if len(g) >= 2
    ]


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
