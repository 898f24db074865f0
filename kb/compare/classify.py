"""What kind of change a token difference is (normative, value or text), in one line."""

from __future__ import annotations

import re
from typing import Literal

Category = Literal["normative", "value", "text"]

# Requirement levels, strongest phrasing first (so "must not" is not read as "must").
_LEVELS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"\b(?:must|shall)\s+not\b|\bmustn't\b|\bshan't\b|\bcan\s*not\b|\bcannot\b|\bcan't\b|\bmay\s+not\b"
            r"|\bis\s+not\s+(?:allowed|permitted)\b|\bprohibited\b|\bforbidden\b",
            re.I,
        ),
        "MUST NOT",
    ),
    (re.compile(r"\bshould\s+not\b|\bshouldn't\b|\bnot\s+recommended\b", re.I), "SHOULD NOT"),
    (re.compile(r"\bmust\b|\bshall\b|\b(?:is|are)\s+required\b|\brequired\s+to\b|\bmandatory\b", re.I), "MUST"),
    (re.compile(r"\bshould\b|\brecommended\b", re.I), "SHOULD"),
    (re.compile(r"\bmay\b|\boptional(?:ly)?\b", re.I), "MAY"),
]
MODAL_WORDS = frozenset(
    [
        "must",
        "shall",
        "should",
        "may",
        "cannot",
        "can",
        "not",
        "required",
        "mandatory",
        "recommended",
        "optional",
        "optionally",
        "allowed",
        "permitted",
        "prohibited",
        "forbidden",
        "mustn",
        "shouldn",
        "shan",
    ]
)


def levels(text: str) -> list[str]:
    """Requirement levels in order of appearance ("cannot exceed" reads as MUST NOT)."""
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for pat, level in _LEVELS:
        for m in pat.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            found.append((m.start(), level))
    return [lv for _, lv in sorted(found)]


_VALUE = re.compile(r"\d|[_/\\]|[a-z][A-Z]|^[A-Z0-9]{2,}$|\.\w")


def is_value(word: str) -> bool:
    """A number, unit-bearing number, identifier, path or constant name."""
    return bool(_VALUE.search(word))


def _short(words: list[str], limit: int = 60) -> str:
    s = " ".join(words)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def classify(text_a: str, text_b: str, diffs: list[tuple[list[str], list[str]]]) -> tuple[Category, str]:
    """Category and summary of a changed unit; `diffs`: the differing raw words on each side."""
    touched = {w.casefold() for a, b in diffs for w in a + b}
    la, lb = levels(text_a), levels(text_b)
    parts = [f"{_short(a) or '∅'} → {_short(b) or '∅'}" for a, b in diffs[:3]]
    if touched & MODAL_WORDS and la != lb:
        level = f"{'/'.join(la) or 'no requirement'} → {'/'.join(lb) or 'no requirement'}"
        rest = [
            p for (a, b), p in zip(diffs[:3], parts, strict=False) if not {w.casefold() for w in a + b} <= MODAL_WORDS
        ]
        return "normative", "; ".join([level, *rest])
    summary = "; ".join(parts) + (" …" if len(diffs) > 3 else "")
    if any(is_value(w) for a, b in diffs for w in a + b):
        return "value", summary
    return "text", summary


_KIND_NAME = {"sentence": "sentence", "item": "list item", "row": "table row", "line": "line", "heading": "heading"}


def classify_whole(kind: str, text: str, verb: str) -> tuple[Category, str]:
    """A unit added or removed as a whole."""
    name = _KIND_NAME.get(kind, "text")
    summary = f"{name} {verb}: {_short(text.split(), 80)}"
    if levels(text):
        return "normative", summary
    if kind == "row":
        return "value", summary
    return "text", summary
