"""Line breaking: greedy fill at spaces, between CJK characters, and inside over-long words/URLs."""

from __future__ import annotations

import re
from collections.abc import Iterator
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


def _iter_atoms(text: str, start: int = 0) -> Iterator[_Atom]:
    for m in _WORD.finditer(text, start):
        s, e = m.start(), m.end()
        if not any(is_cjk(c) for c in text[s:e]):
            yield _Atom(s, e, True)
            continue
        cut = s
        first = True
        for i in range(s + 1, e):
            a, b = text[i - 1], text[i]
            if (is_cjk(a) or is_cjk(b)) and b not in _NO_START and a not in _NO_END:
                yield _Atom(cut, i, first)
                cut, first = i, False
        yield _Atom(cut, e, first)


def _atoms(text: str) -> list[_Atom]:
    return list(_iter_atoms(text))


def fit_prefix(text: str, start: int, end: int, chain: FontChain, width: float) -> int:
    """How many characters of text[start:end] fit in `width` px: at least one, ending at a URL
    punctuation mark when one is near the end. Work is proportional to the characters that fit, never
    to the whole rest (a 100 KB word costs the same per line as a 100 byte one)."""
    # estimate with cached per-character advances, then correct with real measures of this line only
    k, acc = 0, 0.0
    while start + k < end:
        acc += chain.measure(text[start + k])
        if acc > width:
            break
        k += 1
    k = max(1, k)
    if chain.measure(text[start : start + k]) > width:  # shaping made it wider: binary search below k
        lo, hi = 1, k
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if chain.measure(text[start : start + mid]) <= width:
                lo = mid
            else:
                hi = mid - 1
        k = lo
    else:  # kerning may let a few more characters in
        for _ in range(8):
            if start + k >= end or chain.measure(text[start : start + k + 1]) > width:
                break
            k += 1
    if start + k < end:
        for j in range(k, max(1, int(k * 0.6)) - 1, -1):
            if text[start + j - 1] in _URL_BREAK_AFTER:
                return j
    return k


def split_long(text: str, chain: FontChain, width: float) -> int:
    """Chars of `text` to put on a line `width` px wide (see fit_prefix)."""
    return fit_prefix(text, 0, len(text), chain, width)


def iter_wrap(
    text: str,
    chain: FontChain,
    width: float,
    rest_width: float | None = None,
    word_gap: float = 0.0,
    start: int = 0,
) -> Iterator[Line]:
    """Greedy line breaking of flowing text from offset `start` (whitespace collapses), one line at a
    time: a caller that needs the first n lines pays for those only. `rest_width` for lines after the
    first, `word_gap` extra px per space. Linear in the text consumed."""
    rest = width if rest_width is None else rest_width
    space = chain.measure(" ") + word_gap
    n_lines = 0
    parts: list[str] = []
    first = end = 0
    x = 0.0

    def avail() -> float:
        return width if not n_lines else rest

    def take() -> Line | None:
        nonlocal parts, x, n_lines
        line = Line("".join(parts), first, end, x) if parts else None
        parts, x = [], 0.0
        if line is not None:
            n_lines += 1
        return line

    for atom in _iter_atoms(text, start):
        sep = space if (atom.space_before and parts) else 0.0
        w = chain.measure(text[atom.start : atom.end])  # once per atom; never again for its rest
        if x + sep + w <= avail():
            if not parts:
                first, sep = atom.start, 0.0
            parts.append(text[atom.start : atom.end] if not sep else " " + text[atom.start : atom.end])
            x += sep + w
            end = atom.end
            continue
        if w <= rest:
            if (line := take()) is not None:
                yield line
            first, end, x = atom.start, atom.end, w
            parts.append(text[atom.start : atom.end])
            continue
        # Over-long word or URL: break inside it, filling the current line first.
        pos = atom.start
        while pos < atom.end:
            sep = space if (pos == atom.start and atom.space_before and parts) else 0.0
            room = avail() - x - sep
            k = fit_prefix(text, pos, atom.end, chain, room) if room > 0 else (0 if parts else 1)
            fits = k > 0 and chain.measure(text[pos : pos + k]) <= room
            if parts and (not fits or (pos + k < atom.end and room < 0.3 * avail())):
                if (line := take()) is not None:
                    yield line
                continue
            if not parts:
                first = pos
            piece = text[pos : pos + k]
            parts.append((" " if sep else "") + piece)
            x += sep + chain.measure(piece)
            end = pos + k
            pos += k
            if pos < atom.end and (line := take()) is not None:
                yield line
    if (line := take()) is not None:
        yield line


def wrap(
    text: str, chain: FontChain, width: float, rest_width: float | None = None, word_gap: float = 0.0
) -> list[Line]:
    """Every line of `text` (see iter_wrap)."""
    return list(iter_wrap(text, chain, width, rest_width, word_gap))


def wrap_code_line(line: str, chain: FontChain, width: float, cont_width: float) -> list[str]:
    """Wrap one verbatim code line (spacing kept): break at a space or punctuation when near the end.
    Linear: each row measures only its own characters."""
    out: list[str] = []
    pos, n = 0, len(line)
    avail = width
    while n - pos > 1:
        k = fit_prefix(line, pos, n, chain, avail)
        if pos + k >= n:
            break
        sp = line.rfind(" ", pos, pos + k + 1) - pos
        if sp > k * 0.6:
            k = sp + 1
        out.append(line[pos : pos + k])
        pos += k
        avail = cont_width
    out.append(line[pos:])
    return out
