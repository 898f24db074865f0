"""Font resolution and per-character fallback over a chain of Noto/DejaVu fonts."""

from __future__ import annotations

import functools
import os
import re
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


SLASHES = frozenset("/\\")


class FontChain:
    """One style at one pixel size: maps each character to the first font whose cmap has it.

    `tracking`: extra px after every character; `slash_pad`: extra px on each side of a slash. At 9 px a
    slash touches its neighbours and OCR reads "/usr" as "fusr" or "jusr"; a pixel of air keeps it a slash."""

    def __init__(
        self,
        primary: Path,
        size: int,
        bold: bool = False,
        tracking: float = 0.0,
        slash_pad: float = 0.0,
        dash_pad: float = 0.0,
    ) -> None:
        self.size = size
        self.tracking = tracking
        self.slash_pad = slash_pad
        self.dash_pad = dash_pad
        self.ident: FontChain | None = None  # face for identifiers inline in text (paths, --options)
        self.ident_paths_only = False  # the identifier face for paths only (--options stay in the body face)
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
        if w is None and self.ident is not None:
            w = sum(
                self.ident.measure(t) if ident else self._plain_measure(t)
                for t, ident in identifier_split(text, self.ident_paths_only)
            )
        if w is None:
            w = self._plain_measure(text)
            if len(self._width) < 200_000:
                self._width[text] = w
        return w

    def _plain_measure(self, text: str) -> float:
        w = self._width.get(text)
        if w is None:
            w = sum(f.getlength(t) for t, f in self.runs(text))
            if self.tracking:
                w += self.tracking * len(text)
            if self.slash_pad:
                w += self.slash_pad * 2 * sum(c in SLASHES for c in text)
            if self.dash_pad:
                w += self.dash_pad * sum(text[i : i + 2] == "--" for i in range(len(text) - 1))
            if len(self._width) < 200_000:
                self._width[text] = w
        return w

    @property
    def spaced(self) -> bool:
        return bool(self.tracking or self.slash_pad or self.dash_pad or self.ident)

    def placed(self, text: str) -> list[tuple[float, str, ImageFont.FreeTypeFont]]:
        """(x offset, piece, font) to draw `text`: tracking, slash padding and identifier face applied."""
        if self.ident is None:
            return self._placed_plain(text)
        out: list[tuple[float, str, ImageFont.FreeTypeFont]] = []
        x = 0.0
        for seg, ident in identifier_split(text, self.ident_paths_only):
            chain = self.ident if ident else None
            pieces = chain.placed(seg) if chain is not None else self._placed_plain(seg)
            out.extend((x + dx, p, f) for dx, p, f in pieces)
            x += chain.measure(seg) if chain is not None else self._plain_measure(seg)
        return out

    def _placed_plain(self, text: str) -> list[tuple[float, str, ImageFont.FreeTypeFont]]:
        out: list[tuple[float, str, ImageFont.FreeTypeFont]] = []
        x = 0.0
        for run, font in self.runs(text):
            pieces = list(run) if self.tracking else _split_slashes(run)
            for i, piece in enumerate(pieces):
                pad = self.slash_pad if piece in SLASHES else 0.0
                x += pad
                out.append((x, piece, font))
                x += font.getlength(piece) + pad + self.tracking * len(piece)
                if piece == "-" and i + 1 < len(pieces) and pieces[i + 1] == "-":
                    x += self.dash_pad  # "--" merges into one dash at small sizes
        return out

    def has_glyphs(self, text: str) -> bool:
        """True when some font in the chain covers every non-space character."""
        return all(ch.isspace() or ord(ch) in _cmap(self._ref_for(ch)) for ch in text)


_IDENT = re.compile(r"^(?:--?[A-Za-z][\w.=-]*|[\w.$~:@+-]*/\S*)$")
_IDENT_OPEN = "([{\"'«“‘<`"
_IDENT_CLOSE = ")]}\"'»”’>`.,;:!?"


def is_identifier(token: str, paths_only: bool = False) -> bool:
    """Paths (a slash and two letters or digits) and --options/-o flags: the tokens drawn in the identifier face."""
    if not _IDENT.match(token):
        return False
    if token.startswith("-"):
        return not paths_only
    return sum(c.isalnum() for c in token) >= 2


@functools.lru_cache(maxsize=65536)
def identifier_split(text: str, paths_only: bool = False) -> tuple[tuple[str, bool], ...]:
    """`text` as (segment, is identifier) pieces; quotes and sentence punctuation around a token stay plain."""
    out: list[tuple[str, bool]] = []
    plain: list[str] = []
    for tok in re.split(r"(\s+)", text):
        core = tok.lstrip(_IDENT_OPEN)
        lead = tok[: len(tok) - len(core)]
        stripped = core.rstrip(_IDENT_CLOSE)
        trail = core[len(stripped) :]
        if stripped and is_identifier(stripped, paths_only):
            if plain or lead:
                out.append(("".join(plain) + lead, False))
                plain = []
            out.append((stripped, True))
            plain.append(trail)
        else:
            plain.append(tok)
    if "".join(plain):
        out.append(("".join(plain), False))
    return tuple(out)


def _split_slashes(text: str) -> list[str]:
    """Slashes and the hyphens of a "--" as pieces of their own, the rest in runs."""
    out: list[str] = []
    start = 0
    for i, c in enumerate(text):
        if c in SLASHES or (c == "-" and "--" in text[max(0, i - 1) : i + 2]):
            if i > start:
                out.append(text[start:i])
            out.append(c)
            start = i + 1
    if start < len(text):
        out.append(text[start:])
    return out


class FontBook:
    """The chains a renderer needs, built once per (config, scale). `tracking` / `slash_pad` are in em."""

    def __init__(
        self,
        body: str,
        mono: str,
        size: int,
        tracking: float = 0.0,
        slash_pad: float = 0.0,
        ident: str = "",
        dash_pad: float = 0.0,
        ident_scale: float = 1.0,
        ident_tracking: float = 0.0,
        ident_paths_only: bool = False,
        ident_bold: bool = False,
    ) -> None:
        self.size = size
        self.dash_pad = dash_pad
        self._ident = resolve_font(ident or body, bold=True) if ident_bold else resolve_font(ident) if ident else None
        self._ident_bold = ident_bold
        self._ident_on = bool(ident) or ident_scale != 1.0 or ident_tracking > 0 or ident_bold
        self.ident_scale = ident_scale
        self.ident_tracking = ident_tracking
        self.ident_paths_only = ident_paths_only
        self.tracking = tracking
        self.slash_pad = slash_pad
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
            ch = self._chains[key] = FontChain(
                path,
                size,
                bold=bold,
                tracking=self.tracking * size,
                slash_pad=self.slash_pad * size,
                dash_pad=self.dash_pad * size,
            )
            if self._ident_on and not mono and not bold:
                ch.ident = FontChain(
                    self._ident or path,
                    max(size, round(size * self.ident_scale)),
                    bold=self._ident_bold,
                    tracking=self.ident_tracking * size,
                    slash_pad=self.slash_pad * size,
                    dash_pad=self.dash_pad * size,
                )
                ch.ident_paths_only = self.ident_paths_only
        return ch
