"""Text normalisation for comparing documents across formats.

Two renditions of the same text (HTML and Markdown, PDF and DOCX) differ in markup residue, line
wrapping, quote and dash styles, superscripts (2<sup>31</sup> vs 2³¹), footnote markers and page
furniture. Comparison runs on word tokens of the normalised text, so none of these show as changes.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

# A superscript digit run glued to a letter is a footnote marker ("limit¹"); after a digit it is an
# exponent (2³¹), which NFKC turns into plain digits on both sides.
_FOOTNOTE_SUP = re.compile(r"(?<=[^\W\d_])[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_FOOTNOTE_REF = re.compile(r"\[(?:\d{1,3}|[a-z]|\*|†)\]|[†‡§¶](?=\s|$)")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)\s]*\)")
# Inline HTML left in Markdown; only known tags ("<nas@debian.org>" or "<file>" are text).
_MARKUP = re.compile(
    r"(?<!\w)[*_]+|[*_]+(?!\w)|[`^~]"
    r"|</?(?:a|b|i|u|s|em|strong|sup|sub|span|code|kbd|br|small|mark|ins|del|abbr|cite|q|var|samp)\b[^<>]*>"
)
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "‐": "-", "−": "-"})
# Words, with numbers kept whole (3.5.8, 1,000,000, 2.5) so a changed value is one token.
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:_+[^\W_]+)*|[^\s\w]", re.UNICODE)


def clean(text: str) -> str:
    """Display text: markup residue and footnote markers removed, whitespace collapsed (case kept)."""
    text = _FOOTNOTE_SUP.sub("", text)
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = _MD_LINK.sub(r"\1", text)
    text = _FOOTNOTE_REF.sub("", text)
    text = _MARKUP.sub("", text)
    return " ".join(text.split())


class Token(NamedTuple):
    norm: str  # compared
    raw: str  # shown in summaries


def tokens(cleaned: str) -> list[Token]:
    """Word and number tokens (punctuation dropped: a comma or colon more is not a change)."""
    return [Token(w.casefold(), w) for w in _TOKEN.findall(cleaned) if w[0].isalnum()]


_ABBREV = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "vs",
        "cf",
        "al",
        "fig",
        "figs",
        "no",
        "nos",
        "sec",
        "secs",
        "ch",
        "chap",
        "approx",
        "dr",
        "mr",
        "mrs",
        "ms",
        "st",
        "vol",
        "eq",
        "eqs",
        "ref",
        "refs",
        "resp",
    ]
)
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|(?<=[。！？])")


def sentences(text: str) -> list[str]:
    """Sentences of a paragraph (a period after an abbreviation or a lone capital does not end one)."""
    out: list[str] = []
    start = 0
    for m in _SENT_END.finditer(text):
        head = text[start : m.start()].rstrip("\"')]")
        last = head.rsplit(None, 1)[-1] if head.split() else ""
        word = last.rstrip(".!?").casefold()
        if word in _ABBREV or (len(word) == 1 and word.isalpha()):
            continue  # "e.g. X", "J. Smith"
        piece = text[start : m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.IGNORECASE)


def is_furniture(text: str) -> bool:
    """A page number line ("12", "Page 3 of 40", "- 7 -")."""
    return bool(_PAGE_NUMBER.match(text.strip()))


_NUMBERING = re.compile(
    r"^\s*(?:(?:chapter|section|part|appendix|annex|§)\s*)?(?:\d+(?:[.\-]\d+)*[.):]?|[IVXLC]+[.):]|[A-Z][.)])\s+",
    re.IGNORECASE,
)


def strip_numbering(heading: str) -> str:
    return _NUMBERING.sub("", heading, count=1)


def title_key(heading: str) -> str:
    """A heading without its numbering, normalised: "4.2 Limits" and "5.1. Limits" are the same title."""
    return " ".join(t.norm for t in tokens(strip_numbering(clean(heading))))
