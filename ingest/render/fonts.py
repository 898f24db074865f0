"""Font resolution and per-character fallback over a chain of Noto/DejaVu fonts."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import ImageFont, features

from kb.errors import ConfigError

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
_CJK_REGULAR = "NotoSansCJK-Regular.ttc"
_CJK_BOLD = "NotoSansCJK-Bold.ttc"
# raqm shapes complex scripts and (measured) measures Latin ~20x faster than the basic engine.
_LAYOUT = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
# Fonts tried (in order) after the requested one; script fonts are scanned lazily after these.
_FALLBACK_REGULAR = ("NotoSans-Regular.ttf", _CJK_REGULAR, "NotoSansSymbols-Regular.ttf",
                     "NotoSansSymbols2-Regular.ttf", "NotoSansMath-Regular.ttf", "DejaVuSans.ttf")
_FALLBACK_BOLD = ("NotoSans-Bold.ttf", _CJK_BOLD, "NotoSansSymbols-Bold.ttf",
                  "NotoSansSymbols2-Regular.ttf", "NotoSansMath-Regular.ttf", "DejaVuSans-Bold.ttf")


@functools.cache
def font_index() -> dict[str, Path]:
    """File name -> path for every installed .ttf/.otf/.ttc (first found wins, sorted walk)."""
    found: dict[str, Path] = {}
    for root in FONT_DIRS:
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.lower().endswith((".ttf", ".otf", ".ttc")):
                    found.setdefault(name, Path(dirpath) / name)
    return found


def resolve_font(name: str, bold: bool = False) -> Path:
    """A family name ("NotoSans", "DejaVuSansMono") or a font file path -> the file for that weight."""
    if name.lower().endswith((".ttf", ".otf", ".ttc")):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"font file not found: {name}", "set render.font to an existing .ttf/.otf file")
        if bold:
            for a, b in (("Regular", "Bold"), ("-Book", "-Bold"), (".ttf", "-Bold.ttf")):
                cand = path.with_name(path.name.replace(a, b))
                if cand != path and cand.is_file():
                    return cand
        return path
    index = font_index()
    stem = name.replace(" ", "")
    weights = ("-Bold", "Bold", "-Regular") if bold else ("-Regular", "", "-Book")
    for w in weights:
        for ext in (".ttf", ".otf", ".ttc"):
            if f"{stem}{w}{ext}" in index:
                return index[f"{stem}{w}{ext}"]
    if bold:
        return resolve_font(name, bold=False)
    hint = "use an installed family such as NotoSans or DejaVuSans, or a font file path"
    raise ConfigError(f"font not installed: {name}", hint)


@dataclass(frozen=True)
class FontRef:
    path: Path
    index: int = 0


@functools.cache
def _cmap(ref: FontRef) -> frozenset[int]:
    with TTFont(str(ref.path), fontNumber=ref.index, lazy=True) as tt:
        cmap = tt.getBestCmap() or {}
        return frozenset(cmap)


@functools.cache
def _pil_font(ref: FontRef, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(ref.path), size=size, index=ref.index, layout_engine=_LAYOUT)


def _ref(file_name: str) -> FontRef | None:
    path = font_index().get(file_name)
    return None if path is None else FontRef(path, 0)


@functools.cache
def _script_fonts(bold: bool) -> tuple[FontRef, ...]:
    """Every other installed Noto Sans font, for scripts the core chain lacks (scanned lazily)."""
    suffix = "-Bold.ttf" if bold else "-Regular.ttf"
    names = sorted(n for n in font_index() if n.startswith("NotoSans") and n.endswith(suffix))
    refs = [FontRef(font_index()[n]) for n in names]
    if bold:
        refs += _script_fonts(False)
    return tuple(refs)


class FontChain:
    """One style at one pixel size: maps each character to the first font whose cmap has it."""

    def __init__(self, primary: Path, size: int, bold: bool = False) -> None:
        self.size = size
        refs: list[FontRef] = [FontRef(primary)]
        for name in _FALLBACK_BOLD if bold else _FALLBACK_REGULAR:
            ref = _ref(name)
            if ref is not None and ref not in refs:
                refs.append(ref)
        self._refs = refs
        self._bold = bold
        self._fonts: dict[FontRef, ImageFont.FreeTypeFont] = {}
        self._by_char: dict[str, FontRef] = {}
        self._width: dict[str, float] = {}
        self.primary = self.font(refs[0])
        ascent, descent = self.primary.getmetrics()
        self.ascent = ascent
        self.descent = descent

    def font(self, ref: FontRef) -> ImageFont.FreeTypeFont:
        f = self._fonts.get(ref)
        if f is None:
            f = self._fonts[ref] = _pil_font(ref, self.size)
        return f

    def _ref_for(self, ch: str) -> FontRef:
        ref = self._by_char.get(ch)
        if ref is not None:
            return ref
        cp = ord(ch)
        ref = self._refs[0]
        if not ch.isspace() and cp >= 0x20:
            for cand in (*self._refs, *_script_fonts(self._bold)):
                if cp in _cmap(cand):
                    ref = cand
                    break
        self._by_char[ch] = ref
        return ref

    def runs(self, text: str) -> list[tuple[str, ImageFont.FreeTypeFont]]:
        """Split text into maximal runs drawn with one font each."""
        out: list[tuple[str, ImageFont.FreeTypeFont]] = []
        start = 0
        cur: FontRef | None = None
        for i, ch in enumerate(text):
            ref = self._ref_for(ch) if not ch.isspace() or cur is None else cur
            if ref != cur:
                if cur is not None and i > start:
                    out.append((text[start:i], self.font(cur)))
                cur, start = ref, i
        if cur is not None and start < len(text):
            out.append((text[start:], self.font(cur)))
        return out

    def measure(self, text: str) -> float:
        """Advance width of text in px (cached; runs summed)."""
        w = self._width.get(text)
        if w is None:
            w = sum(f.getlength(t) for t, f in self.runs(text))
            if len(self._width) < 200_000:
                self._width[text] = w
        return w

    def has_glyphs(self, text: str) -> bool:
        """True when some font in the chain covers every non-space character."""
        return all(ch.isspace() or ord(ch) in _cmap(self._ref_for(ch)) for ch in text)


class FontBook:
    """The chains a renderer needs, built once per (config, scale)."""

    def __init__(self, body: str, mono: str, size: int) -> None:
        self.size = size
        reg, bold = resolve_font(body), resolve_font(body, bold=True)
        mreg, mbold = resolve_font(mono), resolve_font(mono, bold=True)
        self._paths = {False: reg, True: bold}
        self._mono = {False: mreg, True: mbold}
        self._chains: dict[tuple[str, int, bool], FontChain] = {}

    def chain(self, size: int, bold: bool = False, mono: bool = False) -> FontChain:
        key = ("mono" if mono else "body", size, bold)
        ch = self._chains.get(key)
        if ch is None:
            path = (self._mono if mono else self._paths)[bold]
            ch = self._chains[key] = FontChain(path, size, bold=bold)
        return ch
