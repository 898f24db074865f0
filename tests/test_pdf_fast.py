"""The fast text-PDF path on real PDFs built with reportlab/pypdf: outline-driven sections, clean text,
tables, and bad input (encrypted, broken outline, no pages, scanned pages mixed with text pages)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.formats import parse_file
from ingest.sections import build_sections
from kb.errors import CorruptDocumentError
from kb.settings import Settings
from kb.types import Block

pytest.importorskip("reportlab")

BODY = (
    "The operator checks every gauge before the shift starts and writes the reading into the log book, "
    "so that the next shift can compare the values and see a slow drift before it becomes a failure."
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "kb")


def _lines(c: object, y: float, text: str, width: int = 90) -> float:
    """Draw `text` wrapped at `width` characters from height y down; returns the next y."""
    words, line = text.split(), ""
    for w in words:
        if len(line) + len(w) + 1 > width:
            c.drawString(72, y, line)  # type: ignore[attr-defined]
            y -= 14
            line = w
        else:
            line = f"{line} {w}".strip()
    if line:
        c.drawString(72, y, line)  # type: ignore[attr-defined]
        y -= 14
    return y - 8


def _manual(path: Path, *, outline: bool = True) -> None:
    """A 6-page manual: contents page, running header and footer, plain-font headings named by the
    outline, a ruled table, a footnote and a hyphenated line end."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Plant Operations Manual")
    chapters = [
        ("Safety", ["Protective equipment", "Lockout procedure"]),
        ("Maintenance", ["Daily checks", "Pump service"]),
    ]

    def furniture(n: int) -> None:
        c.setFont("Helvetica", 8)
        c.drawString(72, 810, "Plant Operations Manual - rev 7")
        c.drawString(290, 30, f"Page {n}")

    # page 1: contents with dot leaders
    furniture(1)
    c.setFont("Helvetica-Bold", 14)
    c.drawString(72, 760, "Contents")
    c.setFont("Helvetica", 10)
    y = 730
    page = 2
    for ch, subs in chapters:
        for t in [ch, *subs]:
            c.drawString(72, y, f"{t} " + ". " * 30 + f" {page}")
            y -= 16
        page += 2
    c.showPage()
    n = 2
    for _ci, (ch, subs) in enumerate(chapters, start=1):
        for si, sub in enumerate(subs):
            furniture(n)
            key = f"p{n}"
            c.bookmarkPage(key + "c")  # one destination per entry: reportlab keys entries by destination
            c.bookmarkPage(key + "s")
            y = 760
            c.setFont("Helvetica", 11)  # headings in the body font: only the outline tells them apart
            if si == 0:
                c.drawString(72, y, ch)
                if outline:
                    c.addOutlineEntry(ch, key + "c", level=0)
                y -= 24
            c.drawString(72, y, sub)
            if outline:
                c.addOutlineEntry(sub, key + "s", level=1)
            y -= 20
            c.setFont("Helvetica", 10)
            y = _lines(c, y, f"{sub}: {BODY}")
            if ch == "Safety" and si == 1:
                c.drawString(72, y, "Each lock carries the name of its owner and is removed only by the main-")
                c.drawString(72, y - 14, "tenance lead after the check.")
                c.setFont("Helvetica", 6)
                c.drawString(398, y - 10, "1")
                c.setFont("Helvetica", 8)
                c.drawString(72, 60, "1 Contractors use the red locks issued at the gate.")
                c.setFont("Helvetica", 10)
                y -= 40
            if ch == "Maintenance" and si == 1:
                rows = [
                    ("Pump", "Interval", "Grease"),
                    ("P-101", "Monthly", "Lithium EP2"),
                    ("P-205", "Weekly", "Calcium"),
                ]
                top = y
                for r, row in enumerate(rows):
                    for col, cell in enumerate(row):
                        c.drawString(80 + col * 120, top - 14 - r * 20, cell)
                for r in range(len(rows) + 1):
                    c.line(72, top - r * 20, 432, top - r * 20)
                for col in range(4):
                    c.line(72 + col * 120, top, 72 + col * 120, top - len(rows) * 20)
                y = top - len(rows) * 20 - 20
                y = _lines(c, y, "Record each service in the maintenance log.")
            c.showPage()
            n += 1
    c.save()


def _kinds(blocks: tuple[Block, ...], kind: str) -> list[Block]:
    return [b for b in blocks if b.kind == kind]


def test_outline_gives_the_section_tree(tmp_path: Path, settings: Settings) -> None:
    p = tmp_path / "manual.pdf"
    _manual(p)
    doc = parse_file(p, settings)
    assert doc.title == "Plant Operations Manual" and doc.pages == 5
    heads = [(h.text, h.level, h.page) for h in _kinds(doc.blocks, "heading") if h.text != "Contents"]
    assert heads == [
        ("Safety", 1, 2),
        ("Protective equipment", 2, 2),
        ("Lockout procedure", 2, 3),
        ("Maintenance", 1, 4),
        ("Daily checks", 2, 4),
        ("Pump service", 2, 5),
    ]
    secs = build_sections("manual", doc)
    for s in secs:
        assert s.headings, s.heading_path
        assert s.heading_path[0] in ("Contents", "Safety", "Maintenance")  # merged only within a chapter
    named = {h for s in secs for h in (*s.heading_path, *s.headings)}
    assert {"Safety", "Lockout procedure", "Maintenance", "Pump service"} <= named


def test_clean_text_furniture_footnotes_hyphens_contents(tmp_path: Path, settings: Settings) -> None:
    p = tmp_path / "manual.pdf"
    _manual(p)
    doc = parse_file(p, settings)
    text = "\n".join(b.plain_text() for b in doc.blocks)
    assert "rev 7" not in text and "Page 3" not in text  # running header and footer
    assert "maintenance lead" in text  # "main-" + "tenance" rejoined
    assert ". . ." not in text  # no dot leaders
    contents = [b for b in doc.blocks if b.page == 1]
    assert contents[0].kind == "heading" and contents[0].text == "Contents"
    assert "Lockout procedure (p. 2)" in [b.text for b in contents]
    # the footnote marker is detached from the sentence and the note closes its section
    body = next(b.text for b in doc.blocks if "Each lock" in b.text)
    assert body.endswith("after the check. ¹") and "Contractors" not in body
    note = next(i for i, b in enumerate(doc.blocks) if b.text.startswith("¹ Contractors"))
    assert doc.blocks[note + 1].text == "Maintenance"


def test_ruled_table_becomes_a_table_block(tmp_path: Path, settings: Settings) -> None:
    p = tmp_path / "manual.pdf"
    _manual(p)
    doc = parse_file(p, settings)
    (table,) = _kinds(doc.blocks, "table")
    assert table.header and table.page == 5
    assert table.rows == (
        ("Pump", "Interval", "Grease"),
        ("P-101", "Monthly", "Lithium EP2"),
        ("P-205", "Weekly", "Calcium"),
    )
    assert not any("P-101" in b.text for b in doc.blocks if b.kind != "table")


def test_broken_outline_entries_are_ignored_with_a_warning(tmp_path: Path, settings: Settings) -> None:
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, NameObject, NullObject

    src = tmp_path / "manual.pdf"
    _manual(src)
    w = PdfWriter(clone_from=PdfReader(str(src)))
    root = w._root_object["/Outlines"].get_object()  # type: ignore[index]
    first = root["/First"].get_object()
    first[NameObject("/Dest")] = ArrayObject([NullObject(), NameObject("/Fit")])  # "Safety" points nowhere
    first.pop("/A", None)
    p = tmp_path / "broken.pdf"
    with p.open("wb") as f:
        w.write(f)
    doc = parse_file(p, settings)
    assert any("outline" in x and "no page" in x for x in doc.warnings)
    heads = [h.text for h in _kinds(doc.blocks, "heading")]
    assert "Lockout procedure" in heads and "Pump service" in heads


def test_encrypted_pdf_is_a_clear_error(tmp_path: Path, settings: Settings) -> None:
    from pypdf import PdfReader, PdfWriter

    src = tmp_path / "manual.pdf"
    _manual(src)
    w = PdfWriter(clone_from=PdfReader(str(src)))
    w.encrypt("s3cret", algorithm="AES-256")
    p = tmp_path / "locked.pdf"
    with p.open("wb") as f:
        w.write(f)
    with pytest.raises(CorruptDocumentError) as info:
        parse_file(p, settings)
    assert "password" in info.value.message and "qpdf" in info.value.hint


def test_pdf_without_pages_is_a_clear_error(tmp_path: Path, settings: Settings) -> None:
    from pypdf import PdfWriter

    p = tmp_path / "nopages.pdf"
    with p.open("wb") as f:
        PdfWriter().write(f)
    with pytest.raises(CorruptDocumentError) as info:
        parse_file(p, settings)
    assert "no pages" in info.value.message


def _mixed(tmp_path: Path) -> Path:
    """Page 1 a text page, page 2 a scanned image of text."""
    from PIL import Image, ImageDraw, ImageFont
    from pypdf import PdfReader, PdfWriter
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    text = tmp_path / "text.pdf"
    c = canvas.Canvas(str(text), pagesize=A4)
    c.setFont("Helvetica-Bold", 16)
    c.drawString(72, 780, "1. Restore Procedure")
    c.setFont("Helvetica", 11)
    _lines(c, 750, BODY)
    c.showPage()
    c.save()
    img = Image.new("RGB", (1240, 600), "white")
    draw = ImageDraw.Draw(img)
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.truetype("DejaVuSans.ttf", 40)
    except OSError:
        font = ImageFont.load_default(size=40)
    draw.text((60, 200), "Restore the archive before starting the server.", fill="black", font=font)
    scan = tmp_path / "scan.pdf"
    img.save(scan, "PDF", resolution=150)
    w = PdfWriter()
    for part in (text, scan):
        for page in PdfReader(str(part)).pages:
            w.add_page(page)
    out = tmp_path / "mixed.pdf"
    with out.open("wb") as f:
        w.write(f)
    return out


def test_mixed_pdf_ocrs_only_the_scanned_page(tmp_path: Path, settings: Settings) -> None:
    if shutil.which("tesseract") is None or shutil.which("pdftoppm") is None:
        pytest.skip("tesseract-ocr / poppler-utils not installed")
    doc = parse_file(_mixed(tmp_path), settings)
    assert doc.ocr_used and doc.pages == 2
    assert any("OCRed" in w and "2" in w for w in doc.warnings)
    page1 = " ".join(b.text for b in doc.blocks if b.page == 1)
    page2 = " ".join(b.text for b in doc.blocks if b.page == 2).casefold()
    assert "slow drift" in page1 and "restore the archive" in page2
    assert [b.text for b in doc.blocks if b.kind == "heading"] == ["1. Restore Procedure"]


def test_mixed_pdf_without_ocr_keeps_the_text_pages_and_says_so(tmp_path: Path) -> None:
    doc = parse_file(_mixed(tmp_path), Settings(data_dir=tmp_path / "kb", ocr="never"))
    assert not doc.ocr_used
    assert any("not OCRed" in w and "2" in w for w in doc.warnings)
    assert all(b.page == 1 for b in doc.blocks)


def test_kb_show_outline_and_json(tmp_path: Path) -> None:
    """`kb show` reads the catalog: the outline view and the JSON shape of the issue."""
    from kb.catalog import DocumentRecord, ImageRecord, SectionRecord
    from kb.cli.show import document_json, find_document, outline_lines

    def sec(path: list[str], heads: list[str], pages: tuple[int, int]) -> SectionRecord:
        return SectionRecord(
            section_id="s" + str(pages[0]),
            ordinal=pages[0],
            heading_path=path,
            headings=heads,
            page_start=pages[0],
            page_end=pages[1],
            kinds=["paragraph"],
            text="x" * 100,
            content_hash="h",
            text_tokens=20,
            images=[ImageRecord(key="k", width=812, height=280, visual_tokens=290)],
        )

    rec = DocumentRecord(
        doc_id="manual.pdf",
        title="Manual",
        source_name="manual.pdf",
        source_path=str(tmp_path / "manual.pdf"),
        format="pdf",
        file_sha256="0",
        file_bytes=1,
        pages=5,
        render_fingerprint="f",
        ingested_at="now",
        sections=[
            sec(["Safety"], ["Safety", "Protective equipment"], (2, 2)),
            sec(["Safety", "Lockout"], ["Lockout"], (3, 4)),
        ],
    )
    lines = outline_lines(rec)
    assert lines[0].startswith("p.2 ") and lines[0].endswith("Safety")
    assert "↳ Protective equipment" in lines[1]
    assert lines[2].startswith("p.3-4") and lines[2].endswith("  Lockout")
    js = document_json(rec)
    assert {"doc", "title", "format", "pages", "sections"} <= set(js)
    s0 = js["sections"][0]
    assert (
        s0["pages"] == [2, 2] and s0["headings"] == ["Safety", "Protective equipment"] and s0["kinds"] == ["paragraph"]
    )
    assert s0["images"] == [{"key": "k", "width": 812, "height": 280, "visual_tokens": 290}]
    assert find_document([rec], "manual.pdf") is rec and find_document([rec], "other") is None


def test_contents_pages_are_flagged_and_kept_out_of_text_matching(tmp_path: Path, settings: Settings) -> None:
    from kb.catalog import SectionRecord
    from kb.indexer import passage_text

    p = tmp_path / "manual.pdf"
    _manual(p)
    doc = parse_file(p, settings)
    assert doc.toc_pages == (1,)
    secs = build_sections("manual", doc)
    assert [s.role for s in secs if s.page_start == 1] == ["toc"]
    assert all(s.role == "body" for s in secs if s.page_start != 1)
    toc = next(s for s in secs if s.role == "toc")
    rec = SectionRecord(
        section_id="t",
        ordinal=0,
        heading_path=list(toc.heading_path),
        kinds=[],
        text=toc.text,
        content_hash="h",
        text_tokens=1,
        images=[],
        role="toc",
    )
    assert passage_text("Manual", rec) == "Manual › Contents"  # its listed titles do not match queries
