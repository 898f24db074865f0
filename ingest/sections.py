"""Split a parsed document into sections along its own headings; merge tiny ones.

No size splitting here: the renderer paginates long sections into image-sized parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kb.types import Block, ParsedDocument, Section

_ADMONITIONS = frozenset(
    {
        "note",
        "notes",
        "tip",
        "tips",
        "important",
        "warning",
        "caution",
        "danger",
        "hint",
        "attention",
        "注意",
        "警告",
        "注記",
        "ヒント",
        "重要",
    }
)


def is_admonition(text: str) -> bool:
    """ "Note", "Warning", ... titles belong to the section they sit in; they start no section."""
    return text.strip().rstrip(":").casefold() in _ADMONITIONS


@dataclass
class _Group:
    path: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)
    members: list[tuple[str, ...]] = field(default_factory=list)  # original paths merged in

    def __post_init__(self) -> None:
        if not self.members:
            self.members = [self.path]

    @property
    def content_chars(self) -> int:
        """Characters of text besides headings."""
        return sum(len(b.plain_text()) for b in self.blocks if b.kind != "heading")

    @property
    def chapter(self) -> str:
        return self.path[0] if self.path else ""


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _merged_path(first: tuple[str, ...], second: tuple[str, ...], *, tail: bool) -> tuple[str, ...]:
    """Heading path of two merged neighbours.

    - a tiny tail joins the section before it, which keeps its path;
    - a parent's tiny intro joins its first child: the child's path (it already names the parent);
    - otherwise the common prefix (or, across chapters, the bigger side's path).
    """
    if tail:
        return first
    if len(second) > len(first) and second[: len(first)] == first:
        return second
    return _common_prefix(first, second) or second


def _split(parsed: ParsedDocument) -> list[_Group]:
    groups: list[_Group] = []
    stack: list[tuple[int, str]] = []
    current: _Group | None = None
    for b in parsed.blocks:
        if b.kind == "heading" and not is_admonition(b.text):
            while stack and stack[-1][0] >= b.level:
                stack.pop()
            stack.append((b.level, b.text))
            current = _Group(tuple(t for _, t in stack), [b])
            groups.append(current)
            continue
        if current is None:  # text before the first heading
            current = _Group((parsed.title,) if parsed.title else (), [])
            groups.append(current)
        current.blocks.append(b)
    return [g for g in groups if g.blocks]


def _merge_partner(groups: list[_Group], i: int) -> int | None:
    """Index of the neighbour tiny section `i` should merge into, or None to leave it."""
    g = groups[i]
    nxt = groups[i + 1] if i + 1 < len(groups) else None
    prv = groups[i - 1] if i > 0 else None
    # a parent heading with only an intro goes with its first child
    if nxt is not None and len(nxt.path) > len(g.path) and nxt.path[: len(g.path)] == g.path:
        return i + 1
    if prv is not None and prv.chapter == g.chapter:
        return i - 1
    if nxt is not None and nxt.chapter == g.chapter:
        return i + 1
    # across chapters only when there is nothing but a heading
    if g.content_chars == 0:
        if nxt is not None:
            return i + 1
        if prv is not None:
            return i - 1
    return None


def _merge_tiny(groups: list[_Group], min_chars: int) -> list[_Group]:
    changed = True
    while changed and len(groups) > 1:
        changed = False
        for i, g in enumerate(groups):
            if g.content_chars >= min_chars:
                continue
            j = _merge_partner(groups, i)
            if j is None:
                continue
            first, second = (g, groups[j]) if j > i else (groups[j], g)
            members = first.members + second.members
            path = _merged_path(first.path, second.path, tail=j < i)
            if len(members) > 2:
                # Several sections in one: only the shared ancestry is true of all of them
                # (the sub-headings stay visible as heading blocks in the image and text).
                common = members[0]
                for m in members[1:]:
                    common = _common_prefix(common, m)
                path = common or path[:1]
            merged = _Group(path, first.blocks + second.blocks, members)
            lo = min(i, j)
            groups[lo : lo + 2] = [merged]
            changed = True
            break
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
                heading_path=g.path or ((parsed.title,) if parsed.title else ()),
                blocks=tuple(g.blocks),
                page_start=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
            )
        )
    return sections
