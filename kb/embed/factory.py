"""Build the configured embedders from settings (nothing loads until first use)."""

from __future__ import annotations

from dataclasses import dataclass

from kb.embed.base import EmbedderSpec
from kb.embed.bm25 import Bm25Embedder
from kb.embed.clip import ClipEmbedder
from kb.embed.dense import SentenceEmbedder
from kb.errors import ConfigError
from kb.settings import Settings


@dataclass
class Embedders:
    clip: ClipEmbedder | None
    text: SentenceEmbedder | None
    bm25: Bm25Embedder | None

    def specs(self) -> dict[str, EmbedderSpec]:
        """Loads the dense models (their dim is only known then)."""
        out: dict[str, EmbedderSpec] = {}
        if self.clip:
            out["image"] = EmbedderSpec(self.clip.model_id, self.clip.dim)
        if self.text:
            out["text"] = EmbedderSpec(self.text.model_id, self.text.dim)
        if self.bm25:
            out["bm25"] = EmbedderSpec(self.bm25.model_id, 0)
        return out

    @property
    def signals(self) -> list[str]:
        return [n for n, e in (("image", self.clip), ("text", self.text), ("bm25", self.bm25)) if e is not None]


def _e5(model: str) -> bool:
    return "e5" in model.lower().replace("_", "-").split("/")[-1]


def build_embedders(settings: Settings) -> Embedders:
    clip = (
        ClipEmbedder(
            settings.clip_model,
            settings.clip_pretrained or None,
            device=settings.device,
            batch_size=settings.embed_batch_size,
            model_config=settings.clip_model_config,
        )
        if settings.clip_model
        else None
    )
    text = None
    if settings.text_model:
        e5 = _e5(settings.text_model)
        qp = settings.text_query_prompt if settings.text_query_prompt is not None else ("query: " if e5 else "")
        pp = settings.text_passage_prompt if settings.text_passage_prompt is not None else ("passage: " if e5 else "")
        text = SentenceEmbedder(
            settings.text_model,
            query_prompt=qp,
            passage_prompt=pp,
            device=settings.device,
            batch_size=settings.embed_batch_size,
            window_words=settings.text_window_words,
            window_stride=settings.text_window_stride,
        )
    bm25 = Bm25Embedder() if settings.bm25 else None
    if not (clip or text or bm25):
        raise ConfigError("every retrieval signal is disabled", "set KB_CLIP_MODEL, KB_TEXT_MODEL or KB_BM25=true")
    return Embedders(clip, text, bm25)
