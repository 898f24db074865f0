"""Honest text accounting: content counted once, layout artefacts and drawn overhead not counted."""

from __future__ import annotations

from dataclasses import replace

from ingest.accounting import ContentText, content_texts, running_keys, strip_leaders
from ingest.render import GlyphRenderer
from kb.settings import RenderConfig
from kb.tokens import BUNDLED_NAME, TokenCounter
from kb.types import Block, Section


def _section(blocks: list[Block], ordinal: int = 0) -> Section:
    return Section("doc", ordinal, ("Guide", "Install"), tuple(blocks))


def test_dot_leaders_are_not_content() -> None:
    assert strip_leaders("1.2 Installing the server .......... 14") == "1.2 Installing the server 14"
    assert strip_leaders("Scope . . . . . . . 3") == "Scope 3"
    assert strip_leaders("a ___________ b") == "a b"
    # ordinary punctuation, versions and ellipses stay
    assert strip_leaders("v1.2.3 and so on... done") == "v1.2.3 and so on... done"


def test_running_headers_count_once_and_page_numbers_not_at_all() -> None:
    blocks = []
    names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    for page in range(1, 7):
        n = names[page - 1]
        blocks += [
            Block("paragraph", f"ACME Storage Spec v2 — page {page}", page=page),
            Block("paragraph", f"Body text of page {n} about /etc/acme.conf.", page=page),
            Block("paragraph", f"More text {n} on the same page.", page=page),
            Block("paragraph", f"Closing text {n}.", page=page),
            Block("paragraph", str(page), page=page),
        ]
    assert running_keys(blocks) == frozenset({"acme storage spec v# — page #"})
    parts = [_section(blocks[i : i + 5], ordinal=i) for i in range(0, len(blocks), 5)]
    texts = content_texts(blocks, parts)
    joined = "\n".join(texts)
    assert joined.count("ACME Storage Spec") == 1
    assert all(f"Body text of page {n}" in joined for n in names)
    assert "\n3\n" not in f"\n{joined}\n"


def test_repeated_table_header_on_a_continuation_part_is_not_counted() -> None:
    head = ("Option", "Default")
    t1 = Block("table", "", rows=(head, ("--jobs", "2")), header=True)
    t2 = Block("table", "", rows=(head, ("--limit", "none")), header=True)
    sec = _section([t1])
    p1, p2 = replace(sec, part=1, parts=2), replace(sec, blocks=(t2,), part=2, parts=2)
    ct = ContentText([t1, t2])
    assert ct.of(p1) == "Option Default\n--jobs 2"
    assert ct.of(p2) == "--limit none"


def test_bullets_are_layout_numbers_are_content() -> None:
    ct = ContentText([])
    sec = _section([])
    assert ct.block_text(Block("list_item", "first", marker="•"), sec) == "first"
    assert ct.block_text(Block("list_item", "step", marker="2."), sec) == "2. step"


def test_header_line_is_overhead_not_content() -> None:
    """The title › heading path line is drawn on every part but counted nowhere; the body is counted once
    however many parts it is split into."""
    text = " ".join(f"word{i} /usr/share/doc/pkg{i}" for i in range(900))
    sec = _section([Block("heading", "Install", level=1), Block("paragraph", text)])
    r = GlyphRenderer(RenderConfig())
    parts = r.paginate(sec, "Guide")
    assert len(parts) > 1
    counter = TokenCounter.load()
    assert counter.name == BUNDLED_NAME
    total = sum(counter.count(t) for t in content_texts(sec.blocks, parts))
    once = counter.count("Install\n" + text)
    assert abs(total - once) <= len(parts)  # only tokenisation at the cut points may differ
    assert all("Guide" not in t for t in content_texts(sec.blocks, parts))
