"""parse_file on small fixtures generated here, one per format, plus the error cases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.formats import parse_file
from kb.errors import CorruptDocumentError, EmptyDocumentError, FileTooLargeError, UnsupportedFormatError
from kb.settings import Settings
from kb.types import Block, ParsedDocument

HTML = """<!DOCTYPE html>
<html><head><title>Backup Guide</title></head><body>
<h1>1. Backup Guide</h1>
<p>This guide explains   how to back up
   the database.</p>
<h2>1.1. Steps</h2>
<ol>
  <li><p>Stop the server.</p></li>
  <li>Copy the files:
    <ul><li>the data directory</li><li>the WAL archive</li></ul>
  </li>
</ol>
<pre>tar -cf backup.tar /data
gzip backup.tar</pre>
<table><tr><th>Option</th><th>Meaning</th></tr><tr><td>-c</td><td>create</td></tr></table>
</body></html>
"""

MD = """# Restore Manual

Restoring needs a base backup and the archived WAL files.

## Commands

- first item
- second item
  - nested item

```sql
SELECT 1;
SELECT 2;
```

| Setting | Value |
|---------|-------|
| mode    | on    |
"""

TXT = """26.2. File System Level Backup

An alternative backup strategy is to directly copy the files that PostgreSQL
uses to store the data in the database; for example:

    tar -cf backup.tar /usr/local/pgsql/data

There are two restrictions, however:

1.  The database server must be shut down in order to get a usable backup.

2.  File system backups only work for complete restoration.
"""


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(data_dir=Path("/nonexistent-kb-data"))


def _write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data, encoding="utf-8")
    return p


def _kinds(doc: ParsedDocument, kind: str) -> list[Block]:
    return [b for b in doc.blocks if b.kind == kind]


def test_html_structure(tmp_path: Path, settings: Settings) -> None:
    doc = parse_file(_write(tmp_path, "guide.html", HTML), settings)
    assert doc.title == "Backup Guide"
    assert doc.format == "html"
    heads = _kinds(doc, "heading")
    assert [(h.text, h.level) for h in heads] == [("1. Backup Guide", 1), ("1.1. Steps", 2)]
    assert _kinds(doc, "paragraph")[0].text == "This guide explains how to back up the database."
    items = [(b.text, b.level, b.marker) for b in _kinds(doc, "list_item")]
    assert ("Stop the server.", 0, "1.") in items
    assert ("Copy the files:", 0, "2.") in items
    assert ("the data directory", 1, "•") in items
    (code,) = _kinds(doc, "code")
    assert code.text == "tar -cf backup.tar /data\ngzip backup.tar"
    (table,) = _kinds(doc, "table")
    assert table.header and table.rows == (("Option", "Meaning"), ("-c", "create"))
    assert all(b.page is None for b in doc.blocks)


def test_markdown_structure(tmp_path: Path, settings: Settings) -> None:
    doc = parse_file(_write(tmp_path, "manual.md", MD), settings)
    assert doc.title == "Restore Manual"
    assert [(h.text, h.level) for h in _kinds(doc, "heading")] == [("Restore Manual", 1), ("Commands", 2)]
    items = [(b.text, b.level) for b in _kinds(doc, "list_item")]
    assert items == [("first item", 0), ("second item", 0), ("nested item", 1)]
    assert _kinds(doc, "code")[0].text == "SELECT 1;\nSELECT 2;"
    assert _kinds(doc, "table")[0].rows == (("Setting", "Value"), ("mode", "on"))


def test_markdown_commonmark_nesting_and_continuations(tmp_path: Path, settings: Settings) -> None:
    md = "# Steps\n\n1. Open a ticket.\n2. Page on-call.\n   - For SEV1, page the commander.\n3. Start a bridge.\n"
    doc = parse_file(_write(tmp_path, "steps.md", md), settings)
    items = [(b.text, b.level, b.marker) for b in _kinds(doc, "list_item")]
    assert items == [
        ("Open a ticket.", 0, "1."),
        ("Page on-call.", 0, "2."),
        ("For SEV1, page the commander.", 1, "•"),
        ("Start a bridge.", 0, "3."),
    ]


def test_txt_structure(tmp_path: Path, settings: Settings) -> None:
    doc = parse_file(_write(tmp_path, "backup.txt", TXT), settings)
    assert doc.title == "26.2. File System Level Backup"
    assert _kinds(doc, "heading")[0].text == "26.2. File System Level Backup"
    assert _kinds(doc, "code")[0].text == "tar -cf backup.tar /usr/local/pgsql/data"
    assert [b.marker for b in _kinds(doc, "list_item")] == ["1.", "2."]
    para = _kinds(doc, "paragraph")[0].text
    assert "PostgreSQL uses to store" in para  # wrapped lines joined with one space


def test_docx_structure(tmp_path: Path, settings: Settings) -> None:
    docx = pytest.importorskip("docx")
    from docx.shared import Pt

    d = docx.Document()
    d.core_properties.title = "Log Maintenance"
    d.add_heading("Log File Maintenance", level=1)
    d.add_paragraph("It is a good idea to save the database server's log output somewhere.")
    d.add_heading("Rotation", level=2)
    d.add_paragraph("Use the built-in rotation facility.", style="List Bullet")
    d.add_paragraph("Or an external program.", style="List Bullet")
    d.add_paragraph("Stop the server.", style="List Number")
    d.add_paragraph("Rotate the files.", style="List Number")
    for line in ("pg_ctl start | rotatelogs /var/log/pgsql_log 86400", "pg_ctl logrotate"):
        run = d.add_paragraph().add_run(line)
        run.font.name = "Courier New"
        run.font.size = Pt(9)
    t = d.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "Name", (0, 1): "Default", (1, 0): "log_rotation_age", (1, 1): "1d"}.items():
        t.cell(r, c).text = text
    p = tmp_path / "logs.docx"
    d.save(str(p))

    doc = parse_file(p, settings)
    assert doc.title == "Log Maintenance"
    assert [(h.text, h.level) for h in _kinds(doc, "heading")] == [("Log File Maintenance", 1), ("Rotation", 2)]
    assert [(b.text, b.marker) for b in _kinds(doc, "list_item")] == [
        ("Use the built-in rotation facility.", "•"),
        ("Or an external program.", "•"),
        ("Stop the server.", "1."),
        ("Rotate the files.", "2."),
    ]
    assert [b.text for b in _kinds(doc, "code")] == [
        "pg_ctl start | rotatelogs /var/log/pgsql_log 86400\npg_ctl logrotate"
    ]
    assert _kinds(doc, "table")[0].rows == (("Name", "Default"), ("log_rotation_age", "1d"))


def test_pptx_slides(tmp_path: Path, settings: Settings) -> None:
    pptx = pytest.importorskip("pptx")
    prs = pptx.Presentation()
    s1 = prs.slides.add_slide(prs.slide_layouts[1])
    s1.shapes.title.text = "Quarterly Backup Review"
    tf = s1.placeholders[1].text_frame
    tf.text = "All nightly backups completed"
    sub = tf.add_paragraph()
    sub.text = "Restore drill passed"
    sub.level = 1
    s2 = prs.slides.add_slide(prs.slide_layouts[1])
    s2.shapes.title.text = "Next Steps"
    s2.placeholders[1].text_frame.text = "Automate the restore drill"
    p = tmp_path / "review.pptx"
    prs.save(str(p))

    doc = parse_file(p, settings)
    assert doc.title == "Quarterly Backup Review"
    assert [(h.text, h.page) for h in _kinds(doc, "heading")] == [("Quarterly Backup Review", 1), ("Next Steps", 2)]
    items = [(b.text, b.level, b.page) for b in _kinds(doc, "list_item")]
    assert items == [
        ("All nightly backups completed", 0, 1),
        ("Restore drill passed", 1, 1),
        ("Automate the restore drill", 0, 2),
    ]


def _make_pdf(path: Path) -> None:
    pytest.importorskip("reportlab")
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Archiving Handbook")
    c.setFont("Helvetica-Bold", 16)
    c.drawString(72, 780, "1. Continuous Archiving")
    c.setFont("Helvetica", 11)
    c.drawString(72, 750, "The server writes every change to the write ahead log before the data files are")
    c.drawString(72, 735, "changed, so a base backup plus the archived log can restore the database.")
    c.setFont("Helvetica-Bold", 13)
    c.drawString(72, 700, "1.1. Setting Up WAL Archiving")
    c.setFont("Helvetica", 11)
    c.drawString(72, 680, "To enable archiving, set the configuration parameter archive_mode to on.")
    c.setFont("Courier", 10)
    c.drawString(72, 655, "archive_mode = on")
    c.drawString(72, 643, "archive_command = 'cp %p /archive/%f'")
    c.showPage()
    c.setFont("Helvetica-Bold", 13)
    c.drawString(72, 780, "1.2. Making a Base Backup")
    c.setFont("Helvetica", 11)
    c.drawString(72, 750, "The easiest way to perform a base backup is to use the pg_basebackup tool.")
    c.showPage()
    c.save()


def test_pdf_pages_headings_code(tmp_path: Path, settings: Settings) -> None:
    p = tmp_path / "archiving.pdf"
    _make_pdf(p)
    doc = parse_file(p, settings)
    assert doc.format == "pdf" and doc.pages == 2 and not doc.ocr_used
    assert doc.title == "Archiving Handbook"
    heads = [(h.text, h.level, h.page) for h in _kinds(doc, "heading")]
    assert heads == [
        ("1. Continuous Archiving", 1, 1),
        ("1.1. Setting Up WAL Archiving", 2, 1),
        ("1.2. Making a Base Backup", 2, 2),
    ]
    codes = _kinds(doc, "code")
    assert codes and codes[0].text == "archive_mode = on\narchive_command = 'cp %p /archive/%f'"
    assert any(b.page == 2 and "pg_basebackup" in b.text for b in doc.blocks)


def test_pdf_running_header_footer_dropped(tmp_path: Path, settings: Settings) -> None:
    pytest.importorskip("reportlab")
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    p = tmp_path / "sop.pdf"
    c = canvas.Canvas(str(p), pagesize=A4)
    for n in range(1, 4):
        c.setFont("Helvetica", 8)
        c.drawString(72, 810, "ACME Corp - SOP 12 - Confidential")
        c.drawString(280, 30, f"Page {n} of 3")
        c.setFont("Helvetica", 11)
        c.drawString(72, 700, f"Step {n}: the operator checks the pressure gauge and records the value in the log.")
        c.showPage()
    c.save()
    doc = parse_file(p, settings)
    texts = [b.text for b in doc.blocks]
    assert not any("Confidential" in t or t.startswith("Page ") for t in texts)
    assert [b.page for b in doc.blocks if b.text.startswith("Step")] == [1, 2, 3]


def _make_scanned_pdf(path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (1240, 500), "white")
    draw = ImageDraw.Draw(img)
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.truetype("DejaVuSans.ttf", 40)
    except OSError:
        font = ImageFont.load_default(size=40)
    draw.text((60, 80), "Scanned Procedure", fill="black", font=font)
    draw.text((60, 200), "Restore the archive before starting the server.", fill="black", font=font)
    img.save(path, "PDF", resolution=150)


def test_scanned_pdf_is_ocred(tmp_path: Path, settings: Settings) -> None:
    if shutil.which("tesseract") is None or shutil.which("pdftoppm") is None:
        pytest.skip("tesseract-ocr / poppler-utils not installed")
    p = tmp_path / "scan.pdf"
    _make_scanned_pdf(p)
    doc = parse_file(p, settings)
    assert doc.ocr_used
    text = " ".join(b.text for b in doc.blocks).casefold()
    assert "restore the archive" in text
    assert all(b.page == 1 for b in doc.blocks)


def test_scanned_pdf_without_ocr_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "scan.pdf"
    _make_scanned_pdf(p)
    with pytest.raises(EmptyDocumentError) as info:
        parse_file(p, Settings(data_dir=Path("/nonexistent-kb-data"), ocr="never"))
    assert "scanned" in info.value.message
    assert "tesseract-ocr" in info.value.hint and "poppler-utils" in info.value.hint


@pytest.mark.parametrize("name", ["empty.md", "empty.pdf", "empty.docx", "empty.txt"])
def test_zero_byte_file_is_empty(tmp_path: Path, settings: Settings, name: str) -> None:
    with pytest.raises(EmptyDocumentError, match="empty"):
        parse_file(_write(tmp_path, name, b""), settings)


@pytest.mark.parametrize("name", ["blank.txt", "blank.md", "blank.html"])
def test_whitespace_only_is_empty(tmp_path: Path, settings: Settings, name: str) -> None:
    with pytest.raises(EmptyDocumentError):
        parse_file(_write(tmp_path, name, "  \n\n\t  \n"), settings)


def test_html_without_text_is_empty(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(EmptyDocumentError, match="no text"):
        parse_file(_write(tmp_path, "nothing.html", "<html><body><div> </div></body></html>"), settings)


def test_unsupported_extension_lists_supported(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(UnsupportedFormatError) as info:
        parse_file(_write(tmp_path, "sheet.xlsx", b"PK\x03\x04junk"), settings)
    assert ".pdf" in info.value.hint and ".docx" in info.value.hint and ".md" in info.value.hint


def test_binary_renamed_pdf_is_corrupt(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(CorruptDocumentError, match="not a PDF"):
        parse_file(_write(tmp_path, "fake.pdf", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4), settings)


def test_text_renamed_pdf_is_corrupt(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(CorruptDocumentError, match="not a PDF"):
        parse_file(_write(tmp_path, "notes.pdf", "just some notes\n"), settings)


def test_truncated_pdf_is_corrupt_and_chained(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(CorruptDocumentError) as info:
        parse_file(_write(tmp_path, "broken.pdf", b"%PDF-1.7\n1 0 obj <<>> garbage without xref"), settings)
    assert info.value.hint


def test_pdf_renamed_txt_is_corrupt(tmp_path: Path, settings: Settings) -> None:
    p = tmp_path / "real.pdf"
    _make_pdf(p)
    with pytest.raises(CorruptDocumentError, match="contains a PDF"):
        parse_file(_write(tmp_path, "real.txt", p.read_bytes()), settings)


def test_corrupt_docx(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(CorruptDocumentError, match=r"not a \.docx"):
        parse_file(_write(tmp_path, "bad.docx", "plain text, not a zip"), settings)
    with pytest.raises(CorruptDocumentError):
        parse_file(_write(tmp_path, "trunc.docx", b"PK\x03\x04" + b"\x00" * 100), settings)


def test_oversized_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "big.txt", "word " * 300_000)  # ~1.5 MB
    with pytest.raises(FileTooLargeError) as info:
        parse_file(p, Settings(data_dir=Path("/nonexistent-kb-data"), max_file_mb=1))
    assert "1 MB" in info.value.message and "max_file_mb" in info.value.hint


def test_missing_file(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(CorruptDocumentError, match="cannot read"):
        parse_file(tmp_path / "missing.md", settings)


def test_txt_underlined_headings(tmp_path: Path, settings: Settings) -> None:
    txt = "Operations Manual\n=================\n\nIntro text here.\n\nStarting\n--------\n\nRun the start script.\n"
    doc = parse_file(_write(tmp_path, "ops.txt", txt), settings)
    assert [(h.text, h.level) for h in _kinds(doc, "heading")] == [("Operations Manual", 1), ("Starting", 2)]
    assert doc.title == "Operations Manual"


def test_utf16_text_is_not_binary(tmp_path: Path, settings: Settings) -> None:
    doc = parse_file(_write(tmp_path, "u16.txt", "Überblick: die Sicherung läuft nachts.\n".encode("utf-16")), settings)
    assert doc.blocks[0].text == "Überblick: die Sicherung läuft nachts."


def test_ligatures_folded_not_dehyphenated(tmp_path: Path, settings: Settings) -> None:
    doc = parse_file(_write(tmp_path, "lig.txt", "The ﬁle is self-contained and well-known.\n"), settings)
    assert doc.blocks[0].text == "The file is self-contained and well-known."


_NO_NETWORK = """
import json, socket, sys
from pathlib import Path
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network disabled in test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = refuse
from ingest.formats import parse_file
from kb.settings import Settings
settings = Settings(data_dir=Path("/nonexistent-kb-data"))
kinds = {}
for p in sys.argv[1:]:
    kinds[Path(p).suffix] = sorted({b.kind for b in parse_file(Path(p), settings).blocks})
print(json.dumps({"attempts": attempts, "kinds": kinds}))
"""


def test_parsing_is_offline(tmp_path: Path) -> None:
    """A fresh process with sockets disabled parses every text format: no model download, no telemetry."""
    files = [
        _write(tmp_path, "a.md", MD),
        _write(tmp_path, "a.html", HTML),
        _write(tmp_path, "a.txt", TXT),
    ]
    pdf = tmp_path / "a.pdf"
    _make_pdf(pdf)
    files.append(pdf)
    env = {k: v for k, v in os.environ.items() if k not in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS")}
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK, *map(str, files)],
        cwd=root,
        env={**env, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["attempts"] == []
    assert "paragraph" in result["kinds"][".md"] and "code" in result["kinds"][".pdf"]
    assert all("heading" in k for k in result["kinds"].values())
