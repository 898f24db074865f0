"""`GET /v1/models` and `POST /v1/chat/completions`: the knowledge base as an OpenAI-compatible model.

The last user message is the question; the messages before it are the conversation
(kb.answer.conversation decides what retrieval and the model make of them). The reply cites sources as [n] in the text, lists them at its end,
and returns them structured in the extra `citations` field (on the last chunk when streaming)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, model_validator

from kb.answer.conversation import Turn, turns
from kb.answer.run import AnswerStream, generate
from kb.answer.types import Answer
from kb.api.auth import Reader
from kb.api.inputs import MAX_QUESTION_CHARS, MAX_TURN_CHARS, valid_unicode
from kb.api.routes import answer_json, state
from kb.api.streaming import event_stream
from kb.errors import VlmError, VlmUnavailableError

router = APIRouter(prefix="/v1", tags=["openai"])
MODEL_ID = "glyph-kb"


class ChatMessage(BaseModel):
    role: str = Field(max_length=40)
    content: str | list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _bounded_text(self) -> ChatMessage:
        """Every message is valid Unicode and bounded (a 1 MB message is refused, not sent to the model)."""
        text = valid_unicode(_text(self))
        if len(text) > MAX_TURN_CHARS:
            raise ValueError(f"a message is longer than {MAX_TURN_CHARS} characters")
        return self


class ChatIn(BaseModel):
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    user: str | None = None


def _text(m: ChatMessage) -> str:
    if isinstance(m.content, str):
        return m.content
    return " ".join(str(p.get("text", "")) for p in m.content or [] if p.get("type") == "text")


def conversation(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """(the question, the conversation before it) from the chat: the last user turn is the question, and
    the client's user and assistant messages before it are the history (its system messages are not ours)."""
    history = turns({"role": m.role, "content": _text(m)} for m in messages)
    last = max((i for i, t in enumerate(history) if t.role == "user"), default=None)
    if last is None:
        raise HTTPException(422, "no user message with text")
    question = history[last].text
    if len(question) > MAX_QUESTION_CHARS:
        raise HTTPException(422, f"the question (the last user message) is longer than {MAX_QUESTION_CHARS} characters")
    if not question.strip():
        raise HTTPException(422, "the question (the last user message) is empty")
    return question, history[:last]


def sources_block(a: Answer) -> str:
    lines = [c.label or c.hit.label(c.n) for c in a.citations if c.cited] or [
        c.label or c.hit.label(c.n) for c in a.citations
    ]
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""


@router.get("/models")
def models(_: Reader) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "glyph-kb"}]}


class _Chunker:
    def __init__(self) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


@router.post("/chat/completions")
def chat_completions(request: Request, principal: Reader, body: ChatIn) -> Any:
    st = state(request)
    question, history = conversation(body.messages)
    prep = st.prepare(principal.tenant, question, history=history)
    answerer = st.answerer()
    if answerer is None:
        raise VlmUnavailableError("no vision-language model is configured, so there is no answer", "use /v1/search")
    c = _Chunker()
    if not body.stream:
        a = generate(prep, answerer, st.kb.settings)
        return {
            "id": c.id,
            "object": "chat.completion",
            "created": c.created,
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": a.text + sources_block(a)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": a.usage.prompt_tokens or a.usage.text_tokens + a.usage.visual_tokens,
                "completion_tokens": a.usage.completion_tokens,
                "total_tokens": (a.usage.prompt_tokens or a.usage.text_tokens + a.usage.visual_tokens)
                + a.usage.completion_tokens,
            },
            "citations": answer_json(a)["citations"],
        }

    def events() -> Iterator[str]:
        stream = AnswerStream(prep, answerer, st.kb.settings)
        try:
            yield c.chunk({"role": "assistant", "content": ""})
            for piece in stream:
                yield c.chunk({"content": piece})
            assert stream.answer is not None
            yield c.chunk({"content": sources_block(stream.answer)})
            yield c.chunk({}, "stop", citations=answer_json(stream.answer)["citations"])
        except VlmError:
            yield c.chunk({"content": "\n\n[error: the vision-language model failed to answer]"}, "stop")
        yield "data: [DONE]\n\n"

    return event_stream(request, events())
