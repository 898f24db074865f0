"""Stacking blocks into a page: header line, block boxes, gaps; heights for pagination."""

from __future__ import annotations

from ingest.render.blocks import layout_caption, layout_code, layout_heading, layout_list_item, layout_paragraph
from ingest.render.draw import Box, Op, Rect, Text, shift
from ingest.render.formula import layout_formula
from ingest.render.style import GREY, RULE, Style, baseline
from ingest.render.tables import layout_table
from ingest.render.wrap import wrap
from kb.types import Block, Section

SEP = " › "


def layout_block(block: Block, style: Style) -> Box:
    style = style.for_text(block.plain_text())
    kind = block.kind
    if kind == "table":
        if block.rows:
            return layout_table(block.rows, block.header, style)
        return layout_paragraph(block, style)
    if kind == "heading":
        return layout_heading(block, style)
    if kind == "list_item":
        return layout_list_item(block, style)
    if kind == "code":
        return layout_code(block, style)
    if kind == "formula":
        return layout_formula(block, style)
    if kind == "caption":
        return layout_caption(block, style)
    return layout_paragraph(block, style)


def header_text(title: str, heading_path: tuple[str, ...], part: int, parts: int) -> str:
    path = list(heading_path)
    if path and path[0].strip() == title.strip():
        path = path[1:]
    text = SEP.join([t for t in (title.strip(), *(p.strip() for p in path)) if t])
    if parts > 1:
        text += f"  ({part}/{parts})"
    return text


def layout_header(text: str, style: Style) -> Box:
    """Small bold grey provenance line(s) and a thin rule under them."""
    style = style.for_text(text)
    chain, pitch = style.small()
    lines = wrap(text, chain, style.content)
    ops: list[Op] = [
        Text(0, baseline(i * pitch, chain.size, pitch), ln.text, chain, GREY) for i, ln in enumerate(lines)
    ]
    rule_y = len(lines) * pitch + 1
    ops.append(Rect(0, rule_y, style.content, rule_y + 1, fill=RULE))
    return Box(rule_y + 1 + style.gap, ops)


def gap_between(prev: Block | None, block: Block, style: Style) -> int:
    """Vertical space before `block`: none at the top, less between sibling list items / table-free text."""
    if prev is None:
        return 0
    if prev.kind == "list_item" and block.kind == "list_item":
        return 0
    if block.kind == "heading":
        return style.gap + max(1, style.gap // 2)
    return style.gap


def stack(boxes: list[tuple[Block, Box]], style: Style) -> Box:
    ops: list[Op] = []
    y = 0
    prev: Block | None = None
    for block, box in boxes:
        y += gap_between(prev, block, style)
        ops.extend(shift(box.ops, 0, y))
        y += box.height
        prev = block
    return Box(y, ops)


def page_height(header: Box | None, body: Box, style: Style) -> int:
    """Image height: margins + header + body, rounded up to the patch size."""
    raw = 2 * style.margin + (header.height if header else 0) + body.height
    return max(style.patch, -(-raw // style.patch) * style.patch)


def section_header(section: Section, title: str, style: Style, header: bool) -> Box | None:
    if not header:
        return None
    return layout_header(header_text(title, section.heading_path, section.part, section.parts), style)
