"""Draw operations (positioned text, rectangles, pasted images), their rendering, and PNG encoding."""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace

from PIL import Image, ImageDraw

from ingest.render.fonts import FontChain

Color = tuple[int, int, int]
BLACK: Color = (0, 0, 0)
WHITE: Color = (255, 255, 255)


@dataclass(frozen=True)
class Text:
    x: float
    baseline: float
    text: str
    chain: FontChain
    fill: Color = BLACK
    word_gap: float = 0.0
    block: int = -1  # index of the block it draws in its page (-1: header and rules), for line boxes


@dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float
    fill: Color | None = None
    outline: Color | None = None


@dataclass(frozen=True)
class Paste:
    x: float
    y: float
    image: Image.Image


Op = Text | Rect | Paste


@dataclass
class Box:
    """A laid-out block: its height and ops relative to its top-left corner."""

    height: int
    ops: list[Op]
    breaks: list[int] = field(default_factory=list)  # y positions where a column/page break may fall


def shift(ops: list[Op], dx: float, dy: float, block: int | None = None) -> list[Op]:
    """Ops moved by (dx, dy); `block` tags the text ops with the index of the block they draw."""
    out: list[Op] = []
    for op in ops:
        if isinstance(op, Text):
            tag = op.block if block is None else block
            out.append(replace(op, x=op.x + dx, baseline=op.baseline + dy, block=tag))
        elif isinstance(op, Rect):
            out.append(replace(op, x0=op.x0 + dx, x1=op.x1 + dx, y0=op.y0 + dy, y1=op.y1 + dy))
        else:
            out.append(replace(op, x=op.x + dx, y=op.y + dy))
    return out


def paint(image: Image.Image, ops: list[Op]) -> None:
    """Draw ops in order: rectangles and images where they fall, text run by run (font fallback)."""
    draw = ImageDraw.Draw(image)
    for op in ops:
        if isinstance(op, Rect):
            box = (round(op.x0), round(op.y0), round(op.x1) - 1, round(op.y1) - 1)
            if box[2] >= box[0] and box[3] >= box[1]:
                draw.rectangle(box, fill=op.fill, outline=op.outline)
        elif isinstance(op, Paste):
            img = op.image
            pos = (round(op.x), round(op.y))
            if img.mode == "RGBA":
                image.paste(img, pos, img)
            else:
                image.paste(img.convert(image.mode), pos)
        elif op.word_gap and " " in op.text:
            x = op.x
            gap = op.chain.measure(" ") + op.word_gap
            for word in op.text.split(" "):
                if word:
                    _text(draw, x, op.baseline, word, op.chain, op.fill)
                x += op.chain.measure(word) + gap
        else:
            _text(draw, op.x, op.baseline, op.text, op.chain, op.fill)


def _text(draw: ImageDraw.ImageDraw, x: float, y: float, text: str, chain: FontChain, fill: Color) -> None:
    if chain.spaced:
        for dx, piece, font in chain.placed(text):
            if not piece.isspace():
                draw.text((x + dx, y), piece, font=font, fill=fill, anchor="ls")
        return
    for run, font in chain.runs(text):
        if not run.isspace():
            draw.text((x, y), run, font=font, fill=fill, anchor="ls")
        x += font.getlength(run)


def png_bytes(image: Image.Image) -> bytes:
    """Deterministic PNG: pixel data only (no text chunks, no timestamp), fixed compression settings."""
    buf = io.BytesIO()
    img = image if image.mode in ("RGB", "L", "RGBA", "LA", "P", "1") else image.convert("RGB")
    clean = Image.frombytes(img.mode, img.size, img.tobytes()) if img.mode != "P" else img.copy()
    if img.mode == "P" and img.getpalette() is not None:
        clean.putpalette(img.getpalette() or [])
    clean.info = {}
    clean.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
