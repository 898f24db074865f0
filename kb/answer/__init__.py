"""Answering: retrieved glyph images go together to a vision-language model, which answers with [n] citations."""

from kb.answer.backend import AnswerBackend
from kb.answer.types import Answer, Citation, Prompt, PromptImage, Usage

__all__ = ["Answer", "AnswerBackend", "Citation", "Prompt", "PromptImage", "Usage"]
