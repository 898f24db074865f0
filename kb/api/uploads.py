"""Upload checks before anything is stored: safe names, size and count limits, content that matches the type."""

from __future__ import annotations

import re
import unicodedata
import zipfile
from html.parser import HTMLParser
from pathlib import Path

from fastapi import HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from ingest.formats import format_for, supported_extensions

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ZIP_FORMATS = {"docx", "pptx"}
CHUNK = 1 << 20
MAX_HTML_DEPTH = 512
_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
    "p",
    "li",
}


class _Depth(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth = self.max = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in _VOID:
            self.depth += 1
            self.max = max(self.max, self.depth)

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID:
            self.depth = max(0, self.depth - 1)


def _html_depth(text: str) -> int:
    p = _Depth()
    p.feed(text)
    p.close()
    return p.max


def safe_name(raw: str | None) -> str:
    """The last path component, NFKC-folded (confusables such as fullwidth letters and slashes become
    ASCII first), reduced to [A-Za-z0-9._-]; never empty, never hidden, never a path."""
    name = unicodedata.normalize("NFKC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = _UNSAFE.sub("-", stem).strip("-.")[:60] or "upload"
    ext = _UNSAFE.sub("", ext)[:10].lower()
    return f"{stem}.{ext}" if ext else stem


def check_type(name: str, head: bytes) -> None:
    """The name's registered format, and content whose first bytes fit it (the format's own sniff)."""
    fmt = format_for(name)
    if fmt is None:
        raise HTTPException(415, f"unsupported file type for {name!r}; supported: {', '.join(supported_extensions())}")
    if not head:
        raise HTTPException(422, f"{name!r} is empty")
    mismatch = fmt.sniff(head)
    if mismatch is not None:
        raise HTTPException(422, f"{name!r} {mismatch.problem}")
    if fmt.family in ("markup", "text") and not head.strip():
        raise HTTPException(422, f"{name!r} has no text")


def check_content(path: Path, *, max_pages: int, max_unpacked_bytes: int) -> None:
    """Checks that need the whole file: PDF page count, zip containers' unpacked size (zip bombs)."""
    fmt = format_for(path)
    name = fmt.name if fmt else None
    if name == "pdf":
        from pypdf import PdfReader

        try:
            pages = len(PdfReader(path).pages)
        except Exception:  # any parser failure means the client sent no readable PDF
            raise HTTPException(422, f"{path.name!r} is not a readable PDF") from None
        if pages > max_pages:
            raise HTTPException(413, f"{path.name!r} has {pages} pages; the limit is {max_pages}")
    elif name == "html":
        depth = _html_depth(path.read_text("utf-8", errors="replace"))
        if depth > MAX_HTML_DEPTH:
            raise HTTPException(422, f"{path.name!r} nests HTML elements deeper than {MAX_HTML_DEPTH} levels")
    elif name in _ZIP_FORMATS:
        try:
            with zipfile.ZipFile(path) as z:
                unpacked = sum(i.file_size for i in z.infolist())
                entries = len(z.infolist())
        except (zipfile.BadZipFile, OSError):
            raise HTTPException(422, f"{path.name!r} is not a readable {name.upper()} file") from None
        if unpacked > max_unpacked_bytes or entries > 10_000:
            raise HTTPException(413, f"{path.name!r} unpacks to more than the {max_unpacked_bytes / 1e6:g} MB limit")


async def save(upload: UploadFile, dest: Path, max_bytes: int, *, max_pages: int, max_unpacked_bytes: int) -> int:
    """Stream one upload to `dest`, refusing it once it passes `max_bytes`; returns its size."""
    size = 0
    head = b""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with dest.open("wb") as f:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise HTTPException(413, f"{dest.name!r} is larger than the {max_bytes / 1e6:g} MB upload limit")
                if len(head) < 8192:
                    head += chunk[: 8192 - len(head)]
                f.write(chunk)
        check_type(dest.name, head)
        # parsing page trees, zip directories and HTML is blocking work: off the event loop
        await run_in_threadpool(check_content, dest, max_pages=max_pages, max_unpacked_bytes=max_unpacked_bytes)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return size
