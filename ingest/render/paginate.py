"""Splitting a section into parts that each fit one image."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

from ingest.render.blocks import code_rows, list_geometry
from ingest.render.columns import PageLayout
from ingest.render.fonts import FontChain
from ingest.render.layout import layout_block
from ingest.render.style import Style
from ingest.render.tables import column_widths, normalise, row_heights
from ingest.render.wrap import Line, iter_wrap, wrap
from kb.types import Block

_SENTENCE_END = re.compile(r"[.!?;:][\"')\]”’]*(?=\s|$)|[。！？；][\"')\]”’」』]*")


def height(block: Block, style: Style) -> int:
    return layout_block(block, style).height


def _text_cut(text: str, lines: list[Line], n_fit: int) -> int:
    """Offset where a part ends: the last sentence end in the second half of the fitting lines,
    else the end of the last fitting line."""
    lo, hi = lines[n_fit // 2].start, lines[n_fit - 1].end
    best = None
    for m in _SENTENCE_END.finditer(text, lo, hi):
        best = m.end()
    return best if best else lines[n_fit].start


def _line_params(block: Block, style: Style) -> tuple[FontChain, float, int]:
    """(font, line width, pitch) that blocks.py lays this block's lines out with."""
    if block.kind == "heading":
        chain, pitch = style.heading(block.level)
        return chain, style.content, pitch
    if block.kind == "list_item":
        return style.body(), style.content - list_geometry(block, style)[1], style.pitch
    return style.body(), style.content, style.pitch


def _split_text(block: Block, style: Style, avail: int) -> list[Block]:
    """Page-sized parts of a text block, cut at sentence ends where possible. One pass, no recursion:
    each part wraps only the lines it needs (iter_wrap), so the work is linear in the text."""
    text = block.text
    out: list[Block] = []
    pos = 0
    cur = block
    while True:
        chain, width, pitch = _line_params(cur, style)
        n_fit = max(1, avail // pitch)
        lines = list(itertools.islice(iter_wrap(text, chain, width, word_gap=style.word_gap, start=pos), n_fit + 1))
        if len(lines) <= n_fit:
            tail = text[pos:].strip()
            if tail or not out:
                out.append(replace(cur, text=tail if out else text))
            return out
        cut = _text_cut(text, lines, n_fit)
        if not text[pos:cut].strip() or not text[cut:].strip():
            cut = lines[n_fit].start
        out.append(replace(cur, text=text[pos:cut].strip()))
        pos = cut
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if block.kind == "list_item":
            cur = replace(block, marker=None)


def _split_code(block: Block, style: Style, avail: int) -> list[Block]:
    rows = code_rows(block.text, style)
    src = block.text.expandtabs(4).rstrip("\n").split("\n")
    budget = max(1, (avail - style.pad) // style.pitch)
    parts: list[list[str]] = [[]]
    used = 0
    for line, wrapped in zip(src, rows, strict=True):
        n = len(wrapped)
        if used + n > budget and parts[-1]:
            parts.append([])
            used = 0
        if n > budget:  # one absurdly long line: cut it into page-sized slices of its rows
            for i in range(0, n, budget):
                parts[-1].append("".join(wrapped[i : i + budget]))
                parts.append([])
            used = 0
            continue
        parts[-1].append(line)
        used += n
    return [replace(block, text="\n".join(p)) for p in parts if p]


def _halve_row(row: list[str], widths: list[int], style: Style, bold: bool) -> list[list[str]]:
    top, bottom = [], []
    for cell, w in zip(row, widths, strict=True):
        lines = wrap(cell, style.body(bold=bold), w, word_gap=style.word_gap)
        k = lines[len(lines) // 2].start if len(lines) > 1 else len(cell)
        top.append(cell[:k].rstrip())
        bottom.append(cell[k:].lstrip())
    return [top, bottom]


def _split_table(block: Block, style: Style, avail: int) -> list[Block]:
    """Row groups that fit, each repeating the header row; cells are kept verbatim."""
    rows = [list(r) for r in block.rows or ()]
    cells = normalise(block.rows or ())
    n_head = 1 if block.header and rows else 0
    head = rows[:n_head]
    widths = column_widths(cells, block.header, style)
    hh = row_heights(cells[:n_head], True, widths, style)[0] if n_head else 0
    budget = avail - hh - 2
    groups: list[list[list[str]]] = [[]]
    used = 0
    for row, h in zip(rows[n_head:], row_heights(cells[n_head:], False, widths, style), strict=True):
        if used + h > budget and groups[-1]:
            groups.append([])
            used = 0
        groups[-1].append(row)
        used += h
    out: list[Block] = []
    for g in groups:
        if not g:
            continue
        part = replace(block, rows=tuple(tuple(r) for r in head + g))
        if height(part, style) <= avail:
            out.append(part)
        elif len(g) > 1:
            mid = len(g) // 2
            out += _split_table(replace(block, rows=tuple(tuple(r) for r in head + g[:mid])), style, avail)
            out += _split_table(replace(block, rows=tuple(tuple(r) for r in head + g[mid:])), style, avail)
        else:  # one row taller than a page: split its cells' text in halves
            halves = _halve_row(normalise((tuple(g[0]),))[0], widths, style, False)
            if not any(halves[1]) or not any(halves[0]):
                out.append(part)
            else:
                out += _split_table(replace(block, rows=tuple(tuple(r) for r in head + halves)), style, avail)
    return out


def split_block(block: Block, style: Style, avail: int) -> list[Block]:
    """Pieces of `block` that each lay out within `avail` px (best effort for pathological content)."""
    style = style.for_text(block.plain_text())
    if height(block, style) <= avail:
        return [block]
    if block.kind == "table" and block.rows:
        return _split_table(block, style, avail)
    if block.kind in ("code", "formula"):
        return _split_code(replace(block, kind="code"), style, avail)
    return _split_text(block, style, avail)


def pack(blocks: list[Block], page: PageLayout, avail: int) -> list[list[Block]]:
    """Greedy packing of fitting pieces into pages (measured with the real column layout);
    a heading never ends a page when more follows."""
    if blocks and page.layout(blocks).height <= avail:
        return [blocks]  # most sections fit one image: one layout, not one per block
    cols = page.geo.cols
    pieces: list[Block] = []
    for b in blocks:
        if page.narrow(b) and b.kind != "table" and cols > 1:
            pieces += split_block(b, page.col, cols * (avail - 2 * page.style.pitch))
        else:
            pieces += split_block(b, page.col if page.narrow(b) else page.style, avail)
    pages: list[list[Block]] = [[]]
    for p in pieces:
        cur = pages[-1]
        if not cur or page.layout([*cur, p]).height <= avail:
            cur.append(p)
            continue
        carry: list[Block] = []
        while cur and cur[-1].kind == "heading":
            carry.insert(0, cur.pop())
        if not cur or (carry and page.layout([*carry, p]).height > avail):
            cur.extend(carry)
            carry = []
        pages.append([*carry, p])
    return [pg for pg in pages if pg]
