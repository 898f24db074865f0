"""Small shared rules for what people type and read: tag lists, page ranges, and document labels
(core: imports nothing of kb).

Labels are data: a document's title and headings are shown next to its source, outside the framed
text, where a model trusts them most. So they are cleaned: one line, no bracket that could pass for
a citation number (`[2]`, `［2］`, `【2】`), no control or invisible characters, and a length cap."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable


def clean_tags(tags: Iterable[str] | None) -> list[str]:
    """Tags as stored: stripped, no empties, no duplicates, sorted."""
    return sorted({t.strip() for t in tags or () if t.strip()})


def parse_tags(text: str) -> list[str]:
    """Tags typed in one field, separated by commas or semicolons."""
    return clean_tags(text.replace(";", ",").split(","))


def page_span(start: int | None, end: int | None) -> tuple[int, int] | None:
    """(first, last) page of something that starts at `start`; None where the format has no pages."""
    if start is None:
        return None
    return (start, end if end is not None else start)


def page_label(pages: tuple[int, int] | None) -> str:
    """`p. 3` or `p. 3–5`; empty where there are no pages."""
    if pages is None:
        return ""
    first, last = pages
    return f"p. {first}" + (f"–{last}" if last != first else "")


MAX_LABEL_CHARS = 120
MAX_TITLE_CHARS = 200  # stored titles and headings; a longer "heading" is a paragraph
# square brackets and their look-alikes become parentheses, so `[n]` appears only where we write it
_BRACKETS = str.maketrans(dict.fromkeys("[［【〔〖〘⟦⦋⁅", "(") | dict.fromkeys("]］】〕〗〙⟧⦌⁆", ")"))
_SPACE = re.compile(r"\s+")


def one_line(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    """`text` on one line (control, format and separator characters become spaces), at most `limit`
    characters; an ellipsis marks a cut."""
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clean_label(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """A title or heading as it may appear in a source label: one line, no citation look-alikes."""
    return one_line(text.translate(_BRACKETS), limit)
