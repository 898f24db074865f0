"""Answering: retrieved glyph images go together to a vision-language model, which answers with [n] citations."""

from kb.answer.types import Answer, Answerer, Citation, Prompt, PromptImage, Usage

__all__ = ["Answer", "Answerer", "Citation", "Prompt", "PromptImage", "Usage"]
