"""The conversation around a question: what the retrieval searches with and what the model is told.

One rule for every front end (CLI, API, OpenAI-compatible API, UI), so a follow-up means the same thing
everywhere. A follow-up ("what about it?", a few words) is searched together with the previous user
turns, so retrieval finds what "it" refers to; the model is shown the earlier user turns as context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Role = Literal["user", "assistant"]

FOLLOW_UP_TURNS = 2  # earlier user turns folded into a follow-up's retrieval query
CONTEXT_TURNS = 3  # earlier user turns shown to the model

_REFERS_BACK = re.compile(
    r"\b(it|its|it's|this|that|these|those|they|them|their|theirs|he|she|his|her|the same|above|previous|"
    r"earlier|former|latter|the (?:document|doc|file|spec|section|one|other))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Turn:
    """One earlier message of the conversation, oldest first."""

    role: Role
    text: str


def user_turns(history: Sequence[Turn]) -> list[str]:
    return [t.text.strip() for t in history if t.role == "user" and t.text.strip()]


def is_follow_up(question: str) -> bool:
    return len(question.split()) <= 4 or bool(_REFERS_BACK.search(question))


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """The text to search with: the question, plus the last user turns when it refers back to them."""
    prior = user_turns(history)[-FOLLOW_UP_TURNS:]
    if not prior or not is_follow_up(question):
        return question
    return "\n".join([*prior, question])


def model_question(question: str, history: Sequence[Turn]) -> str:
    """The question as the model reads it: the earlier user turns as context, then the question itself
    (last, so the model answers that)."""
    earlier = user_turns(history)[-CONTEXT_TURNS:]
    if not earlier:
        return question
    context = "\n".join(f"- {t}" for t in earlier)
    return f"Earlier in this conversation the user asked:\n{context}\nNow the user asks: {question}"
