"""Honest text accounting: the text a document's images carry, counted once.

Compression (text tokens ÷ visual tokens) is only meaningful when the numerator is the document's own
content. This module defines that content, once, for the manifest, `kb docs`, the ingest summary and
eval/bench_render.py:

- every block's text once, in document order (a heading counts where it stands in the body);
- without layout artefacts: dot/dash leaders ("Introduction ........ 3"), running headers and footers
  repeated on many pages (counted at their first occurrence), bare page numbers, bullet glyphs;
- without what the renderer repeats: a table's header row drawn again on a continuation part;
- the header line (title › heading path) drawn on every image is overhead charged to the images:
  it is not content, so it is not counted here (its pixels are in the visual tokens).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from kb.types import Block, Section

# Runs of 4+ leader characters, optionally spaced (". . . .", "·····", "____", "-----", "====").
_LEADER = re.compile(r"(?:[.·…_\-=─—]\s?){4,}")
_BULLETS = frozenset("•◦▪▫‣⁃●○■□–-*·")
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?\s*$", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_WS = re.compile(r"[ \t]+")
RUNNING_MIN_PAGES = 3  # a short line seen on this many pages is a running header/footer
RUNNING_MAX_CHARS = 120


def strip_leaders(text: str) -> str:
    """Text without dot/dash leader runs (each becomes one space)."""
    return _WS.sub(" ", _LEADER.sub(" ", text)).strip()


def _line_key(text: str) -> str:
    """Running headers differ only in their page number: compare with digits masked."""
    return _DIGITS.sub("#", " ".join(text.split()).casefold())


def running_keys(blocks: Iterable[Block]) -> frozenset[str]:
    """Keys of short paragraphs among the first or last two blocks of a page that repeat on many pages
    (at least RUNNING_MIN_PAGES and a third of the pages with text): running headers and footers.
    Documents without pages have none."""
    by_page: dict[int, list[Block]] = {}
    for b in blocks:
        if b.page is not None:
            by_page.setdefault(b.page, []).append(b)
    pages: dict[str, set[int]] = {}
    for page, bs in by_page.items():
        for b in {id(b): b for b in (*bs[:2], *bs[-2:])}.values():
            if b.kind not in ("paragraph", "caption") or len(b.text) > RUNNING_MAX_CHARS:
                continue
            key = _line_key(b.text)
            if key.strip("# "):
                pages.setdefault(key, set()).add(page)
    need = max(RUNNING_MIN_PAGES, len(by_page) / 3)
    return frozenset(k for k, ps in pages.items() if len(ps) >= need)


class ContentText:
    """The content text of one document's parts, fed in document order (state: what was already counted)."""

    def __init__(self, blocks: Iterable[Block]) -> None:
        self._running = running_keys(blocks)
        self._counted_running: set[str] = set()
        self._table_heads: dict[tuple[str, int], set[tuple[str, ...]]] = {}

    def block_text(self, block: Block, section: Section) -> str:
        if block.kind in ("paragraph", "caption") and len(block.text) <= RUNNING_MAX_CHARS:
            if _PAGE_NUMBER.match(block.text):
                return ""
            key = _line_key(block.text)
            if key in self._running:
                if key in self._counted_running:
                    return ""
                self._counted_running.add(key)
        if block.kind == "table" and block.rows:
            rows = list(block.rows)
            if block.header:
                heads = self._table_heads.setdefault((section.doc_id, section.ordinal), set())
                if rows[0] in heads:  # the header row repeated on a continuation part
                    rows = rows[1:]
                heads.add(rows[0] if rows else ())
            return strip_leaders("\n".join("\t".join(r) for r in rows))
        if block.kind == "list_item":
            marker = (block.marker or "").strip()
            text = block.text if not marker or marker in _BULLETS else f"{marker} {block.text}"
            return strip_leaders(text)
        if block.kind in ("code", "formula"):
            return _LEADER.sub(" ", block.text).strip()
        return strip_leaders(block.text)

    def of(self, part: Section) -> str:
        """The content text of one part (call once per part, in document order)."""
        texts = (self.block_text(b, part) for b in part.blocks)
        return "\n".join(t for t in texts if t)


def content_texts(blocks: Iterable[Block], parts: Sequence[Section]) -> list[str]:
    """Content text per part; `blocks` are the whole document's (for running-header detection)."""
    ct = ContentText(blocks)
    return [ct.of(p) for p in parts]
