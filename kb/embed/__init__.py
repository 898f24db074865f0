"""Embedders: CLIP (image + text), dense text, and in-house BM25 sparse vectors."""

from kb.embed.base import DenseEmbedder, EmbedderSpec, ImageTextEmbedder, SparseEmbedder, SparseVector

__all__ = ["DenseEmbedder", "EmbedderSpec", "ImageTextEmbedder", "SparseEmbedder", "SparseVector"]
