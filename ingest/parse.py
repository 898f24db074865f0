"""Kept for callers of the old single-module parser: parsing lives in `ingest.formats` now."""

from ingest.formats.common import clean_code, clean_text
from ingest.formats.registry import parse_file, supported_extensions

__all__ = ["clean_code", "clean_text", "parse_file", "supported_extensions"]
