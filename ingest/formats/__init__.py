"""File formats: one module per family (`pdf`, `office`, `markup`, `text`) and the table that maps extensions
to them (`registry`). Add a format: write a module with a `Format` (extensions, `sniff`, `parse`) and call
`register(FORMAT)`, or add it to the built-ins in `registry._load_builtins`."""

from ingest.formats.base import HEAD_BYTES, Format, Mismatch
from ingest.formats.registry import (
    format_for,
    formats,
    parse_file,
    register,
    require_format,
    sniff,
    supported_extensions,
    unregister,
)

__all__ = [
    "HEAD_BYTES",
    "Format",
    "Mismatch",
    "format_for",
    "formats",
    "parse_file",
    "register",
    "require_format",
    "sniff",
    "supported_extensions",
    "unregister",
]
