"""Which lines of a source support an answer: the answer's quoted phrases and the words its statements
citing that source share with each drawn line. With no overlap nothing is marked (never a guess)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from kb.spans import LineSpan

_WORD = re.compile(r"[0-9]+(?:[.,][0-9]+)*|[^\W_]+(?:[-/][^\W_]+)*", re.UNICODE)
_QUOTE = re.compile(r"[\"“”„«»`']([^\"“”„«»`']{4,200})[\"“”„«»`']")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CITE = re.compile(r"\[(\d+)\]")
MAX_LINES = 12  # a long answer marks its best lines, not the whole page
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "might",
        "must",
        "not",
        "of",
        "on",
        "or",
        "our",
        "shall",
        "should",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "within",
        "would",
        "you",
        "your",
        "also",
        "any",
        "all",
        "each",
        "per",
        "via",
        "more",
        "less",
        "only",
        "same",
        "other",
        "new",
    ]
)


def words(text: str) -> set[str]:
    """Content words: lower-cased, stop words and single letters out, numbers kept (figures matter most)."""
    return {
        w
        for w in (m.group(0).casefold() for m in _WORD.finditer(text))
        if w not in _STOP and (len(w) > 1 or w.isdigit())
    }


def cited_statements(answer: str, n: int) -> str:
    """The sentences of the answer that cite [n]; the whole answer when none does (an uncited source is
    then checked against everything the answer says)."""
    sentences = [s for s in _SENTENCE.split(answer) if s.strip()]
    own = [s for s in sentences if str(n) in _CITE.findall(s)]
    return " ".join(own) if own else answer


def supporting_lines(answer: str, n: int, text: str, lines: Sequence[LineSpan]) -> list[LineSpan]:
    """The drawn lines of source [n] (its `text` and line spans) that the answer quotes or shares at least
    two content words with (one when it is a figure), best first up to MAX_LINES, in reading order."""
    statements = _CITE.sub(" ", cited_statements(answer, n))
    quotes = [q.strip().casefold() for q in _QUOTE.findall(statements) if len(q.strip()) >= 4]
    want = words(statements)
    folded = text.casefold()
    quoted: list[tuple[int, int]] = []
    for q in quotes:
        at = folded.find(q)
        if at >= 0:
            quoted.append((at, at + len(q)))
    scored: list[tuple[float, int]] = []
    for i, ln in enumerate(lines):
        if any(a < ln.end and ln.start < b for a, b in quoted):
            scored.append((100.0, i))
            continue
        shared = words(text[ln.start : ln.end]) & want
        figures = {w for w in shared if len(w) > 1 and any(c.isdigit() for c in w)}
        if len(shared) >= 2 or figures:
            scored.append((len(shared) + len(figures), i))
    best = sorted(scored, key=lambda s: (-s[0], s[1]))[:MAX_LINES]
    return [lines[i] for _, i in sorted(best, key=lambda s: s[1])]
