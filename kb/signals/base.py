"""A retrieval signal: one named vector per indexed section, with the model that fills it.

A signal knows its Qdrant vector config (its `spec`: dense, sparse or multivector), how to embed passages
(a section's text and its first glyph image) and queries. The local mirror (kb.local_mirror) searches
dense and sparse vectors itself; a collection with any other kind (multivector) is searched by Qdrant.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from PIL import Image

from kb.embed.base import EmbedderSpec, Vector, VectorKind


@dataclass(frozen=True)
class Passage:
    """What a signal may embed of one indexed section part."""

    text: str  # "title › heading path" then the section text
    image: Image.Image | None = None  # the part's (first) glyph image


class Signal(ABC):
    """One retrieval signal. Subclasses set `kind` and implement `spec`, `embed_passages`, `embed_queries`."""

    kind: ClassVar[VectorKind] = "dense"
    uses_image: ClassVar[bool] = False  # True: passages must carry their image
    batch_queries: ClassVar[bool] = True  # concurrent searches share one forward pass (slow encoders)

    def __init__(self, name: str) -> None:
        self.name = name  # the collection's vector name, the key in hits' `scores`

    @property
    @abstractmethod
    def model_id(self) -> str: ...

    @abstractmethod
    def spec(self) -> EmbedderSpec:
        """Model id, dimension and vector kind (a dense model may load to learn its dimension)."""

    @abstractmethod
    def embed_passages(self, passages: Sequence[Passage]) -> list[Vector]: ...

    @abstractmethod
    def embed_queries(self, texts: Sequence[str]) -> list[Vector]: ...
