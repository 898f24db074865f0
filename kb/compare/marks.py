"""Both sides of a change as glyph images, the changed lines marked, side by side in one picture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw

from kb.catalog import DocumentRecord
from kb.compare.units import DocView, Span
from kb.spans import decode_lines

MARK_CHANGED = (255, 214, 0, 110)  # translucent yellow over the changed lines
MARK_CONTEXT = (0, 120, 255, 255)  # a blue bar where something was removed or added
PAD = 80  # px of context kept above and below the marked lines
MAX_SIDE_HEIGHT = 900

OpenImage = Callable[[str], Image.Image]


@dataclass
class Side:
    image: Image.Image
    marked: int  # lines marked (0: the image could not be marked; shown whole)


def _boxes(rec: DocumentRecord, spans: list[Span]) -> dict[int, list[tuple[int, int, int, int]]]:
    out: dict[int, list[tuple[int, int, int, int]]] = {}
    for sp in spans:
        srec = rec.sections[sp.record]
        for ln in decode_lines(srec.images[0].lines if srec.images else ""):
            if ln.start < sp.end and sp.start < ln.end:
                out.setdefault(sp.record, []).append((ln.x0 - 2, ln.y0 - 1, ln.x1 + 2, ln.y1 + 1))
    return out


def side_image(
    rec: DocumentRecord, view: DocView, units: list[int], context: int | None, open_image: OpenImage
) -> Side | None:
    """The image holding `units` (or, for the side where they are absent, the `context` unit), with
    their lines marked and cropped to them."""
    changed = bool(units)
    idx = units if units else ([context] if context is not None else [])
    if not idx:
        return None
    spans = [sp for i in idx for sp in view.units[i].spans]
    record = spans[0].record
    srec = rec.sections[record]
    if not srec.images:
        return None
    img = open_image(srec.images[0].key).convert("RGBA")
    boxes = _boxes(rec, [sp for sp in spans if sp.record == record]).get(record, [])
    if not boxes:
        return Side(_fit(img.convert("RGB")), 0)
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    if changed:
        for b in boxes:
            draw.rectangle(b, fill=MARK_CHANGED)
    else:  # where the other side's text would be: a bar under the neighbouring line
        x0, _, x1, y1 = boxes[-1]
        draw.rectangle((x0, y1 - 1, x1, y1 + 1), fill=MARK_CONTEXT)
    img = Image.alpha_composite(img, overlay).convert("RGB")
    top = max(0, min(b[1] for b in boxes) - PAD)
    bottom = min(img.height, max(b[3] for b in boxes) + PAD)
    return Side(_fit(img.crop((0, top, img.width, bottom))), len(boxes))


def _fit(img: Image.Image) -> Image.Image:
    if img.height <= MAX_SIDE_HEIGHT:
        return img
    return img.crop((0, 0, img.width, MAX_SIDE_HEIGHT))


def side_by_side(left: Side | None, right: Side | None) -> Image.Image:
    w = max(s.image.width for s in (left, right) if s is not None) if (left or right) else 400
    h = max((s.image.height for s in (left, right) if s is not None), default=100)
    out = Image.new("RGB", (2 * w + 12, h), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    for k, s in enumerate((left, right)):
        x = k * (w + 12)
        if s is None:
            draw.text((x + 10, 10), "(not in this document)", fill=(120, 120, 120))
        else:
            out.paste(s.image, (x, 0))
    draw.rectangle((w + 5, 0, w + 6, h), fill=(160, 160, 160))
    return out
