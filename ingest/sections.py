"""Split a parsed document into sections along its own headings; merge tiny ones.

No size splitting here: the renderer paginates long sections into image-sized parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ingest.formats.common import is_admonition
from kb.labels import MAX_TITLE_CHARS, one_line
from kb.types import Block, ParsedDocument, Section


@dataclass
class _Group:
    path: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)
    members: list[tuple[str, ...]] = field(default_factory=list)  # original paths merged in
    chars: int = -1

    def __post_init__(self) -> None:
        if not self.members:
            self.members = [self.path]
        if self.chars < 0:
            self.chars = sum(len(b.plain_text()) for b in self.blocks if b.kind != "heading")

    @property
    def content_chars(self) -> int:
        """Characters of text besides headings."""
        return self.chars

    @property
    def chapter(self) -> str:
        return self.path[0] if self.path else ""

    @property
    def headings(self) -> tuple[str, ...]:
        """Every heading that starts a part of this group, in order (admonitions are not structure)."""
        return tuple(b.text for b in self.blocks if b.kind == "heading" and not is_admonition(b.text))


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _split(parsed: ParsedDocument) -> list[_Group]:
    groups: list[_Group] = []
    stack: list[tuple[int, str]] = []
    current: _Group | None = None
    title = one_line(parsed.title)
    for b in parsed.blocks:
        if b.kind == "heading" and len(b.text) > MAX_TITLE_CHARS:
            # a "heading" this long is text (e.g. a one-line file): as a heading it would fill every
            # image's header and label
            b = replace(b, kind="paragraph", level=0)
        if b.kind == "heading" and not is_admonition(b.text):
            while stack and stack[-1][0] >= b.level:
                stack.pop()
            stack.append((b.level, one_line(b.text)))
            current = _Group(tuple(t for _, t in stack), [b])
            groups.append(current)
            continue
        if current is None:  # text before the first heading
            current = _Group((title,) if title else (), [])
            groups.append(current)
        current.blocks.append(b)
    for g in groups:
        g.chars = sum(len(b.plain_text()) for b in g.blocks if b.kind != "heading")
    return [g for g in groups if g.blocks]


def _merge_partner(groups: list[_Group], i: int) -> int | None:
    """Index of the neighbour tiny section `i` should merge into, or None to leave it.

    Never across a top-level chapter: a citation must not name one chapter for text of another."""
    g = groups[i]
    nxt = groups[i + 1] if i + 1 < len(groups) else None
    prv = groups[i - 1] if i > 0 else None
    # a parent heading with only an intro goes with its first child
    if nxt is not None and len(nxt.path) > len(g.path) and nxt.path[: len(g.path)] == g.path:
        return i + 1
    candidates = [j for j, o in ((i - 1, prv), (i + 1, nxt)) if o is not None and o.chapter == g.chapter]
    if not candidates:
        return None
    # the smaller neighbour: keeps images evenly full instead of growing one big section
    return min(candidates, key=lambda j: (groups[j].content_chars, j != i - 1))


def _merge_tiny(groups: list[_Group], min_chars: int) -> list[_Group]:
    """Merge each tiny group into a neighbour until none can merge; each merge costs O(1) besides the
    list deletion, so thousands of tiny sections stay fast."""
    i = 0
    while i < len(groups) and len(groups) > 1:
        g = groups[i]
        j = _merge_partner(groups, i) if g.content_chars < min_chars else None
        if j is None:
            i += 1
            continue
        lo = min(i, j)
        first, second = groups[lo], groups[lo + 1]
        # labelled by the deepest common ancestor of everything inside, never by one member's heading
        first.path = _common_prefix(first.path, second.path) or first.path[:1]
        first.blocks.extend(second.blocks)
        first.members.extend(second.members)
        first.chars += second.chars
        del groups[lo + 1]
        i = max(0, lo - 1)  # the merged group may now let its left neighbour merge into it
    return groups


# Sections under this many content characters merge with a neighbour in their chapter. Images have a
# fixed overhead (header, margins, patch rounding, column balancing), so fuller images compress better:
# 200 -> 1500 raised compression ~9% on eval/bench_render.py (4000 only ~2% more).
MIN_CHARS = 1500


def build_sections(doc_id: str, parsed: ParsedDocument, *, min_chars: int = MIN_CHARS) -> list[Section]:
    """Sections in reading order; each starts with its heading block and carries its heading path."""
    groups = _merge_tiny(_split(parsed), min_chars)
    sections: list[Section] = []
    for g in groups:
        pages = [b.page for b in g.blocks if b.page is not None]
        sections.append(
            Section(
                doc_id=doc_id,
                ordinal=len(sections),
                heading_path=g.path or ((one_line(parsed.title),) if parsed.title else ()),
                headings=g.headings,
                role="toc" if pages and parsed.toc_pages and set(pages) <= set(parsed.toc_pages) else "body",
                blocks=tuple(g.blocks),
                page_start=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
            )
        )
    return sections
