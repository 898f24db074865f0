"""Errors a user can act on. Anything else is a bug and keeps its traceback."""

from __future__ import annotations


class KbError(Exception):
    """Base for errors the user can fix; `hint` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(KbError):
    """Settings are invalid or inconsistent."""


class UnsupportedFormatError(KbError):
    """The file type is not one we can parse."""


class EmptyDocumentError(KbError):
    """The file parsed but yielded no text."""


class CorruptDocumentError(KbError):
    """The file could not be parsed at all."""


class FileTooLargeError(KbError):
    """The file exceeds the configured size limit."""


class QueryError(KbError):
    """A question or search option that cannot be answered as given (empty, k < 1, a signal that is off)."""


class RejectedUploadError(KbError):
    """An upload refused before anything was stored (a name twice in one upload, hostile content)."""


class TooManyFilesError(RejectedUploadError):
    """More files in one upload than allowed."""


class DocumentNotFoundError(KbError):
    """No document with that id is ingested."""


class StoreLockedError(KbError):
    """Another process holds the embedded store."""


class ModelLoadError(KbError):
    """A configured model could not be loaded."""


class ImageStoreError(KbError):
    """The image store (a bucket) cannot be reached, or refused an operation."""


class VlmError(KbError):
    """The vision-language model failed to answer (HTTP error, timeout, malformed reply)."""


class VlmUnavailableError(VlmError):
    """No vision-language model is configured, or it cannot be reached or loaded."""
