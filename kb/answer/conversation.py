"""The conversation around a question: what the retrieval searches with, what the model is told, and
whether a comparison carries over.

One rule for every front end (CLI, API, OpenAI-compatible API, UI), so a follow-up means the same thing
everywhere. The model receives the earlier user turns and answers as chat messages (the newest that fit
KB_VLM_HISTORY_TOKENS) before the new question and its sources. Retrieval runs again for every question:
a follow-up ("what about it?", a few words) is searched together with the previous user turns, so it finds
what "it" refers to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from kb.hits import Hit

Role = Literal["user", "assistant"]

FOLLOW_UP_TURNS = 2  # earlier user turns folded into a follow-up's retrieval query
MAX_TURNS = 200  # turns read from a client's history at most (the token budget trims further)

_REFERS_BACK = re.compile(
    r"\b(it|its|it's|this|that|these|those|they|them|their|theirs|he|she|his|her|the same|above|previous|"
    r"earlier|former|latter|also|too|what about|how about|the (?:document|doc|file|spec|section|one|other|"
    r"two|both|versions?))\b",
    re.IGNORECASE,
)
# An answer's own source list (the OpenAI-compatible reply appends one): numbers from another turn, not context.
_SOURCES_BLOCK = re.compile(r"\n+Sources:\n(?:\[\d+\][^\n]*\n?)+\s*$")


@dataclass(frozen=True)
class Turn:
    """One earlier message of the conversation, oldest first."""

    role: Role
    text: str
    docs: tuple[str, ...] = ()  # assistant turns: the documents its sources came from, when known
    cross_document: bool = False  # assistant turns: it answered document by document


def turns(items: Iterable[Mapping[str, Any]]) -> list[Turn]:
    """Turns from `{"role", "content", ["docs"], ["cross_document"]}` mappings (API bodies, chat messages,
    the UI's history); other roles (system, tool) and empty turns are skipped."""
    out: list[Turn] = []
    for m in list(items)[-MAX_TURNS:]:
        role = m.get("role")
        text = str(m.get("content") or "").strip()
        if role == "assistant":
            text = _SOURCES_BLOCK.sub("", text).strip()
        if role not in ("user", "assistant") or not text:
            continue
        docs = tuple(str(d) for d in m.get("docs") or ())
        out.append(Turn("user" if role == "user" else "assistant", text, docs, bool(m.get("cross_document"))))
    return out


def user_turns(history: Sequence[Turn]) -> list[str]:
    return [t.text.strip() for t in history if t.role == "user" and t.text.strip()]


def is_follow_up(question: str) -> bool:
    """A question that leans on what came before: short, or referring back."""
    return len(question.split()) <= 4 or bool(_REFERS_BACK.search(question))


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """The text to search with: the question, plus the last user turns when it refers back to them."""
    prior = user_turns(history)[-FOLLOW_UP_TURNS:]
    if not prior or not is_follow_up(question):
        return question
    return "\n".join([*prior, question])


def carries_comparison(question: str, history: Sequence[Turn], hits: Sequence[Hit]) -> bool:
    """A follow-up to a comparison stays a comparison while its sources are still about the documents
    compared (at least two of them; any two when the earlier answer's documents are not known)."""
    from kb.retrieve import is_cross_document  # numpy and the embedders: only once a question is asked

    docs = {h.doc for h in hits}
    if len(docs) < 2 or not history or not is_follow_up(question):
        return False
    last_answer = next((t for t in reversed(history) if t.role == "assistant"), None)
    asked = user_turns(history)
    compared = (last_answer is not None and last_answer.cross_document) or bool(
        asked and is_cross_document(asked[-1], None)
    )
    if not compared:
        return False
    known = set(last_answer.docs) if last_answer is not None and last_answer.docs else None
    return known is None or len(docs & known) >= 2


def fit(history: Sequence[Turn], budget: int, count: Callable[[str], int]) -> list[Turn]:
    """The newest turns that fit `budget` tokens, starting with a user turn (a reply without its question
    misleads); older turns go first."""
    kept: list[Turn] = []
    used = 0
    for t in reversed(history):
        cost = count(t.text) + 4  # role markers
        if used + cost > budget:
            break
        kept.append(t)
        used += cost
    kept.reverse()
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept
