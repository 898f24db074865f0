"""Column flow: text-like blocks flow through balanced columns; wide tables/code/formulas span the page.

Narrow columns waste far fewer pixels on short lines (paragraph ends, list items, headings, short
code) than one wide column, which is where most visual tokens go."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ingest.render.blocks import code_natural_width, code_rows
from ingest.render.draw import Box, Op, Paste, Rect, Text, shift
from ingest.render.layout import gap_between, layout_block
from ingest.render.style import RULE, Style
from ingest.render.tables import column_widths, normalise
from kb.types import Block

FLOW_KINDS = ("paragraph", "heading", "list_item", "caption")


@dataclass(frozen=True)
class Geometry:
    cols: int
    col_width: int
    gutter: int


def geometry(style: Style, cols: int) -> Geometry:
    gutter = max(3, round(style.size * style.gutter))  # narrower gutters let OCR merge lines across columns
    cols = max(1, cols)
    while cols > 1 and (style.content - gutter * (cols - 1)) // cols < style.size * 22:
        cols -= 1
    return Geometry(cols, (style.content - gutter * (cols - 1)) // cols, gutter)


def column_style(style: Style, geo: Geometry) -> Style:
    return replace(style, content=geo.col_width) if geo.cols > 1 else style


def is_narrow(block: Block, style: Style, geo: Geometry) -> bool:
    """Whether a block goes into the column flow (else it spans the full width)."""
    if geo.cols == 1 or block.kind in FLOW_KINDS:
        return True
    style = style.for_text(block.plain_text())
    col = column_style(style, geo)
    if block.kind == "table" and block.rows:
        cells = normalise(block.rows)
        n = len(cells[0]) if cells else 0
        full = column_widths(cells, block.header, style)
        return sum(full) + n * (2 * style.pad + 1) + 1 <= geo.col_width
    if block.kind in ("code", "formula"):
        if code_natural_width(block, style) <= geo.col_width:
            return True
        rows = code_rows(block.text, col)
        return sum(len(r) for r in rows) <= 1.15 * len(rows) and block.kind == "code"
    return True


class PageLayout:
    """Lays out lists of blocks as one page body (bands of balanced columns and full-width blocks)."""

    def __init__(self, style: Style, cols: int) -> None:
        self.style = style
        self.geo = geometry(style, cols)
        self.col = column_style(style, self.geo)
        self._cache: dict[tuple[Block, bool], Box] = {}

    def narrow(self, block: Block) -> bool:
        return is_narrow(block, self.style, self.geo)

    def box(self, block: Block, narrow: bool) -> Box:
        key = (block, narrow)
        b = self._cache.get(key)
        if b is None:
            b = self._cache[key] = layout_block(block, self.col if narrow else self.style)
        return b

    def layout(self, blocks: list[Block]) -> Box:
        ops: list[Op] = []
        y = 0
        band: list[tuple[int, Block]] = []
        prev: Block | None = None

        def flush() -> None:
            nonlocal y, band
            if band:
                y += gap_between(prev_of_band, band[0][1], self.style) if y else 0
                b = self._flow(band)
                ops.extend(shift(b.ops, 0, y))
                y += b.height
                band = []

        prev_of_band: Block | None = None
        wide = [not self.narrow(b) for b in blocks]
        for i, block in enumerate(blocks):
            if block.kind == "caption" and ((i and wide[i - 1]) or (i + 1 < len(blocks) and wide[i + 1])):
                wide[i] = True  # a caption stays with the wide table or code it names, not in a column
        for i, block in enumerate(blocks):
            if not wide[i]:
                if not band:
                    prev_of_band = prev
                band.append((i, block))
            else:
                flush()
                b = self.box(block, False)
                y += gap_between(prev, block, self.style) if y else 0
                ops.extend(shift(b.ops, 0, y, i))
                y += b.height
            prev = block
        flush()
        return Box(y, ops)

    def _flow(self, blocks: list[tuple[int, Block]]) -> Box:
        """Stack blocks (with their page indices) in one column, then cut it into balanced columns at
        allowed breaks."""
        ops: list[Op] = []
        cuts: list[Cut] = []
        y = 0
        prev: Block | None = None
        for index, block in blocks:
            b = self.box(block, True)
            g = gap_between(prev, block, self.style)
            if prev is not None and prev.kind != "heading":
                cuts.append(Cut(y, y + g))
            y += g
            ops.extend(shift(b.ops, 0, y, index))
            cuts.extend(inner_cuts(block, b, y))
            y += b.height
            prev = block
        if self.geo.cols == 1 or not cuts:
            return Box(y, ops)
        spans = _balance(y, cuts, self.geo.cols)
        if len(spans) > 1 and max(b - t for t, b in spans) < self.style.min_column_lines * self.style.pitch:
            return self._wide(blocks)  # columns a few lines tall read across, row by row: one wide column
        out: list[Op] = []
        for i, (top, bottom) in enumerate(spans):
            dx = i * (self.geo.col_width + self.geo.gutter)
            out.extend(shift([op for op in ops if top <= _op_y(op) < bottom], dx, -top))
        height = max(b - t for t, b in spans)
        for i in range(1, len(spans)):
            x = i * (self.geo.col_width + self.geo.gutter) - (self.geo.gutter + 1) // 2
            out.append(Rect(x, 0, x + 1, height, fill=RULE))
        return Box(height, out)


    def _wide(self, blocks: list[tuple[int, Block]]) -> Box:
        ops: list[Op] = []
        y = 0
        prev: Block | None = None
        for index, block in blocks:
            b = self.box(block, False)
            y += gap_between(prev, block, self.style)
            ops.extend(shift(b.ops, 0, y, index))
            y += b.height
            prev = block
        return Box(y, ops)


MIN_SPLIT_LINES = 2  # lines a split paragraph keeps at the foot of one column and the head of the next


@dataclass(frozen=True)
class Cut:
    """A place where a column may end (`end`) and the next begin (`start`); a cut inside a block is only
    usable when the columns are shorter than `below` (the block's height: it cannot stay whole)."""

    end: int
    start: int
    below: float = float("inf")


def inner_cuts(block: Block, box: Box, top: int) -> list[Cut]:
    """Cuts inside a block: only for a block taller than the column; text keeps MIN_SPLIT_LINES lines on
    each side of the cut (no orphan or widow line)."""
    n = len(box.breaks) + 1
    keep = MIN_SPLIT_LINES if block.kind in FLOW_KINDS else 1
    return [Cut(top + k, top + k, box.height) for j, k in enumerate(box.breaks, 1) if keep <= j <= n - keep]


def _op_y(op: Op) -> float:
    if isinstance(op, Text):
        return op.baseline - 1
    if isinstance(op, Rect):
        return op.y0
    assert isinstance(op, Paste)
    return op.y


def _balance(total: int, cuts: list[Cut], cols: int) -> list[tuple[int, int]]:
    """Spans [top, bottom) per column minimising the tallest column (binary search on the height)."""

    def fill(limit: int) -> list[tuple[int, int]] | None:
        spans: list[tuple[int, int]] = []
        top = 0
        for _ in range(cols):
            if total - top <= limit:
                spans.append((top, total))
                return spans
            best = None
            for cut in cuts:
                if cut.end - top > limit:
                    break
                if cut.end > top and limit < cut.below:
                    best = (cut.end, cut.start)
            if best is None:
                return None
            spans.append((top, best[0]))
            top = best[1]
        return None

    lo, hi = max(1, total // cols), total
    best = [(0, total)]
    while lo <= hi:
        mid = (lo + hi) // 2
        res = fill(mid)
        if res is not None:
            best, hi = res, mid - 1
        else:
            lo = mid + 1
    return best
