"""Question → retrieved hits → budgeted prompt → VLM → Answer with citations, timings and token counts."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from kb.answer.backend import AnswerBackend
from kb.answer.conversation import Turn
from kb.answer.prepare import PreparedAnswer, Scope, prepare_answer
from kb.answer.prompt import NOT_FOUND, cited_numbers, is_refusal, prompt_text_tokens
from kb.answer.types import Answer, Citation, Usage
from kb.settings import Settings

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

log = logging.getLogger(__name__)


class AnswerStream:
    """Iterate for the answer text as it arrives; `answer` holds the full Answer once iteration ends."""

    def __init__(self, prep: PreparedAnswer, answerer: AnswerBackend, settings: Settings) -> None:
        self.prep = prep
        self.answerer = answerer
        self.settings = settings
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        t0 = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        if self.prep.prompt.sources:
            for piece in self.answerer.stream(self.prep.prompt):
                if first is None:
                    first = time.perf_counter() - t0
                pieces.append(piece)
                yield piece
        else:
            pieces.append(NOT_FOUND)
            yield NOT_FOUND
        gen = time.perf_counter() - t0
        timings = {"first_token": first if first is not None else gen, "generate": gen}
        self.answer = finish(self.prep, self.answerer, self.settings, "".join(pieces), timings)


def ask(
    kb: KnowledgeBase,
    question: str,
    answerer: AnswerBackend,
    scope: Scope | None = None,
    history: Sequence[Turn] = (),
    *,
    stream: bool = False,
) -> Answer | AnswerStream:
    """Answer a question from the knowledge base: an Answer, or an AnswerStream to iterate."""
    prep = prepare_answer(kb, question, scope, history)
    if stream:
        return AnswerStream(prep, answerer, kb.settings)
    return generate(prep, answerer, kb.settings)


def generate(prep: PreparedAnswer, answerer: AnswerBackend, settings: Settings) -> Answer:
    t0 = time.perf_counter()
    # nothing retrieved or nothing fits: never ask the model to answer without sources
    text = answerer.generate(prep.prompt) if prep.prompt.sources else NOT_FOUND
    return finish(prep, answerer, settings, text, {"generate": time.perf_counter() - t0})


def finish(
    prep: PreparedAnswer, answerer: AnswerBackend, settings: Settings, text: str, timings: dict[str, float]
) -> Answer:
    p = prep.prompt
    by_n = {s.n: s for s in p.sources}
    cited = [n for n in cited_numbers(text) if n in by_n]
    unknown = [n for n in cited_numbers(text) if n not in by_n]
    notes = list(p.notes)
    if unknown:
        notes.append(f"the answer cites {', '.join(f'[{n}]' for n in unknown)}, which no source has")
    # citations: every numbered source the model saw, so each [n] in the text resolves; `cited` marks the used ones
    citations = [Citation(s.n, s.hit, cited=s.n in cited, label=s.label) for s in p.sources]
    raw = answerer.last_usage
    completion = int(raw.get("completion_tokens", raw.get("completion", 0)) or 0)
    usage = Usage(
        visual_tokens=p.visual_tokens,
        text_tokens=prompt_text_tokens(p, settings),
        completion_tokens=completion,
        prompt_tokens=int(raw.get("prompt_tokens", 0) or 0),
        images_sent=sum(len(s.images) for s in p.sources),
        images_dropped=sum(len(h.images) for h in p.dropped) if p.mode != "text" else 0,
    )
    all_t = {**prep.timings, **timings}
    all_t["total"] = sum(v for k, v in all_t.items() if k != "first_token")
    return Answer(
        text=text,
        citations=citations,
        usage=usage,
        timings=all_t,
        backend=answerer.backend,
        model=answerer.model,
        found=not is_refusal(text),
        notes=notes,
        cross_document=p.cross_document,
    )
