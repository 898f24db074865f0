"""What answering passes around: the multimodal Prompt a backend reads, and the Answer with its citations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

from kb.answer.conversation import Turn
from kb.hits import Hit

ContextMode = Literal["image", "text", "image+text"]


@dataclass
class PromptImage:
    """One numbered source as the model sees it: the label stays outside the image (text part)."""

    n: int  # 1-based citation number, in rank order
    hit: Hit
    label: str  # "[n] title › heading path, p. X"
    images: list[Image.Image]  # the glyph image(s), possibly downscaled by the budget
    visual_tokens: int
    text: str | None = None  # section text, in "text" / "image+text" context modes
    # The stored PNG of each image sent at its stored size (None where resized): sent as-is, not re-encoded.
    png: list[bytes | None] = field(default_factory=list)


@dataclass
class Prompt:
    system: str
    question: str
    sources: list[PromptImage]
    mode: ContextMode = "image"
    cross_document: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. "dropped [7], [8] to fit the context"
    dropped: list[Hit] = field(default_factory=list)
    history: list[Turn] = field(default_factory=list)  # earlier turns sent before the question, oldest first

    @property
    def visual_tokens(self) -> int:
        return sum(s.visual_tokens for s in self.sources)


@dataclass
class Citation:
    n: int
    hit: Hit
    cited: bool = False  # the answer text cites [n]
    label: str = ""  # "[n] title › section, p. X" as the model saw it (unique within the answer)

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "cited": self.cited, "label": self.label or self.hit.label(self.n), **self.hit.to_json()}


@dataclass
class Usage:
    visual_tokens: int = 0
    text_tokens: int = 0  # prompt text tokens (labels, question, section text in text modes)
    completion_tokens: int = 0
    prompt_tokens: int = 0  # as the model counted them (labels + images + template), when the backend reports it
    images_sent: int = 0
    images_dropped: int = 0


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    usage: Usage
    timings: dict[str, float]  # seconds per stage: retrieve, prompt, generate, total
    backend: str
    model: str
    found: bool = True  # False when the model says the knowledge base does not contain the answer
    notes: list[str] = field(default_factory=list)
    cross_document: bool = False  # answered document by document (a follow-up keeps that framing)

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "found": self.found,
            "citations": [c.to_json() for c in self.citations],
            "usage": vars(self.usage),
            "timings": self.timings,
            "backend": self.backend,
            "model": self.model,
            "notes": self.notes,
            "cross_document": self.cross_document,
        }
