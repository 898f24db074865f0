"""The formats registry: the built-ins are listed once for everyone, and a format registered from outside the
core (here, from this test) works end to end: folder walk, upload check, sniffing, ingest, search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import formats
from ingest.formats import Format, Mismatch
from kb.errors import CorruptDocumentError, UnsupportedFormatError
from kb.service import KnowledgeBase
from kb.settings import Settings
from kb.types import Block, ParsedDocument
from kb.uploads import check_type

MAGIC = b"TODO/1\n"


def sniff_todo(head: bytes) -> Mismatch | None:
    return None if head.startswith(MAGIC) else Mismatch("is not a todo list (no TODO/1 line)", "start it with TODO/1")


def parse_todo(path: Path, settings: Settings) -> ParsedDocument:
    """Line by line: "# " starts a heading, "- " a list item, anything else is a paragraph."""
    blocks: list[Block] = []
    for line in path.read_text("utf-8").splitlines()[1:]:
        if line.startswith("# "):
            blocks.append(Block("heading", line[2:].strip(), level=1))
        elif line.startswith("- "):
            blocks.append(Block("list_item", line[2:].strip(), marker="•"))
        elif line.strip():
            blocks.append(Block("paragraph", line.strip()))
    title = next((b.text for b in blocks if b.kind == "heading"), path.stem)
    return ParsedDocument(title=title, format="todo", blocks=tuple(blocks))


TODO = Format(name="todo", label="Todo list", extensions=(".todo",), sniff=sniff_todo, parse=parse_todo)

PLAN = (
    MAGIC.decode()
    + """# Lighthouse maintenance plan
The lamp room lens needs polishing every quarter by the keeper on duty.
- Replace the foghorn diaphragm before the storm season
- Paint the gallery railing with marine enamel
# Supplies
Order paraffin, brass polish and spare mantles from the harbour chandler.
"""
)


@pytest.fixture()
def todo_format() -> Iterator[Format]:
    formats.register(TODO)
    try:
        yield TODO
    finally:
        formats.unregister("todo")


def test_builtins_are_one_table() -> None:
    names = {f.name for f in formats.formats()}
    assert {"pdf", "docx", "pptx", "md", "html", "txt"} <= names
    exts = formats.supported_extensions()
    assert exts == sorted(exts) and ".pdf" in exts and ".htm" in exts and ".markdown" in exts
    assert formats.format_for("Report.PDF") is formats.format_for("x.pdf")
    assert formats.format_for("notes.xyz") is None
    # the sniff is the same check for ingest and uploads
    mismatch = formats.sniff("a.pdf", b"PK\x03\x04 a zip")
    assert mismatch is not None and "not a PDF" in mismatch.problem
    assert formats.sniff("a.docx", b"PK\x03\x04...") is None
    assert formats.sniff("a.md", b"\x00\x01binary") is not None


def test_register_refuses_a_taken_extension_or_a_bad_one() -> None:
    with pytest.raises(ValueError, match="already registered"):
        formats.register(Format("mypdf", "My PDF", (".pdf",), sniff_todo, parse_todo))
    with pytest.raises(ValueError, match="lower-case"):
        formats.register(Format("bad", "Bad", ("TODO",), sniff_todo, parse_todo))


def test_a_format_registered_from_outside_works_end_to_end(
    todo_format: Format, kb_settings: Settings, shared_embedders: object, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "plan.todo").write_text(PLAN)
    (folder / "fake.todo").write_text("just text without the magic line\n")

    # the upload check and the admin page read the same table
    check_type("plan.todo", PLAN.encode())
    with pytest.raises(CorruptDocumentError, match="not a todo list"):
        check_type("fake.todo", b"just text")
    assert ".todo" in formats.supported_extensions()

    with KnowledgeBase(kb_settings, embedders=shared_embedders) as kb:  # type: ignore[arg-type]
        results = {r.path.name: r for r in kb.ingest([folder])}  # the folder walk picks .todo files up
        assert set(results) == {"plan.todo", "fake.todo"}
        assert results["plan.todo"].status == "ingested", results["plan.todo"].error
        bad = results["fake.todo"]
        assert bad.status == "failed" and bad.error and "not a todo list" in bad.error and "TODO/1" in bad.error
        rec = kb.get("plan.todo")
        assert rec.title == "Lighthouse maintenance plan" and rec.format == "todo"
        assert any("foghorn diaphragm" in s.text for s in rec.sections)
        hits = kb.search("when is the foghorn diaphragm replaced")
        assert hits and hits[0].doc == "plan.todo"


def test_unregistered_format_is_unsupported_again(tmp_path: Path, kb_settings: Settings) -> None:
    formats.register(TODO)
    formats.unregister("todo")
    p = tmp_path / "plan.todo"
    p.write_text(PLAN)
    with pytest.raises(UnsupportedFormatError, match=r"supported: \.docx"):
        formats.parse_file(p, kb_settings)
