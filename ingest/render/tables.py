"""Tables as ruled grids: compact content-sized columns, wrapped cells, bold tinted header row."""

from __future__ import annotations

import math
import re

from ingest.render.draw import Box, Op, Rect, Text
from ingest.render.fonts import FontChain
from ingest.render.style import GRID, HEAD_BG, Style, baseline
from ingest.render.wrap import _atoms, wrap

_WS = re.compile(r"\s+")
Rows = tuple[tuple[str, ...], ...]


def normalise(rows: Rows) -> list[list[str]]:
    n = max((len(r) for r in rows), default=0)
    return [[_WS.sub(" ", c).strip() for c in r] + [""] * (n - len(r)) for r in rows]


def _longest_atom(text: str, chain: FontChain) -> float:
    return max((chain.measure(text[a.start : a.end]) for a in _atoms(text)), default=0.0)


def column_widths(cells: list[list[str]], header: bool, style: Style) -> list[int]:
    """Auto layout: natural widths when they fit, else minimum (longest word) plus a share of the rest."""
    n = len(cells[0]) if cells else 0
    if n == 0:
        return []
    avail = style.content - (n + 1) - 2 * style.pad * n
    nat = [1.0] * n
    mins = [1.0] * n
    for i, row in enumerate(cells):
        chain = style.body(bold=header and i == 0)
        for j, cell in enumerate(row):
            nat[j] = max(nat[j], chain.measure(cell) + style.word_gap * cell.count(" ") + 0.5)
            mins[j] = max(mins[j], _longest_atom(cell, chain))
    if sum(nat) <= avail:
        return [math.ceil(w) for w in nat]
    cap = max(avail / n, style.size * 4.0)
    mins = [min(m, cap) for m in mins]
    if sum(mins) >= avail:
        k = avail / sum(mins)
        return [max(1, int(m * k)) for m in mins]
    extra = avail - sum(mins)
    want = [nw - m for nw, m in zip(nat, mins, strict=True)]
    total = sum(want) or 1.0
    widths = [math.ceil(m + extra * w / total) for m, w in zip(mins, want, strict=True)]
    while sum(widths) > avail:  # ceil overshoot: take it from the widest column
        widths[widths.index(max(widths))] -= 1
    return widths


def row_heights(cells: list[list[str]], header: bool, widths: list[int], style: Style) -> list[int]:
    out = []
    for i, row in enumerate(cells):
        chain = style.body(bold=header and i == 0)
        n = max((len(wrap(c, chain, w, word_gap=style.word_gap)) for c, w in zip(row, widths, strict=True)), default=1)
        out.append(max(1, n) * style.pitch + 1)
    return out


def layout_table(rows: Rows, header: bool, style: Style) -> Box:
    cells = normalise(rows)
    if not cells or not cells[0]:
        return Box(0, [])
    widths = column_widths(cells, header, style)
    pad, pitch = style.pad, style.pitch
    xs = [0]
    for w in widths:
        xs.append(xs[-1] + w + 2 * pad + 1)
    right = xs[-1]
    ops: list[Op] = []
    grid: list[Op] = []
    y = 1
    for i, row in enumerate(cells):
        is_head = header and i == 0
        chain = style.body(bold=is_head)
        wrapped = [wrap(c, chain, w, word_gap=style.word_gap) for c, w in zip(row, widths, strict=True)]
        h = max(1, *(len(ls) for ls in wrapped)) * pitch
        if is_head:
            ops.append(Rect(1, y, right, y + h, fill=HEAD_BG))
        for j, lines in enumerate(wrapped):
            for k, line in enumerate(lines):
                b = baseline(y + k * pitch, chain.size, pitch)
                ops.append(Text(xs[j] + 1 + pad, b, line.text, chain, word_gap=style.word_gap))
        y += h
        grid.append(Rect(0, y, right + 1, y + 1, fill=GRID))
        y += 1
    grid.append(Rect(0, 0, right + 1, 1, fill=GRID))
    grid.extend(Rect(x, 0, x + 1, y, fill=GRID) for x in xs)
    return Box(y, ops + grid)
