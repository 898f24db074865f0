"""The text layer of a PDF as lines with positions and fonts, read with pypdfium2 in one pass.

One pdfium call per character attribute is fast enough (~70 pages/s on one core) and gives what the
structure needs: line boxes (running headers, paragraphs, tables), font size and weight (headings),
fixed pitch (code) and raised small digits (footnote markers).
"""

from __future__ import annotations

import ctypes
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_MONO = re.compile(r"mono|courier|consol|code|menlo|typewriter|cmtt|lmtt|txtt|inconsolata", re.IGNORECASE)
_BOLD = re.compile(r"bold|black|heavy|semibold|cmbx|lmbx|-bx|demi", re.IGNORECASE)
_SUPERSCRIPT = str.maketrans("0123456789*†‡", "⁰¹²³⁴⁵⁶⁷⁸⁹*†‡")
_FIXED_PITCH = 1  # PDF font descriptor flag bit 1


@dataclass
class Segment:
    """A run of a line between wide gaps (table cells, "title .... page" pieces)."""

    x0: float
    x1: float
    text: str


@dataclass
class Line:
    """One text line; coordinates in points, top-down (top < bottom)."""

    page: int
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    size: float
    bold: bool
    mono: bool
    segments: list[Segment] = field(default_factory=list)
    markers: int = 0  # footnote markers detached in this line

    @property
    def height(self) -> float:
        return self.bottom - self.top


Rule = tuple[float, float, float, float]  # x0, top, x1, bottom of a thin path


@dataclass
class PageText:
    number: int  # 1-based
    width: float
    height: float
    lines: list[Line]
    chars: int
    rules: list[Rule]  # thin horizontal and vertical path objects (table rules)
    images: int

    @property
    def hrules(self) -> int:
        return sum(1 for r in self.rules if r[3] - r[1] < 2.5)

    @property
    def vrules(self) -> int:
        return sum(1 for r in self.rules if r[2] - r[0] < 2.5)


@dataclass
class _Font:
    bold: bool
    mono: bool


@dataclass
class _Char:
    ch: str
    left: float
    right: float
    bottom: float
    top: float
    size: float
    font: _Font | None
    index: int = -1  # pdfium character index


class _FontCache:
    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.fonts: dict[int, _Font] = {}
        self.buf = ctypes.create_string_buffer(256)

    def of_char(self, textpage: Any, index: int) -> _Font | None:
        obj = self.raw.FPDFText_GetTextObject(textpage, index)
        if not obj:
            return None
        font = self.raw.FPDFTextObj_GetFont(obj)
        if not font:
            return None
        key = ctypes.cast(font, ctypes.c_void_p).value or 0
        hit = self.fonts.get(key)
        if hit is None:
            n = self.raw.FPDFFont_GetBaseFontName(font, self.buf, 256)
            name = self.buf.raw[: max(0, n - 1)].decode("latin-1", "replace") if n else ""
            flags = self.raw.FPDFFont_GetFlags(font)
            # the name, not FPDFFont_GetWeight: subset fonts report arbitrary weights (625 for a Regular)
            hit = _Font(
                bold=bool(_BOLD.search(name)),
                mono=bool(_MONO.search(name)) or bool(flags & _FIXED_PITCH and flags >= 0),
            )
            self.fonts[key] = hit
        return hit


def read_pages(doc: Any, pages: list[int] | None = None) -> list[PageText]:
    """Lines of each page (0-based indices in `pages`, default all) of an open `pypdfium2.PdfDocument`."""
    import pypdfium2.raw as raw

    fonts = _FontCache(raw)
    out: list[PageText] = []
    for index in range(len(doc)) if pages is None else pages:
        page = doc[index]
        try:
            width, height = page.get_size()
            rules, images = _rules(raw, page.raw, height)
            verticals = [r for r in rules if r[2] - r[0] < 2.5]
            textpage = page.get_textpage()
            fonts.fonts.clear()  # font handles are per page: an address may be reused by another font
            try:
                runs = _join_runs(_runs(_chars(raw, textpage.raw, height)))
                _sample_fonts(raw, textpage.raw, fonts, runs)
            finally:
                textpage.close()
        finally:
            page.close()
        lines = [ln for ln in (_line(index + 1, run, verticals) for run in runs) if ln is not None]
        nchars = sum(1 for r in runs for c in r if c.ch != " ")
        out.append(PageText(index + 1, width, height, lines, nchars, rules, images))
    return out


def _rules(raw: Any, page: Any, page_height: float) -> tuple[list[Rule], int]:
    """Thin vector paths (a table's rules, not a code block's shaded box), top-down; and the image count."""
    rules: list[Rule] = []
    images = 0
    box = (ctypes.c_float(), ctypes.c_float(), ctypes.c_float(), ctypes.c_float())
    for i in range(raw.FPDFPage_CountObjects(page)):
        obj = raw.FPDFPage_GetObject(page, i)
        kind = raw.FPDFPageObj_GetType(obj)
        images += kind == raw.FPDF_PAGEOBJ_IMAGE
        if kind == raw.FPDF_PAGEOBJ_PATH and raw.FPDFPageObj_GetBounds(obj, *(ctypes.byref(v) for v in box)):
            x0, y0, x1, y1 = (v.value for v in box)
            w, h = x1 - x0, y1 - y0
            if (h < 2.5 and w > 8) or (w < 2.5 and h > 8):
                rules.append((x0, page_height - y1, x1, page_height - y0))
    return rules, images


def _chars(raw: Any, tp: Any, page_height: float) -> list[_Char]:
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    out: list[_Char] = []
    n = raw.FPDFText_CountChars(tp)
    for i in range(n):
        code = raw.FPDFText_GetUnicode(tp, i)
        if code in (10, 13):
            out.append(_Char("\n", 0, 0, 0, 0, 0, None))
            continue
        if code == 0 or code == 0xFFFE:
            continue
        ch = chr(code) if code < 0x110000 else "\ufffd"
        if ch == "\x02":  # pdfium's marker for a hyphen at a line end
            ch = "-"
        if ch.isspace():
            out.append(_Char(" ", 0, 0, 0, 0, 0, None))
            continue
        raw.FPDFText_GetCharBox(tp, i, left, right, bottom, top)
        size = raw.FPDFText_GetFontSize(tp, i)
        out.append(
            _Char(ch, left.value, right.value, page_height - bottom.value, page_height - top.value, size, None, i)
        )
    return out


def _sample_fonts(raw: Any, tp: Any, fonts: _FontCache, runs: list[list[_Char]]) -> None:
    """Font lookups cost ~4x a character box: look at the first, middle and last character of a line."""
    for run in runs:
        ink = [c for c in run if c.ch != " "]
        if ink:
            for c in (ink[0], ink[len(ink) // 2], ink[-1]):
                if c.font is None:
                    c.font = fonts.of_char(tp, c.index)


def _runs(chars: list[_Char]) -> list[list[_Char]]:
    """Split the character stream into lines at pdfium's line breaks and at jumps in height."""
    runs: list[list[_Char]] = []
    cur: list[_Char] = []
    last: _Char | None = None
    for c in chars:
        if c.ch == "\n":
            if cur:
                runs.append(cur)
            cur, last = [], None
            continue
        if c.ch != " " and last is not None:
            h = max(1.0, last.bottom - last.top, c.bottom - c.top)
            jumped = (
                abs((c.bottom + c.top) / 2 - (last.bottom + last.top) / 2) > h and abs(c.bottom - last.bottom) > h * 0.6
            )
            back = c.left < last.left - 4 * h  # moved back left: a new line pdfium did not mark
            if jumped and (back or abs(c.bottom - last.bottom) > 2 * h):
                runs.append(cur)
                cur = []
        cur.append(c)
        if c.ch != " ":
            last = c
    if cur:
        runs.append(cur)
    return runs


def _join_runs(runs: list[list[_Char]]) -> list[list[_Char]]:
    """Re-join a line pdfium broke at a raised footnote marker: vertical overlap, continuing to the right."""
    out: list[list[_Char]] = []
    for run in runs:
        ink = [c for c in run if c.ch != " "]
        prev = [c for c in out[-1] if c.ch != " "] if out else []
        if ink and prev:
            top, bottom = min(c.top for c in ink), max(c.bottom for c in ink)
            ptop, pbottom = min(c.top for c in prev), max(c.bottom for c in prev)
            overlap = min(bottom, pbottom) - max(top, ptop)
            if overlap > 0.5 * min(bottom - top, pbottom - ptop) and ink[0].left >= prev[-1].right - 1:
                out[-1] = out[-1] + [_Char(" ", 0, 0, 0, 0, 0, None)] + run
                continue
        out.append(run)
    return out


def _line(page: int, run: list[_Char], verticals: list[Rule]) -> Line | None:
    ink = [c for c in run if c.ch != " "]
    if not ink:
        return None
    sizes = Counter([round(c.size, 1) for c in ink])
    size = sizes.most_common(1)[0][0]
    body = [c for c in ink if abs(c.size - size) < 0.6] or ink
    baseline = statistics.median(c.bottom for c in body)
    # footnote markers: small digits raised above the baseline, after some text on the line
    text_parts: list[str] = []
    markers = 0
    seen_text = False
    for c in run:
        raised = c.ch != " " and c.size < size * 0.85 and c.bottom < baseline - size * 0.2
        if raised and seen_text and (c.ch.isdigit() or c.ch in "*†‡"):
            if not text_parts or not text_parts[-1].startswith("\x00"):
                markers += 1
                text_parts.append("\x00")
            text_parts[-1] += c.ch.translate(_SUPERSCRIPT)
            continue
        seen_text = seen_text or c.ch.isalnum()
        text_parts.append(c.ch)
    text = re.sub(r" {2,}", " ", "".join(p.lstrip("\x00") for p in text_parts)).strip()
    if not text:
        return None
    fonts = [c.font for c in ink if c.font is not None]
    n = max(1, len(fonts))
    bold = sum(f.bold for f in fonts) / n >= 0.99 if fonts else False  # headings are bold throughout
    # code starts in the fixed-pitch font and mostly stays in it (an italic placeholder may follow);
    # a prose line that ends in a URL or a command name does not start in it
    first = ink[0].font
    mono = first is not None and first.mono and sum(f.mono for f in fonts) / n >= 0.6
    return Line(
        page=page,
        text=text,
        x0=min(c.left for c in ink),
        top=min(c.top for c in ink),
        x1=max(c.right for c in ink),
        bottom=max(c.bottom for c in ink),
        size=size,
        bold=bold,
        mono=mono,
        segments=_segments(run, size, verticals),
        markers=markers,
    )


def _segments(run: list[_Char], size: float, verticals: list[Rule]) -> list[Segment]:
    """Pieces of the line separated by a gap wider than ~1.5 em, or by a vertical rule (a cell border)."""
    segs: list[Segment] = []
    cur: list[_Char] = []
    last: _Char | None = None
    gap = max(4.0, size * 1.5)
    if verticals:
        ink = [c for c in run if c.ch != " "]
        top, bottom = min(c.top for c in ink), max(c.bottom for c in ink)
        verticals = [r for r in verticals if r[1] < bottom and top < r[3]]  # rules crossing this line only
    for c in run:
        if c.ch == " ":
            if cur:
                cur.append(c)
            continue
        if last is not None and (c.left - last.right > gap or _ruled_between(last, c, verticals)):
            segs.append(_seg(cur))
            cur = []
        cur.append(c)
        last = c
    if last is not None:
        segs.append(_seg(cur))
    return segs


def _ruled_between(a: _Char, b: _Char, verticals: list[Rule]) -> bool:
    if not verticals or b.left - a.right < 1.0:
        return False  # a cell border sits in a gap, never inside a word
    cy = (b.top + b.bottom) / 2
    return any(a.right - 0.5 <= r[0] <= b.left + 0.5 and r[1] <= cy <= r[3] for r in verticals)


def _seg(chars: list[_Char]) -> Segment:
    ink = [c for c in chars if c.ch != " "]
    return Segment(min(c.left for c in ink), max(c.right for c in ink), "".join(c.ch for c in chars).strip())
