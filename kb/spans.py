"""Compact records of a section's structure, kept in its manifest next to its text.

- block spans: each block's kind, level, marker length, header flag, source page and its span
  [start, end) in `Section.text`, so comparisons see headings, list items and table rows again after
  small sections were merged and long ones paginated;
- line spans: where each drawn line of the section's image lies (px) and which span of the text it
  shows, so a report can mark the lines of a changed sentence on the image.

Both are stored as short strings ("a,b,c;d,e,f"): manifests are JSON with indentation, where lists
of numbers would take a line per number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kb.types import Block, BlockKind, Section

_CODE: dict[str, str] = {
    "heading": "h",
    "paragraph": "p",
    "list_item": "l",
    "table": "t",
    "code": "c",
    "formula": "f",
    "caption": "n",
}
_KIND: dict[str, BlockKind] = {
    "h": "heading",
    "p": "paragraph",
    "l": "list_item",
    "t": "table",
    "c": "code",
    "f": "formula",
    "n": "caption",
}


@dataclass(frozen=True)
class BlockSpan:
    kind: BlockKind
    level: int
    marker_len: int  # characters of "marker " before a list item's text
    header: bool
    page: int | None
    start: int
    end: int


@dataclass(frozen=True)
class LineSpan:
    start: int
    end: int
    x0: int
    y0: int
    x1: int
    y1: int


class DrawnLine(Protocol):
    """What the renderer reports per drawn line (ingest.render.LineBox)."""

    @property
    def block(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def x0(self) -> int: ...
    @property
    def y0(self) -> int: ...
    @property
    def x1(self) -> int: ...
    @property
    def y1(self) -> int: ...


def _marker_len(b: Block) -> int:
    return len(b.marker) + 1 if b.kind == "list_item" and b.marker else 0


def block_spans(section: Section) -> list[BlockSpan]:
    out = []
    pos = 0
    for b in section.blocks:
        n = len(b.plain_text())
        out.append(BlockSpan(b.kind, b.level, _marker_len(b), b.header, b.page, pos, pos + n))
        pos += n + 1  # the "\n" that joins blocks in Section.text
    return out


def encode_blocks(section: Section) -> str:
    return ";".join(
        f"{_CODE[s.kind]},{s.level},{s.marker_len},{int(s.header)},{'' if s.page is None else s.page},{s.start},{s.end}"
        for s in block_spans(section)
    )


def decode_blocks(raw: str) -> list[BlockSpan]:
    out = []
    for item in raw.split(";") if raw else []:
        k, level, mlen, hdr, page, start, end = item.split(",")
        out.append(
            BlockSpan(_KIND[k], int(level), int(mlen), hdr == "1", int(page) if page else None, int(start), int(end))
        )
    return out


def line_spans(section: Section, lines: Sequence[DrawnLine]) -> list[LineSpan]:
    """Each drawn line located in `section.text`: searched forward in its block's text, so wrapped
    paragraphs, list markers and table cells all map; a line not found (a continuation mark) is left out."""
    spans = block_spans(section)
    text = section.text
    cursor = {i: s.start for i, s in enumerate(spans)}
    out = []
    for ln in lines:
        if not 0 <= ln.block < len(spans):
            continue
        s = spans[ln.block]
        needle = ln.text.strip()
        at = text.find(needle, cursor[ln.block], s.end)
        if at < 0:
            continue
        cursor[ln.block] = at + len(needle)
        out.append(LineSpan(at, at + len(needle), ln.x0, ln.y0, ln.x1, ln.y1))
    return out


def encode_lines(spans: Sequence[LineSpan]) -> str:
    return ";".join(f"{s.start},{s.end},{s.x0},{s.y0},{s.x1},{s.y1}" for s in spans)


def decode_lines(raw: str) -> list[LineSpan]:
    out = []
    for item in raw.split(";") if raw else []:
        a, b, x0, y0, x1, y1 = (int(v) for v in item.split(","))
        out.append(LineSpan(a, b, x0, y0, x1, y1))
    return out
