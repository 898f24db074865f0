"""What a format declares: its name, extensions, a content sniff on the file's first bytes, its parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kb.settings import Settings
from kb.types import ParsedDocument

HEAD_BYTES = 8192  # how much of a file `sniff` sees


@dataclass(frozen=True)
class Mismatch:
    """Why a file's content is not its declared format: `problem` follows the file name in a message."""

    problem: str  # "is not a PDF (no %PDF- header)"
    hint: str


Sniff = Callable[[bytes], Mismatch | None]
Parse = Callable[[Path, Settings], ParsedDocument]


@dataclass(frozen=True)
class Format:
    """One registered format. `parse` may raise any `KbError` for bad input; `sniff` must be cheap and pure
    (it runs on uploads before anything is stored) and only sees the first `HEAD_BYTES`."""

    name: str  # stored as the document's format ("pdf", "docx", ...)
    label: str  # for people ("PDF", "Word document")
    extensions: tuple[str, ...]  # lower-case, with the dot
    sniff: Sniff
    parse: Parse
    family: str = ""  # the module that holds it ("pdf", "office", "markup", "text"), for docs and checks


def looks_pdf(head: bytes) -> bool:
    """A PDF header at the start, or within the first KiB (some writers put junk before it)."""
    return head.lstrip()[:5] == b"%PDF-" or b"%PDF-" in head[:1024]


def looks_zip(head: bytes) -> bool:
    return head[:4] == b"PK\x03\x04"


def sniff_text(head: bytes) -> Mismatch | None:
    """A text format: no PDF, no zip, no NUL bytes (UTF-16 with a BOM excepted)."""
    utf16 = head[:2] in (b"\xff\xfe", b"\xfe\xff")
    is_pdf, is_zip = looks_pdf(head), looks_zip(head)
    if is_pdf or is_zip or (b"\x00" in head and not utf16):
        kind = "a PDF" if is_pdf else "a zip/Office file" if is_zip else "binary data"
        return Mismatch(f"has a text extension but contains {kind}", "rename it to its real type or re-export as text")
    return None
