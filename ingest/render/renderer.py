"""GlyphRenderer: a section (or part) -> one dense, structured, deterministic image."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from ingest.render.columns import PageLayout
from ingest.render.draw import WHITE, Op, Text, paint, shift
from ingest.render.layout import page_height, section_header
from ingest.render.paginate import pack
from ingest.render.style import Style
from kb.settings import RenderConfig
from kb.types import Section


@dataclass(frozen=True)
class LineBox:
    """Where one drawn line of a block lies in the image (px), and what it says: lets a report mark
    the lines of a sentence on the image the model saw."""

    block: int  # index into the rendered section's blocks
    text: str
    x0: int
    y0: int
    x1: int
    y1: int


def line_boxes(ops: list[Op]) -> list[LineBox]:
    out = []
    for op in ops:
        if isinstance(op, Text) and op.block >= 0 and op.text.strip():
            size = op.chain.size
            width = op.chain.measure(op.text) + op.word_gap * op.text.count(" ")
            y0 = round(op.baseline - size * 0.85)
            out.append(LineBox(op.block, op.text, round(op.x), y0, round(op.x + width), round(op.baseline + size * 0.3)))
    return out


class GlyphRenderer:
    """Lays sections out as glyph images; one instance per RenderConfig (fonts and widths are cached)."""

    def __init__(self, config: RenderConfig) -> None:
        self.config = config
        self.style = Style.from_config(config)
        self.page = PageLayout(self.style, config.columns)
        # render() may use any of these when it gives a shorter image (small sections pack better).
        top = config.columns + (1 if config.columns > 1 else 0)
        counts = sorted({PageLayout(self.style, c).geo.cols for c in range(1, top + 1)})
        self.layouts = [self.page] + [PageLayout(self.style, c) for c in counts if c != self.page.geo.cols]

    def _avail(self, section: Section, title: str) -> int:
        probe = replace(section, part=99, parts=99)
        header = section_header(probe, title, self.style, self.config.header)
        return self.style.limit - 2 * self.style.margin - (header.height if header else 0)

    def paginate(self, section: Section, title: str) -> list[Section]:
        """Split a section into parts that each fit one image (block boundaries first, then inside blocks)."""
        avail = max(self.style.pitch, self._avail(section, title))
        pages = pack(list(section.blocks), self.page, avail) or [[]]
        n = len(pages)
        out: list[Section] = []
        for i, blocks in enumerate(pages, start=1):
            nums = [b.page for b in blocks if b.page is not None]
            out.append(
                replace(
                    section,
                    blocks=tuple(blocks),
                    part=i,
                    parts=n,
                    headings=tuple(b.text for b in blocks if b.kind == "heading" and b.text in section.headings),
                    page_start=min(nums) if nums else section.page_start,
                    page_end=max(nums) if nums else section.page_end,
                )
            )
        return out

    def render(self, section: Section, title: str) -> Image.Image:
        """One image for one (already paginated) section: full text, height trimmed and rounded up to the patch."""
        return self.render_lines(section, title)[0]

    def render_lines(self, section: Section, title: str) -> tuple[Image.Image, list[LineBox]]:
        """`render`, plus where each block's lines were drawn."""
        st = self.style
        header = section_header(section, title, st, self.config.header)
        blocks = list(section.blocks)
        best = None
        for page in self.layouts:
            body = page.layout(blocks)
            height = page_height(header, body, st)
            if best is None or height < best[0]:
                best = (height, body)
        assert best is not None
        height, body = best
        image = Image.new("RGB", (st.width, height), WHITE)
        top = st.margin
        if header is not None:
            paint(image, shift(header.ops, st.margin, top))
            top += header.height
        body_ops = shift(body.ops, st.margin, top)
        paint(image, body_ops)
        return image, line_boxes(body_ops)
