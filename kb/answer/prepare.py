"""The one way a question becomes a prompt: retrieve the sources, then build the budgeted prompt.

The CLI (`kb ask`), the API (`/v1/ask`, `/v1/chat/completions`), the UI's chat page and the eval all call
`prepare_answer`; only generation (streamed or not) and presentation differ between them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kb.answer.conversation import Turn, carries_comparison, retrieval_query
from kb.answer.prompt import build_prompt
from kb.answer.types import ContextMode, Prompt, PromptImage
from kb.compare.answering import named_documents, version_plan
from kb.hits import Hit, focus

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

FOLLOW_UP_NOTE = "searched together with the previous question(s), to resolve the follow-up"


@dataclass
class Scope:
    """What a question may draw on, and how it is answered. Every field is optional."""

    k: int | None = None  # sections to retrieve; None = settings.top_k
    doc_ids: Sequence[str] | None = None  # the documents the asker chose
    tags: Sequence[str] | None = None
    # The documents the asker may see at all (an API tenant's): searched when doc_ids is not given. Unlike
    # doc_ids it does not make a question cross-document.
    within: Sequence[str] | None = None
    cross_document: bool | None = None  # None = automatic (comparison wording or several doc_ids)
    mode: ContextMode | None = None  # None = settings.context_mode
    signals: Sequence[str] | None = None  # retrieval signals to use; None = all configured


@dataclass
class PreparedAnswer:
    """Retrieval and prompt building done: ready to generate, or to show the sources without a model."""

    question: str  # as the asker wrote it
    hits: list[Hit]  # in rank order; the prompt's sources are the ones that fit
    prompt: Prompt  # what the model is sent (system, numbered sources, the question in context)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: retrieve, prompt
    query: str = ""  # what retrieval searched with (the question, or a follow-up with earlier turns)
    history: list[Turn] = field(default_factory=list)
    cross_document: bool = False

    @property
    def sources(self) -> list[PromptImage]:
        return self.prompt.sources

    @property
    def labels(self) -> list[str]:
        """`[n] title › section, p. X` for each source the model sees."""
        return [s.label for s in self.prompt.sources]

    @property
    def notes(self) -> list[str]:
        return self.prompt.notes


def prepare_answer(
    kb: KnowledgeBase, question: str, scope: Scope | None = None, history: Sequence[Turn] = ()
) -> PreparedAnswer:
    """Retrieve the sources for `question` (in the context of `history`) and build the model's prompt."""
    from kb.retrieve import SearchOptions, is_cross_document

    scope = scope or Scope()
    history = list(history)
    query = retrieval_query(question, history)
    chosen = list(scope.doc_ids) if scope.doc_ids else None
    search_ids = chosen or (list(scope.within) if scope.within is not None else None)
    # retrieval spreads over documents when the question (or the comparison it follows up) compares them
    diversify = is_cross_document(query, chosen) if scope.cross_document is None else scope.cross_document
    t0 = time.perf_counter()
    if diversify and not chosen:  # a cross-document question searches the documents it names (and their versions)
        search_ids = named_documents(kb, query, search_ids) or search_ids
    hits = kb.search(
        query,
        SearchOptions(
            k=scope.k or kb.settings.top_k,
            doc_ids=search_ids,
            tags=list(scope.tags) if scope.tags else None,
            signals=scope.signals,
            diversify=diversify,
        ),
    )
    if search_ids is not None:  # belt and braces: the store filtered on these too
        allowed = set(search_ids)
        hits = [h for h in hits if h.doc in allowed]
    # only the sources that matter go to the model; neighbouring parts of a section become one source
    hits = focus(hits, kb.settings.answer_min_relevance, kb.settings.signal_weights)
    plan = version_plan(kb, question, hits, chosen)  # versions of one document: the newest first, or the diff
    if plan is not None:
        hits = plan.hits
    t1 = time.perf_counter()
    if scope.cross_document is None:  # the answer compares when asked to, or while a comparison goes on
        cross = is_cross_document(question, chosen) or carries_comparison(question, history, hits)
    else:
        cross = scope.cross_document
    if plan is not None:
        cross = plan.cross_document or (scope.cross_document is True and not plan.what_changed)
    cross = cross and len({h.doc for h in hits}) > 1
    prompt = build_prompt(
        question,
        hits,
        kb.settings,
        kb.images,
        cross_document=cross,
        mode=scope.mode,
        history=history,
        instructions=plan.instructions if plan else "",
    )
    if plan is not None:
        prompt.notes += plan.notes
    if query != question:
        prompt.notes.append(FOLLOW_UP_NOTE)
    return PreparedAnswer(
        question,
        hits,
        prompt,
        {"retrieve": t1 - t0, "prompt": time.perf_counter() - t1},
        query=query,
        history=history,
        cross_document=cross,
    )
