"""Text fields of API requests: valid Unicode, bounded, not blank (a bad one is a clear 422, never a 500)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt

MAX_QUESTION_CHARS = 4000
MAX_TURN_CHARS = 40_000


def valid_unicode(v: str) -> str:
    """JSON may carry lone surrogates (`"\\ud800"`); tokenizers and encoders fail on them deep inside."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (it holds a lone surrogate)") from None
    return v


def not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("is empty or only whitespace")
    return v


Text = Annotated[str, AfterValidator(valid_unicode)]
Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS), AfterValidator(valid_unicode), AfterValidator(not_blank)]
TurnText = Annotated[str, Field(max_length=MAX_TURN_CHARS), AfterValidator(valid_unicode)]
TopK = Annotated[StrictInt, Field(ge=1, le=100)]  # `true` is not 1
