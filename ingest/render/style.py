"""Pixel metrics derived from a RenderConfig (all sizes already multiplied by its scale)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ingest.render.draw import Color
from ingest.render.fonts import FontBook, FontChain
from ingest.render.wrap import is_cjk
from kb.settings import RenderConfig

GREY: Color = (96, 96, 96)
RULE: Color = (185, 185, 185)
GRID: Color = (218, 218, 218)  # light: dark rules next to glyphs merge into them under OCR (measured)
CODE_BG: Color = (240, 243, 248)
HEAD_BG: Color = (232, 236, 243)
CONT: Color = (150, 150, 150)
HEADING_SCALE = {1: 1.3, 2: 1.18, 3: 1.09}


@dataclass(frozen=True)
class Style:
    width: int  # image width
    content: int  # text column width (width minus margins)
    margin: int
    size: int  # body font px
    pitch: int  # body line pitch px
    gap: int  # vertical gap between blocks
    pad: int  # horizontal padding in code boxes and table cells
    patch: int
    limit: int  # max image height (multiple of patch)
    line_height: float
    word_gap: float  # extra px after each space in flowing text (OCR separates words better)
    fonts: FontBook
    block_gap: float = 0.3
    cjk_scale: float = 1.0  # size multiplier for CJK-dominant text (see for_text)
    gutter: float = 1.6  # space between columns, in em
    min_column_lines: int = 8  # shorter balanced columns are drawn as one wide column (OCR reads them across)

    @classmethod
    def from_config(cls, config: RenderConfig) -> Style:
        s = config.scale
        width = round(config.page_width * s)
        size = max(5, round(config.font_size * s))
        margin = round(config.margin * s)
        max_h = max(config.patch, config.max_pixels // width)
        limit = max(config.patch, max_h // config.patch * config.patch)
        return cls(
            width=width,
            content=width - 2 * margin,
            margin=margin,
            size=size,
            pitch=pitch_for(size, config.line_height),
            gap=max(1, round(size * config.block_gap)),
            pad=max(1, round(3 * s)),
            patch=config.patch,
            limit=limit,
            line_height=config.line_height,
            word_gap=round(size * config.word_spacing, 2),
            fonts=FontBook(
                config.font,
                config.mono_font,
                size,
                config.letter_spacing,
                config.slash_spacing,
                config.id_font,
                config.dash_spacing,
                ident_scale=config.id_scale,
                ident_tracking=config.id_tracking,
                ident_paths_only=config.id_kinds == "paths",
                ident_bold=config.id_bold,
            ),
            block_gap=config.block_gap,
            cjk_scale=config.cjk_scale,
            gutter=config.gutter,
            min_column_lines=config.min_column_lines,
        )

    def scaled(self, factor: float) -> Style:
        """The same style with every text size (and pitch, gaps, word spacing) multiplied by `factor`."""
        if factor == 1.0:
            return self
        size = max(5, round(self.size * factor))
        k = size / self.size
        return replace(
            self,
            size=size,
            pitch=pitch_for(size, self.line_height),
            gap=max(1, round(size * self.block_gap)),
            word_gap=round(self.word_gap * k, 2),
            cjk_scale=1.0,
        )

    def for_text(self, text: str) -> Style:
        """The style for a block of this text: CJK-dominant text is drawn `cjk_scale` times larger (CJK
        glyphs at Latin body sizes are too dense to read, for OCR and VLMs alike)."""
        if self.cjk_scale == 1.0 or not is_cjk_dominant(text):
            return self
        return self.scaled(self.cjk_scale)

    def body(self, bold: bool = False) -> FontChain:
        return self.fonts.chain(self.size, bold=bold)

    def mono(self) -> FontChain:
        return self.fonts.chain(self.size, mono=True)

    def heading(self, level: int) -> tuple[FontChain, int]:
        size = round(self.size * HEADING_SCALE.get(level, 1.0))
        return self.fonts.chain(size, bold=True), pitch_for(size, self.line_height)

    def small(self) -> tuple[FontChain, int]:
        size = max(5, round(self.size * 0.85))
        return self.fonts.chain(size, bold=True), pitch_for(size, self.line_height)


def is_cjk_dominant(text: str, share: float = 0.2) -> bool:
    """Whether at least `share` of the non-space characters are CJK (CJK characters carry far more
    meaning each than Latin letters, so a fifth is already mostly-CJK prose)."""
    n = cjk = 0
    for ch in text:
        if not ch.isspace():
            n += 1
            cjk += is_cjk(ch)
    return n > 0 and cjk >= share * n


def pitch_for(size: int, line_height: float) -> int:
    return max(size + 1, round(size * line_height))


def baseline(top: int, size: int, pitch: int) -> int:
    """Baseline inside a line box: ink (ascender ~0.78em, descender ~0.22em) centred in the pitch."""
    return top + (pitch - size) // 2 + round(size * 0.8)
