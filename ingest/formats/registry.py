"""The formats table: the CLI, the API uploads, the admin page and the eval read it instead of a list.

The built-in families (pdf, office, markup, text) are registered on first use; `register` adds a
format from anywhere (a plugin, a test) without editing this package.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ingest.formats.base import HEAD_BYTES, Format, Mismatch
from kb.errors import CorruptDocumentError, EmptyDocumentError, FileTooLargeError, UnsupportedFormatError
from kb.settings import Settings, mb_bytes
from kb.types import ParsedDocument

_by_ext: dict[str, Format] = {}
_lock = threading.Lock()
_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:
        if _builtins_loaded:
            return
        # imported here, not at the top: the family modules import nothing heavy, but the table must not
        # be half-built when a family module imports a helper from this package
        from ingest.formats import markup, office, pdf, text

        for fmt in (pdf.FORMAT, office.DOCX, office.PPTX, markup.MARKDOWN, markup.HTML, text.TEXT):
            for ext in fmt.extensions:
                _by_ext.setdefault(ext, fmt)
        _builtins_loaded = True


def register(fmt: Format, *, replace: bool = False) -> None:
    """Add a format. An extension another format already has is an error unless `replace` is set."""
    _load_builtins()
    bad = [e for e in fmt.extensions if not (e.startswith(".") and e == e.lower() and len(e) > 1)]
    if bad or not fmt.extensions:
        raise ValueError(f"format {fmt.name!r}: extensions must be lower-case and start with a dot, got {bad}")
    with _lock:
        taken = {e: _by_ext[e].name for e in fmt.extensions if e in _by_ext and _by_ext[e].name != fmt.name}
        if taken and not replace:
            raise ValueError(f"format {fmt.name!r}: extensions already registered: {taken}")
        for ext in fmt.extensions:
            _by_ext[ext] = fmt


def unregister(name: str) -> None:
    """Remove a format by name (its extensions become unsupported); built-ins come back only on restart."""
    _load_builtins()
    with _lock:
        for ext in [e for e, f in _by_ext.items() if f.name == name]:
            del _by_ext[ext]


def formats() -> list[Format]:
    """Every registered format, once each, in registration order."""
    _load_builtins()
    return list({f.name: f for f in _by_ext.values()}.values())


def supported_extensions() -> list[str]:
    """Sorted, lower-case, with the dot: [".docx", ".htm", ...]."""
    _load_builtins()
    return sorted(_by_ext)


def format_for(name: str | Path) -> Format | None:
    """The format a file name (or path) declares by its extension; None when unsupported."""
    _load_builtins()
    return _by_ext.get(Path(name).suffix.lower())


def require_format(path: Path) -> Format:
    fmt = format_for(path)
    if fmt is None:
        raise UnsupportedFormatError(
            f"unsupported file type {path.suffix or '(no extension)'!r}: {path.name}",
            "supported: " + ", ".join(supported_extensions()),
        )
    return fmt


def sniff(name: str | Path, head: bytes) -> Mismatch | None:
    """Whether `head` (a file's first bytes) fits the format its name declares; None when it does (or when
    the name has no registered format: `require_format` reports that)."""
    fmt = format_for(name)
    return fmt.sniff(head[:HEAD_BYTES]) if fmt else None


def parse_file(path: Path, settings: Settings) -> ParsedDocument:
    """Parse `path` with its registered format; raise a `KbError` subclass the user can act on for bad input."""
    path = Path(path)
    fmt = require_format(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorruptDocumentError(
            f"cannot read {path}: {exc.strerror or exc}", "check the path and permissions"
        ) from exc
    if size > mb_bytes(settings.max_file_mb):
        raise FileTooLargeError(
            f"{path.name} is {size / 1e6:.1f} MB, over the {settings.max_file_mb:g} MB limit",
            "split the file or raise max_file_mb (KB_MAX_FILE_MB)",
        )
    if size == 0:
        raise EmptyDocumentError(f"{path.name} is empty (0 bytes)", "upload a file with content")
    mismatch = fmt.sniff(_read_head(path))
    if mismatch is not None:
        raise CorruptDocumentError(f"{path.name} {mismatch.problem}", mismatch.hint)
    doc = fmt.parse(path, settings)
    if not any(b.text.strip() or b.rows for b in doc.blocks):
        raise EmptyDocumentError(f"no text found in {path.name}", "check the file has text content")
    return doc


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(HEAD_BYTES)
    except OSError as exc:
        raise CorruptDocumentError(
            f"cannot read {path}: {exc.strerror or exc}", "check the path and permissions"
        ) from exc
