"""Line breaking: greedy fill at spaces, between CJK characters, and inside over-long words/URLs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.render.fonts import FontChain

_WORD = re.compile(r"\S+")
# No line may start with these (closing punctuation, small kana, prolonged sound mark) ...
_NO_START = set(
    "、。，．・：；？！）〕］｝〉》」』】〙〗〟’”ヽヾーぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ々〻‐゠–〜～)]},.:;!?%"
)
# ... and none may end with these (opening brackets).
_NO_END = set("（〔［｛〈《「『【〘〖〝‘“([{")
_URL_BREAK_AFTER = set("/-_.?&=#:,;|+)]}>")


def is_cjk(ch: str) -> bool:
    """Characters between which a line may break (no spaces in CJK text)."""
    cp = ord(ch)
    return (
        0x2E80 <= cp <= 0x303F  # radicals, CJK symbols & punctuation
        or 0x3040 <= cp <= 0x30FF  # kana
        or 0x3100 <= cp <= 0x31FF
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xAC00 <= cp <= 0xD7AF  # hangul
        or 0xF900 <= cp <= 0xFAFF
        or 0xFF00 <= cp <= 0xFFEF  # fullwidth forms
        or 0x20000 <= cp <= 0x3FFFF
    )


@dataclass(frozen=True)
class Line:
    """One laid-out line: display text plus the source span [start, end) it covers."""

    text: str
    start: int
    end: int
    width: float


@dataclass(frozen=True)
class _Atom:
    start: int
    end: int
    space_before: bool


def _atoms(text: str) -> list[_Atom]:
    out: list[_Atom] = []
    for m in _WORD.finditer(text):
        s, e = m.start(), m.end()
        word = text[s:e]
        if not any(is_cjk(c) for c in word):
            out.append(_Atom(s, e, True))
            continue
        cut = s
        first = True
        for i in range(s + 1, e):
            a, b = text[i - 1], text[i]
            if (is_cjk(a) or is_cjk(b)) and b not in _NO_START and a not in _NO_END:
                out.append(_Atom(cut, i, first))
                cut, first = i, False
        out.append(_Atom(cut, e, first))
    return out


def split_long(text: str, chain: FontChain, width: float) -> int:
    """Chars of `text` to put on a line `width` px wide: the longest fitting prefix, ending at a URL
    punctuation mark when one is near the end; at least one character."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if chain.measure(text[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    k = lo
    if k < len(text):
        for j in range(k, max(1, int(k * 0.6)) - 1, -1):
            if text[j - 1] in _URL_BREAK_AFTER:
                return j
    return k


def wrap(
    text: str, chain: FontChain, width: float, rest_width: float | None = None, word_gap: float = 0.0
) -> list[Line]:
    """Greedy line breaking of flowing text (whitespace collapses); `rest_width` for lines after the first,
    `word_gap` extra px per space."""
    rest = width if rest_width is None else rest_width
    space = chain.measure(" ") + word_gap
    lines: list[Line] = []
    parts: list[str] = []
    start = end = 0
    x = 0.0

    def avail() -> float:
        return width if not lines else rest

    def flush() -> None:
        nonlocal parts, x
        if parts:
            lines.append(Line("".join(parts), start, end, x))
        parts, x = [], 0.0

    for atom in _atoms(text):
        piece = text[atom.start : atom.end]
        w = chain.measure(piece)
        sep = space if (atom.space_before and parts) else 0.0
        if x + sep + w <= avail():
            if not parts:
                start, sep = atom.start, 0.0
            parts.append(" " + piece if sep else piece)
            x += sep + w
            end = atom.end
            continue
        if w <= rest:
            flush()
            start, end, x = atom.start, atom.end, w
            parts.append(piece)
            continue
        # Over-long word or URL: break inside it, filling the current line first.
        pos = atom.start
        while pos < atom.end:
            chunk = text[pos : atom.end]
            sep = space if (pos == atom.start and atom.space_before and parts) else 0.0
            room = avail() - x - sep
            cw = chain.measure(chunk)
            if parts and cw > room and room < 0.3 * avail():
                flush()
                continue
            k = len(chunk) if cw <= room else split_long(chunk, chain, room)
            if not parts:
                start = pos
            parts.append((" " if sep else "") + chunk[:k])
            x += sep + chain.measure(chunk[:k])
            end = pos + k
            pos += k
            if pos < atom.end:
                flush()
    flush()
    return lines


def wrap_code_line(line: str, chain: FontChain, width: float, cont_width: float) -> list[str]:
    """Wrap one verbatim code line (spacing kept): break at a space or punctuation when near the end."""
    out: list[str] = []
    rest = line
    avail = width
    while chain.measure(rest) > avail and len(rest) > 1:
        k = split_long(rest, chain, avail)
        sp = rest.rfind(" ", 0, k + 1)
        if k < len(rest) and sp > k * 0.6:
            k = sp + 1
        out.append(rest[:k])
        rest = rest[k:]
        avail = cont_width
    out.append(rest)
    return out
