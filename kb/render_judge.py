"""Judges for `kb tune-render`: what reads a glyph image back. Tesseract always; the configured VLM when
there is one (the model that will read the images in production is the better judge)."""

from __future__ import annotations

from PIL import Image

from ingest.render_score import Judge, tesseract_judge
from kb.settings import Settings
from kb.tokens import visual_tokens

TRANSCRIBE = (
    "You transcribe images of text. Write out every word of the image exactly as printed, reading each "
    "column from top to bottom, left column first. Output only the transcription."
)


def vlm_judge(settings: Settings) -> Judge | None:
    """A judge that asks the configured answer backend to transcribe each image (None: no VLM configured)."""
    from kb.answer.backend import make_answerer
    from kb.answer.types import Prompt, PromptImage
    from kb.hits import Hit

    backend = make_answerer(settings)
    if backend is None:
        return None
    backend.load()
    patch = settings.render.patch

    def judge(image: Image.Image, source: str) -> str:
        hit = Hit("", "", [], None, "", 0.0, {}, [], [], "", "")
        src = PromptImage(1, hit, "[1]", [image], visual_tokens(image.width, image.height, patch))
        prompt = Prompt(system=TRANSCRIBE, question="Transcribe the text of image [1].", sources=[src])
        return backend.for_request().generate(prompt)

    return judge


def pick_judge(settings: Settings, which: str) -> tuple[str, Judge]:
    """(name, judge) for --judge auto|tesseract|vlm; auto = the VLM when one is configured."""
    if which in ("auto", "vlm"):
        judge = vlm_judge(settings)
        if judge is not None:
            return f"vlm:{settings.vlm_model or settings.vlm_backend}", judge
        if which == "vlm":
            from kb.errors import ConfigError

            raise ConfigError("--judge vlm needs a VLM", "set KB_VLM_BACKEND (and its model), or use --judge tesseract")
    return "tesseract", tesseract_judge
