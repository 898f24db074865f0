"""The answer backend as a transcriber: reads a glyph image back as text (`kb tune-render --judge vlm`; the
model that reads the images in production is the better judge of them than OCR)."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from kb.answer.backend import make_answerer
from kb.answer.types import Prompt, PromptImage
from kb.hits import Hit
from kb.settings import Settings
from kb.tokens import visual_tokens

TRANSCRIBE = (
    "You transcribe images of text. Write out every word of the image exactly as printed, reading each "
    "column from top to bottom, left column first. Output only the transcription."
)


def vlm_transcriber(settings: Settings) -> Callable[[Image.Image, str], str] | None:
    """(image, source text) -> what the configured VLM reads in the image; None when no VLM is configured."""
    backend = make_answerer(settings)
    if backend is None:
        return None
    backend.load()
    patch = settings.render.patch

    def transcribe(image: Image.Image, source: str) -> str:
        hit = Hit("", "", [], None, "", 0.0, {}, [], [], "", "")
        src = PromptImage(1, hit, "[1]", [image], visual_tokens(image.width, image.height, patch))
        prompt = Prompt(system=TRANSCRIBE, question="Transcribe the text of image [1].", sources=[src])
        return backend.for_request().generate(prompt)

    return transcribe
