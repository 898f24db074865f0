"""Uploaded files, from the API (`POST /v1/documents`) and the admin page alike: the one file name rule,
limits in one unit (bytes; a setting's MB is 10^6 bytes), content checks through the formats registry
(extension, magic bytes, PDF page count, zip bombs, HTML depth), staging and cleanup.

Everything here raises `KbError` subclasses with the file's name and never a server path, so each
front end only decides how to show the error (the API maps it to 413/415/422).

Layout: `<data_dir>/uploads/[<scope>/]<batch>/[<slot>/]<name>`. A staged file stays while it is the
source of a document (so "re-ingest" works); `discard` removes it and every folder it leaves empty.
"""

from __future__ import annotations

import shutil
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO

from ingest.formats import HEAD_BYTES, format_for, supported_extensions
from kb.errors import (
    CorruptDocumentError,
    EmptyDocumentError,
    FileTooLargeError,
    RejectedUploadError,
    TooManyFilesError,
    UnsupportedFormatError,
)
from kb.names import clean_file_name
from kb.settings import Settings, mb_bytes

UPLOADS_DIR = "uploads"
MAX_HTML_DEPTH = 512
MAX_ZIP_ENTRIES = 10_000
_ZIP_FORMATS = {"docx", "pptx"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_VOID |= {"p", "li"}  # closed implicitly often enough that counting them would overstate the depth


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may be, all in bytes (0 = no bound)."""

    max_bytes: int
    max_files: int = 0
    max_pages: int = 0
    max_unpacked_bytes: int = 0
    setting: str = "KB_MAX_FILE_MB"  # the setting that raises max_bytes, for the hint

    @classmethod
    def for_api(cls, s: Settings) -> UploadLimits:
        return cls(
            mb_bytes(s.api_max_upload_mb),
            s.api_max_files,
            s.api_max_pages,
            mb_bytes(s.api_max_unpacked_mb),
            setting="KB_API_MAX_UPLOAD_MB",
        )

    @classmethod
    def for_admin(cls, s: Settings) -> UploadLimits:
        return cls(mb_bytes(s.max_file_mb), setting="KB_MAX_FILE_MB")

    def check_count(self, n: int) -> None:
        if self.max_files and n > self.max_files:
            raise TooManyFilesError(f"at most {self.max_files} files per upload", "send the rest in another upload")

    def check_size(self, name: str, size: int) -> None:
        if size > self.max_bytes:
            raise FileTooLargeError(
                f"{name} is over the {self.max_bytes / 1e6:g} MB limit (the upload limit)",
                f"split the file or raise {self.setting}",
            )


# -- names ------------------------------------------------------------------------------------------------
def clean_name(raw: str | None) -> str:
    """THE file-name rule for uploads (kb.names.clean_file_name): the last path component; a canonical
    name (letters of any script, digits, `.`, `_`, `-`) is kept, any other is cleaned (NFKC-folded,
    control characters dropped, bounded) and gets a hash of the original name, so two different names
    never share a document id. Never empty, never hidden, never a path."""
    return clean_file_name(raw)


# -- content checks ---------------------------------------------------------------------------------------
def check_type(name: str, head: bytes) -> None:
    """The name's registered format, and first bytes that fit it (the format's own sniff)."""
    fmt = format_for(name)
    if fmt is None:
        raise UnsupportedFormatError(
            f"unsupported file type for {name!r}; supported: {', '.join(supported_extensions())}",
            "convert it to one of the supported types",
        )
    if not head:
        raise EmptyDocumentError(f"{name!r} is empty", "upload a file with content")
    mismatch = fmt.sniff(head)
    if mismatch is not None:
        raise CorruptDocumentError(f"{name!r} {mismatch.problem}", mismatch.hint)
    if fmt.family in ("markup", "text") and not head.strip():
        raise EmptyDocumentError(f"{name!r} has no text", "upload a file with content")


def check_content(path: Path, limits: UploadLimits) -> None:
    """Checks that need the whole file: PDF page count, zip containers' unpacked size, HTML nesting.
    Blocking work (page trees, zip directories): run it off an event loop."""
    fmt = format_for(path)
    kind = fmt.name if fmt else None
    if kind == "pdf":
        from pypdf import PdfReader

        try:
            pages = len(PdfReader(path).pages)
        except Exception:  # any parser failure means no readable PDF was sent
            raise CorruptDocumentError(f"{path.name!r} is not a readable PDF", "re-export it") from None
        if limits.max_pages and pages > limits.max_pages:
            raise FileTooLargeError(
                f"{path.name!r} has {pages} pages; the limit is {limits.max_pages}", "split the document"
            )
    elif kind == "html":
        if _html_depth(path.read_text("utf-8", errors="replace")) > MAX_HTML_DEPTH:
            raise RejectedUploadError(
                f"{path.name!r} nests HTML elements deeper than {MAX_HTML_DEPTH} levels", "simplify the page"
            )
    elif kind in _ZIP_FORMATS:
        try:
            with zipfile.ZipFile(path) as z:
                infos = z.infolist()
        except (zipfile.BadZipFile, OSError):
            raise CorruptDocumentError(f"{path.name!r} is not a readable {kind.upper()} file", "re-save it") from None
        if len(infos) > MAX_ZIP_ENTRIES:
            raise FileTooLargeError(
                f"{path.name!r} holds {len(infos)} entries; the limit is {MAX_ZIP_ENTRIES}",
                "remove embedded objects or split the document",
            )
        unpacked = sum(i.file_size for i in infos)
        if limits.max_unpacked_bytes and unpacked > limits.max_unpacked_bytes:
            raise FileTooLargeError(
                f"{path.name!r} unpacks to more than the {limits.max_unpacked_bytes / 1e6:g} MB limit",
                "remove embedded media or split the document",
            )


class _Depth(HTMLParser):
    """Nesting depth as a browser builds it: an end tag closes its open element (and those inside it);
    a stray end tag (`</x>` with no open `x`) closes nothing, so `<div></x>` repeated still nests."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.open: dict[str, int] = {}
        self.max = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in _VOID:
            self.stack.append(tag)
            self.open[tag] = self.open.get(tag, 0) + 1
            self.max = max(self.max, len(self.stack))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not self.open.get(tag):
            return
        while self.stack:  # amortised O(1): each element is popped once
            top = self.stack.pop()
            self.open[top] -= 1
            if top == tag:
                break


def _html_depth(text: str) -> int:
    p = _Depth()
    p.feed(text)
    p.close()
    return p.max


# -- staging ----------------------------------------------------------------------------------------------
def uploads_root(settings: Settings) -> Path:
    return settings.data_dir / UPLOADS_DIR


@dataclass(frozen=True)
class StagedBatch:
    """One upload's files, staged: `folder` holds them all (discard it to drop the upload)."""

    folder: Path
    files: list[Path]


def new_batch(root: Path, *scope: str) -> Path:
    """A fresh batch folder path (not created yet): `root/<scope...>/<utc time>-<random>`."""
    return root.joinpath(*scope, f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}")


class StagedFile:
    """One upload being written to `dest`: size-checked as it arrives, type-checked on its first bytes.
    On any failure the partial file is removed (use it as a context manager)."""

    def __init__(self, dest: Path, limits: UploadLimits) -> None:
        if dest.resolve().parent != dest.parent.resolve():  # belt and braces: never write outside the folder
            raise RejectedUploadError(f"unsafe file name {dest.name!r}", "rename the file")
        self.dest = dest
        self.limits = limits
        self.size = 0
        self.head = b""
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._f: BinaryIO | None = dest.open("wb")

    def write(self, chunk: bytes) -> None:
        assert self._f is not None
        self.size += len(chunk)
        self.limits.check_size(self.dest.name, self.size)
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self._f.write(chunk)

    def finish_quick(self) -> None:
        """Close the file and run the checks on its first bytes (cheap)."""
        if self._f is not None:
            self._f.close()
            self._f = None
        check_type(self.dest.name, self.head)

    def finish(self) -> None:
        """`finish_quick`, then the whole-file checks."""
        self.finish_quick()
        check_content(self.dest, self.limits)

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        if exc_type is not None:
            self.dest.unlink(missing_ok=True)


def stage_bytes(data: bytes, dest: Path, limits: UploadLimits) -> Path:
    """Write an upload held in memory (the admin page's) through the same checks as a streamed one."""
    limits.check_size(dest.name, len(data))  # before anything is written
    with StagedFile(dest, limits) as f:
        f.write(data)
        f.finish()
    return dest


def inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def discard(path: Path, root: Path) -> None:
    """Remove a staged file or folder and the folders it leaves empty, up to `root`; never anything
    outside `root`, and never `root` itself."""
    if not inside(path, root) or path.resolve() == root.resolve():
        return
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    parent, top = path.parent.resolve(), root.resolve()
    while parent != top and parent.is_relative_to(top) and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
