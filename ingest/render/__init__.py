"""Glyph renderer: sections laid out as dense, structured images (headings, lists, code, tables, formulas)."""

from ingest.render.draw import png_bytes
from ingest.render.renderer import GlyphRenderer, LineBox

__all__ = ["GlyphRenderer", "LineBox", "png_bytes"]
