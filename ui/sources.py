"""How a chat answer's sources are shown: [n] in the answer as links, each opening its source over the page
(a CSS :target overlay, so no rerun and nothing lost) at a readable zoom, with the lines that support the
answer marked on the glyph image; the section text as copyable text."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw

from kb.answer.evidence import supporting_lines
from kb.spans import LineSpan, decode_lines

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

MARK = (255, 200, 0, 120)  # translucent yellow over a supporting line
BAR = (230, 120, 0, 255)  # and a bar in the margin, so a marked line is found at a glance
ZOOM = 1.6  # 9-px glyph text reads like 14-px text
CROP_PAD = 40
CROP_MAX_SHARE = 0.6  # a close-up only when it shows less than this share of the image's height

STYLE = """<style>
.kb-answer a.kb-cite{font-weight:600;text-decoration:none;border-radius:4px;padding:0 2px;background:#e8f0fe}
.kb-answer a.kb-cite:hover{background:#c6dafc}
.kb-overlay{display:none;position:fixed;inset:3vh 3vw;z-index:1000000;background:#fff;border:1px solid #999;
  border-radius:8px;box-shadow:0 8px 40px rgba(0,0,0,.35);overflow:auto;padding:0 1.2rem 1.2rem 1.2rem}
.kb-overlay:target{display:block}
.kb-overlay .kb-head{position:sticky;top:0;background:#fff;padding:.8rem 0 .5rem 0;border-bottom:1px solid #ddd;
  display:flex;justify-content:space-between;gap:1rem;align-items:baseline}
.kb-overlay .kb-close{font-weight:600;text-decoration:none;white-space:nowrap}
.kb-overlay img{max-width:none !important;height:auto !important;object-fit:fill;display:block;margin:.6rem 0;
  border:1px solid #ddd}
.kb-overlay .kb-text{font-family:monospace;font-size:.85rem;background:#f6f6f6;padding:.6rem;border-radius:6px;
  user-select:text}
.kb-overlay .kb-note{color:#555;font-size:.9rem}
</style>"""


@dataclass
class Marked:
    """A source's images with its supporting lines marked, as PNG bytes, and how many lines were marked."""

    pngs: list[bytes]
    crops: list[bytes]  # per image with marks: the marked lines and a little context around them
    marked: int


def anchor(turn: int, n: int) -> str:
    return f"kb-src-{turn}-{n}"


_CITE = re.compile(r"\[(\d+)\]")


def linked_answer(text: str, turn: int, sources: Sequence[dict[str, Any]]) -> str:
    """The answer as HTML-safe markdown with each [n] of a known source a link that opens it."""
    labels = {int(s["n"]): str(s["label"]) for s in sources}
    safe = html.escape(text, quote=False)

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n not in labels:
            return m.group(0)
        title = html.escape(labels[n], quote=True)
        return f'<a class="kb-cite" href="#{anchor(turn, n)}" title="{title}">[{n}]</a>'

    return f'<div class="kb-answer">\n\n{_CITE.sub(link, safe)}\n\n</div>'


def mark(kb: KnowledgeBase, source: dict[str, Any], answer: str) -> Marked:
    """The source's stored images with the lines supporting `answer` marked (none without an overlap, or
    for images ingested before line positions were recorded)."""
    lines_by_key = _line_spans(kb, source)
    pngs: list[bytes] = []
    crops: list[bytes] = []
    marked = 0
    for key in source.get("image_keys", []):
        try:
            data = kb.images.read(key)
        except FileNotFoundError:  # deleted or re-ingested since the answer
            continue
        spans = lines_by_key.get(key)
        hits = supporting_lines(answer, int(source["n"]), spans[0], spans[1]) if spans and answer else []
        if not hits:
            pngs.append(data)
            continue
        marked += len(hits)
        img = Image.open(io.BytesIO(data)).convert("RGBA")
        overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for ln in hits:
            draw.rectangle((ln.x0 - 2, ln.y0 - 1, ln.x1 + 2, ln.y1 + 1), fill=MARK)
            draw.rectangle((max(0, ln.x0 - 8), ln.y0 - 1, max(0, ln.x0 - 5), ln.y1 + 1), fill=BAR)
        out = Image.alpha_composite(img, overlay).convert("RGB")
        pngs.append(_png(out))
        crop = close_up(out, hits)
        if crop is not None:
            crops.append(_png(crop))
    return Marked(pngs, crops, marked)


def close_up(img: Image.Image, hits: Sequence[LineSpan]) -> Image.Image | None:
    """The band of `img` around the marked lines, or None when that band is most of the image (it would
    only repeat the whole image shown below it)."""
    top = max(0, min(ln.y0 for ln in hits) - CROP_PAD)
    bottom = min(img.height, max(ln.y1 for ln in hits) + CROP_PAD)
    if bottom - top >= CROP_MAX_SHARE * img.height:
        return None
    return img.crop((0, top, img.width, bottom))


def _line_spans(kb: KnowledgeBase, source: dict[str, Any]) -> dict[str, tuple[str, list[LineSpan]]]:
    """Per image key of the source: its section's text and the drawn lines recorded at ingest."""
    rec = kb.catalog.get(str(source.get("doc", "")))
    keys = set(source.get("image_keys", []))
    out: dict[str, tuple[str, list[LineSpan]]] = {}
    if rec is None:
        return out
    for sec in rec.sections:
        for im in sec.images:
            if im.key in keys and im.lines:
                out[im.key] = (sec.text, decode_lines(im.lines))
    return out


def overlay(turn: int, source: dict[str, Any], marked: Marked) -> str:
    """The hidden panel that [n] opens: label, the marked lines up close, the whole image, the text."""
    n = int(source["n"])
    parts = [
        f'<div class="kb-overlay" id="{anchor(turn, n)}" role="dialog" aria-label="{html.escape(source["label"])}">',
        f'<div class="kb-head"><strong>{html.escape(source["label"])}</strong>'
        f'<a class="kb-close" href="#kb-closed">✕ Close</a></div>',
    ]
    if marked.marked:
        parts.append(f'<p class="kb-note">Marked: {marked.marked} line(s) the answer quotes or shares words with.</p>')
        parts += [_img(c, "the marked lines", "kb-crop") for c in marked.crops]
    else:
        parts.append(
            '<p class="kb-note">No line of this source shares words with the answer, so nothing is marked.</p>'
        )
    parts += [_img(p, f"glyph image {i} of [{n}]", "") for i, p in enumerate(marked.pngs, 1)]
    if not marked.pngs:
        parts.append('<p class="kb-note">The glyph image is no longer in the store.</p>')
    text = "<br>".join(html.escape(line) for line in str(source.get("text", "")).splitlines())
    parts.append(f'<p><strong>Section text</strong></p><div class="kb-text">{text}</div></div>')
    return "\n".join(parts)


def _img(png: bytes, alt: str, cls: str) -> str:
    with Image.open(io.BytesIO(png)) as im:
        width = round(im.width * ZOOM)
    data = base64.b64encode(png).decode("ascii")
    klass = f' class="{cls}"' if cls else ""
    return f'<img{klass} alt="{html.escape(alt)}" style="width:{width}px" src="data:image/png;base64,{data}">'


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def stored(kb: KnowledgeBase, keys: Sequence[str]) -> list[bytes]:
    out = []
    for k in keys:
        with contextlib.suppress(FileNotFoundError):
            out.append(kb.images.read(k))
    return out
