"""Small shared rules for what people type and read: tag lists and page ranges (core: imports nothing of kb)."""

from __future__ import annotations

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
