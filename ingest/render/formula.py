"""Formulas: matplotlib mathtext when the LaTeX parses, otherwise verbatim monospace."""

from __future__ import annotations

import functools
import logging

import numpy as np
from PIL import Image

from ingest.render.blocks import layout_code
from ingest.render.draw import Box, Paste
from ingest.render.style import Style
from kb.types import Block

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=512)
def mathtext_image(tex: str, size: int) -> Image.Image | None:
    """Rasterise `tex` (without $) at `size` px, or None when mathtext cannot parse it."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    try:
        parsed = MathTextParser("agg").parse(f"${tex}$", dpi=72, prop=FontProperties(size=size))
    except (ValueError, RuntimeError) as exc:
        log.debug("mathtext could not parse %r: %s", tex, exc)
        return None
    cover = np.asarray(parsed.image, dtype=np.uint8)
    if cover.size == 0 or int(cover.max()) == 0:
        return None
    ys, xs = np.nonzero(cover)
    cover = cover[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return Image.fromarray(np.ascontiguousarray(255 - cover)).convert("RGB")


def _tex(text: str) -> str:
    t = text.strip()
    for a, b in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
        if len(t) > len(a) + len(b) and t.startswith(a) and t.endswith(b):
            return t[len(a) : len(t) - len(b)].strip()
    return " ".join(t.split())


def layout_formula(block: Block, style: Style) -> Box:
    tex = _tex(block.text)
    img = mathtext_image(tex, round(style.size * 1.3)) if tex else None
    if img is not None and img.width > style.content - style.size:
        ratio = (style.content - style.size) / img.width
        img = img.resize((max(1, int(img.width * ratio)), max(1, int(img.height * ratio))), Image.Resampling.LANCZOS)
        if ratio < 0.7:
            img = None
    if img is None:
        return layout_code(block, style, background=False)
    pad = max(1, style.pad // 2)
    return Box(img.height + 2 * pad, [Paste(style.size, pad, img)])
