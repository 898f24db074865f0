"""build_sections: heading paths, page spans, tiny-section merging, stable ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.formats import parse_file
from ingest.sections import MIN_CHARS, build_sections
from kb.settings import Settings
from kb.types import Block, ParsedDocument

LONG = "This paragraph has enough words in it to stand as a section of its own without merging. " * 3
SMALL = 200  # the merging rules below are shown with sections of a few hundred characters


def H(text: str, level: int, page: int | None = None) -> Block:
    return Block("heading", text, level=level, page=page)


def P(text: str = LONG, page: int | None = None) -> Block:
    return Block("paragraph", text, page=page)


def doc(*blocks: Block, title: str = "Doc") -> ParsedDocument:
    return ParsedDocument(title=title, format="pdf", blocks=tuple(blocks))


def test_heading_paths_and_pages() -> None:
    parsed = doc(
        H("26. Backup", 1, 1),
        P(page=1),
        H("26.3. Continuous Archiving", 2, 1),
        P(page=1),
        P(page=2),
        H("26.3.1. Setting Up WAL Archiving", 3, 2),
        P(page=2),
        P(page=3),
        H("26.4. Other", 2, 4),
        P(page=4),
    )
    secs = build_sections("d1", parsed, min_chars=SMALL)
    assert [s.heading_path for s in secs] == [
        ("26. Backup",),
        ("26. Backup", "26.3. Continuous Archiving"),
        ("26. Backup", "26.3. Continuous Archiving", "26.3.1. Setting Up WAL Archiving"),
        ("26. Backup", "26.4. Other"),
    ]
    assert [s.ordinal for s in secs] == [0, 1, 2, 3]
    assert [(s.page_start, s.page_end) for s in secs] == [(1, 1), (1, 2), (2, 3), (4, 4)]
    assert all(s.blocks[0].kind == "heading" for s in secs)
    assert secs[2].blocks[0].text == "26.3.1. Setting Up WAL Archiving"


def test_text_before_first_heading_uses_title() -> None:
    secs = build_sections("d", doc(P(), H("A", 1), P(), title="Manual"), min_chars=SMALL)
    assert secs[0].heading_path == ("Manual",)
    assert secs[1].heading_path == ("A",)


def test_parent_intro_merges_into_first_child() -> None:
    parsed = doc(H("1. Chapter", 1), P("Short intro."), H("1.1. Part", 2), P(), H("1.2. Next", 2), P())
    secs = build_sections("d", parsed, min_chars=SMALL)
    assert len(secs) == 2
    # labelled by the deepest common ancestor; both headings listed
    assert secs[0].heading_path == ("1. Chapter",)
    assert secs[0].headings == ("1. Chapter", "1.1. Part")
    assert [b.text for b in secs[0].blocks[:3]] == ["1. Chapter", "Short intro.", "1.1. Part"]
    assert secs[1].heading_path == ("1. Chapter", "1.2. Next")


def test_tiny_tail_merges_into_previous_sibling() -> None:
    parsed = doc(H("1. A", 1), P(), H("1.1. B", 2), P(), H("1.2. C", 2), P("tiny"))
    secs = build_sections("d", parsed, min_chars=SMALL)
    assert [s.heading_path for s in secs] == [("1. A",), ("1. A",)]
    assert secs[-1].headings == ("1.1. B", "1.2. C")
    assert secs[-1].blocks[-1].text == "tiny"


def test_no_merge_across_chapters_when_avoidable() -> None:
    parsed = doc(H("1. A", 1), P(), H("2. B", 1), P("small but real content"), H("3. C", 1), P())
    secs = build_sections("d", parsed, min_chars=SMALL)
    assert [s.heading_path for s in secs] == [("1. A",), ("2. B",), ("3. C",)]


def test_min_chars_zero_keeps_everything() -> None:
    parsed = doc(H("1. A", 1), P("x"), H("1.1. B", 2), P("y"))
    assert len(build_sections("d", parsed, min_chars=0)) == 2


def test_admonition_heading_stays_in_section() -> None:
    parsed = doc(H("1. A", 1), P(), H("Note", 2), P(), H("1.1. B", 2), P())
    secs = build_sections("d", parsed, min_chars=SMALL)
    assert [s.heading_path for s in secs] == [("1. A",), ("1. A", "1.1. B")]
    assert "Note" in [b.text for b in secs[0].blocks]


def test_kinds_and_ids_are_stable() -> None:
    parsed = doc(H("1. A", 1), P(), Block("code", "x = 1\ny = 2"), Block("list_item", "item", marker="•"))
    a = build_sections("doc-1", parsed, min_chars=SMALL)
    b = build_sections("doc-1", parsed, min_chars=SMALL)
    assert [s.section_id for s in a] == [s.section_id for s in b]
    assert a[0].kinds == ("paragraph", "code", "list")
    assert build_sections("doc-2", parsed, min_chars=SMALL)[0].section_id != a[0].section_id


def test_parse_and_section_twice_gives_same_ids(tmp_path: Path) -> None:
    p = tmp_path / "guide.md"
    p.write_text(
        "# Guide\n\nIntro.\n\n## Install\n\n" + LONG + "\n\n```\nmake install\n```\n\n## Use\n\n" + LONG + "\n",
        encoding="utf-8",
    )
    settings = Settings(data_dir=tmp_path / "kb")
    first = build_sections("guide", parse_file(p, settings), min_chars=SMALL)
    second = build_sections("guide", parse_file(p, settings), min_chars=SMALL)
    assert len(first) == 2
    assert [s.section_id for s in first] == [s.section_id for s in second]
    assert first[0].heading_path == ("Guide",)  # the tiny intro joined its first child: their common ancestor
    assert first[0].headings == ("Guide", "Install")
    assert first[1].heading_path == ("Guide", "Use")


@pytest.mark.parametrize("min_chars", [0, 200, 10_000])
def test_every_block_kept_once_in_order(min_chars: int) -> None:
    parsed = doc(P("pre"), H("1. A", 1), P("a"), H("1.1. B", 2), P(), H("2. C", 1), P("c"), H("2.1. D", 2), P("d"))
    secs = build_sections("d", parsed, min_chars=min_chars)
    assert [b for s in secs for b in s.blocks] == list(parsed.blocks)
    assert [s.ordinal for s in secs] == list(range(len(secs)))


def test_default_min_chars_packs_fuller_sections() -> None:
    parsed = doc(H("A", 1), P(), H("B", 2), P(), H("C", 2), P())
    assert MIN_CHARS == 1500
    assert len(build_sections("d", parsed)) < len(build_sections("d", parsed, min_chars=SMALL))


def test_many_small_sections_merged_keep_only_the_shared_path() -> None:
    parsed = doc(
        H("Spec v1", 1),
        P("Intro."),
        H("1. Scope", 2),
        P("Scope text."),
        H("2. Performance", 2),
        P("p99 below 200 ms."),
        H("3. Retention", 2),
        P("Seven years."),
        H("3.1 Deletion", 3),
        P("30 days."),
    )
    (sec,) = build_sections("d", parsed)
    assert sec.heading_path == ("Spec v1",)  # not the last child's "3.1 Deletion"
    assert [b.text for b in sec.blocks if b.kind == "heading"][-1] == "3.1 Deletion"


def test_merging_never_crosses_a_chapter() -> None:
    parsed = doc(H("1. A", 1), P("tiny a"), H("2. B", 1), P("tiny b"), H("2.1 C", 2), P("tiny c"))
    secs = build_sections("d", parsed)
    assert [s.heading_path for s in secs] == [("1. A",), ("2. B",)]
    assert secs[1].headings == ("2. B", "2.1 C")


def test_merged_siblings_take_their_parent_not_the_first_heading() -> None:
    parsed = doc(H("5 Files", 1), P(), H("5.1 Purpose", 2), P("small"), H("5.2 Layout", 2), P("small"))
    (sec,) = build_sections("d", parsed, min_chars=SMALL)
    assert sec.heading_path == ("5 Files",)
    assert sec.headings == ("5 Files", "5.1 Purpose", "5.2 Layout")


def test_merging_is_bounded_on_many_tiny_sections() -> None:
    blocks = [H("Root", 1)] + [b for i in range(3000) for b in (H(f"1.{i} S", 2), P("x"))]
    secs = build_sections("d", doc(*blocks))
    assert [len(s.headings) for s in secs] == [1501, 1500]
    assert all(s.heading_path == ("Root",) for s in secs)
