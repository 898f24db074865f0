"""The built-in signals: `image` (CLIP: glyph image vs. query text), `text` (dense sentence embeddings),
`bm25` (in-house BM25 as sparse vectors; Qdrant supplies the IDF)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kb.embed.base import EmbedderSpec, Vector
from kb.settings import Settings
from kb.signals.base import Passage, Signal

if TYPE_CHECKING:
    from kb.embed.bm25 import Bm25Embedder
    from kb.embed.clip import ClipEmbedder
    from kb.embed.dense import SentenceEmbedder

IMAGE, TEXT, BM25 = "image", "text", "bm25"


class ImageSignal(Signal):
    """CLIP: passages are the glyph images, queries the question's text in the same space."""

    uses_image = True

    def __init__(self, clip: ClipEmbedder, name: str = IMAGE) -> None:
        super().__init__(name)
        self.clip = clip

    @property
    def model_id(self) -> str:
        return self.clip.model_id

    def spec(self) -> EmbedderSpec:
        return EmbedderSpec(self.clip.model_id, self.clip.dim, "dense")

    def embed_passages(self, passages: Sequence[Passage]) -> list[Vector]:
        images = [p.image for p in passages]
        if any(im is None for im in images):
            raise ValueError(f"the {self.name} signal embeds glyph images; a passage came without one")
        return list(self.clip.embed_images([im for im in images if im is not None]))

    def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        return list(self.clip.embed_texts(texts))


class TextSignal(Signal):
    """Dense text embeddings (sentence-transformers), with the model's query and passage prompts."""

    def __init__(self, model: SentenceEmbedder, name: str = TEXT) -> None:
        super().__init__(name)
        self.model = model

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def spec(self) -> EmbedderSpec:
        return EmbedderSpec(self.model.model_id, self.model.dim, "dense")

    def embed_passages(self, passages: Sequence[Passage]) -> list[Vector]:
        return list(self.model.embed_passages([p.text for p in passages]))

    def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        return list(self.model.embed_queries(texts))


class Bm25Signal(Signal):
    """Keyword matching: saturated term frequencies as a sparse vector, IDF applied by Qdrant."""

    kind = "sparse"
    batch_queries = False  # tokenising is cheaper than a batch's wait

    def __init__(self, bm25: Bm25Embedder, name: str = BM25) -> None:
        super().__init__(name)
        self.bm25 = bm25

    @property
    def model_id(self) -> str:
        return self.bm25.model_id

    def spec(self) -> EmbedderSpec:
        return EmbedderSpec(self.bm25.model_id, 0, "sparse", idf=True)

    def embed_passages(self, passages: Sequence[Passage]) -> list[Vector]:
        return list(self.bm25.embed_passages([p.text for p in passages]))

    def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        return list(self.bm25.embed_queries(texts))


def _e5(model: str) -> bool:
    return "e5" in model.lower().replace("_", "-").split("/")[-1]


def image_signal(settings: Settings) -> Signal | None:
    if not settings.clip_model:
        return None
    from kb.embed.clip import ClipEmbedder

    clip = ClipEmbedder(
        settings.clip_model,
        settings.clip_pretrained or None,
        device=settings.device,
        batch_size=settings.embed_batch_size,
        model_config=settings.clip_model_config,
    )
    return ImageSignal(clip)


def text_signal(settings: Settings) -> Signal | None:
    if not settings.text_model:
        return None
    from kb.embed.dense import SentenceEmbedder

    e5 = _e5(settings.text_model)
    qp = settings.text_query_prompt if settings.text_query_prompt is not None else ("query: " if e5 else "")
    pp = settings.text_passage_prompt if settings.text_passage_prompt is not None else ("passage: " if e5 else "")
    model = SentenceEmbedder(
        settings.text_model,
        query_prompt=qp,
        passage_prompt=pp,
        device=settings.device,
        batch_size=settings.embed_batch_size,
        window_words=settings.text_window_words,
        window_stride=settings.text_window_stride,
    )
    return TextSignal(model)


def bm25_signal(settings: Settings) -> Signal | None:
    if not settings.bm25:
        return None
    from kb.embed.bm25 import Bm25Embedder

    return Bm25Signal(Bm25Embedder())
