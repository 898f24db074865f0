"""The embedding seams. Batch-first; heavy models load lazily on first use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

VectorKind = Literal["dense", "sparse", "multivector"]


@dataclass(frozen=True)
class EmbedderSpec:
    """What the collection records about the model that filled a vector (model id, dim), and what kind of
    vector it is (not recorded: the collection's own vector config says that)."""

    model_id: str
    dim: int  # 0 for sparse vectors
    kind: VectorKind | None = field(default=None, compare=False)  # None: sparse when dim == 0, else dense
    idf: bool = field(default=True, compare=False)  # sparse: Qdrant applies the IDF modifier (BM25)

    @property
    def vector_kind(self) -> VectorKind:
        return self.kind or ("sparse" if self.dim == 0 else "dense")

    def as_dict(self) -> dict[str, object]:
        return {"model_id": self.model_id, "dim": self.dim}


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


# One signal's vector: dense (1-D), multivector (2-D: one row per token/patch) or sparse.
Vector = np.ndarray | SparseVector


@runtime_checkable
class ImageTextEmbedder(Protocol):
    """CLIP-style: images and texts in one space (rows L2-normalised)."""

    model_id: str

    @property
    def dim(self) -> int: ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class DenseEmbedder(Protocol):
    """Dense text embeddings with separate query and passage encodings (rows L2-normalised)."""

    model_id: str

    @property
    def dim(self) -> int: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class SparseEmbedder(Protocol):
    model_id: str

    def embed_passages(self, texts: Sequence[str]) -> list[SparseVector]: ...

    def embed_queries(self, texts: Sequence[str]) -> list[SparseVector]: ...
