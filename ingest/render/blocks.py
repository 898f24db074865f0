"""Layout of text blocks: paragraphs, captions, headings, list items and code."""

from __future__ import annotations

from dataclasses import replace

from ingest.render.draw import Box, Op, Rect, Text
from ingest.render.fonts import FontChain
from ingest.render.style import CODE_BG, CONT, GREY, Style, baseline
from ingest.render.wrap import Line, wrap, wrap_code_line
from kb.types import Block

CONT_MARK = "↪"


def text_lines(chain: FontChain, pitch: int, lines: list[Line], x: float, word_gap: float = 0.0) -> Box:
    ops: list[Op] = []
    for i, line in enumerate(lines):
        ops.append(Text(x, baseline(i * pitch, chain.size, pitch), line.text, chain, word_gap=word_gap))
    return Box(len(lines) * pitch, ops, [i * pitch for i in range(1, len(lines))])


def paragraph_lines(block: Block, style: Style) -> list[Line]:
    return wrap(block.text, style.body(), style.content, word_gap=style.word_gap)


def layout_paragraph(block: Block, style: Style) -> Box:
    return text_lines(style.body(), style.pitch, paragraph_lines(block, style), 0, style.word_gap)


def heading_lines(block: Block, style: Style) -> list[Line]:
    chain, _ = style.heading(block.level)
    return wrap(block.text, chain, style.content, word_gap=style.word_gap)


def layout_heading(block: Block, style: Style) -> Box:
    chain, pitch = style.heading(block.level)
    return text_lines(chain, pitch, heading_lines(block, style), 0, style.word_gap)


def list_geometry(block: Block, style: Style) -> tuple[int, int]:
    """(marker x, text x) for a list item at its nesting level."""
    indent = round(max(0, block.level) * style.size * 1.3)
    chain = style.body()
    marker = block.marker or "•"
    text_x = indent + max(round(chain.measure(marker) + style.size * 0.35), round(style.size * 1.0))
    return indent, min(text_x, style.content // 2)


def list_lines(block: Block, style: Style) -> list[Line]:
    _, text_x = list_geometry(block, style)
    return wrap(block.text, style.body(), style.content - text_x, word_gap=style.word_gap)


def layout_list_item(block: Block, style: Style) -> Box:
    chain = style.body()
    mx, tx = list_geometry(block, style)
    lines = list_lines(block, style)
    box = text_lines(chain, style.pitch, lines, tx, style.word_gap)
    if block.marker:
        box.ops.insert(0, Text(mx, baseline(0, chain.size, style.pitch), block.marker, chain))
    box.height = max(box.height, style.pitch)
    return box


def code_rows(text: str, style: Style) -> list[list[str]]:
    """Each source line of a code block as its wrapped display rows (tabs expanded, spacing kept)."""
    chain = style.mono()
    inner = style.content - 2 * style.pad
    cont = chain.measure(CONT_MARK + " ")
    src = text.expandtabs(4).rstrip("\n").split("\n")
    return [wrap_code_line(line.rstrip(), chain, inner, inner - cont) for line in src]


def layout_code(block: Block, style: Style, background: bool = True) -> Box:
    chain = style.mono()
    pitch = style.pitch
    cont_w = chain.measure(CONT_MARK + " ")
    ops: list[Op] = []
    breaks: list[int] = []
    edge = style.pad // 2 if background else 0
    y = edge
    width = code_width(block, style) if background else style.content
    for rows in code_rows(block.text, style):
        for j, row in enumerate(rows):
            b = baseline(y, chain.size, pitch)
            top = 0 if y == edge else y
            if background:  # one tint strip per row, so the block can break between any two rows
                ops.append(Rect(0, top, width, y + pitch, fill=CODE_BG))
            if j:
                ops.append(Text(style.pad, b, CONT_MARK, chain, CONT))
            if row.strip():
                ops.append(Text(style.pad + (cont_w if j else 0), b, row, chain))
            y += pitch
            breaks.append(y)
    if background and edge:
        ops.append(Rect(0, y, width, y + edge, fill=CODE_BG))
    return Box(y + edge, ops, breaks[:-1])


def code_width(block: Block, style: Style) -> int:
    """Width of the code box: the full column (a tinted band reads as one block)."""
    return style.content


def code_natural_width(block: Block, style: Style) -> float:
    chain = style.mono()
    lines = block.text.expandtabs(4).rstrip("\n").split("\n")
    return max((chain.measure(ln.rstrip()) for ln in lines), default=0.0) + 2 * style.pad


def layout_caption(block: Block, style: Style) -> Box:
    box = layout_paragraph(block, style)
    box.ops = [replace(op, fill=GREY) if isinstance(op, Text) else op for op in box.ops]
    return box
