"""CLIP via open_clip: a model name + pretrained tag, a local checkpoint file, `hf-hub:org/repo`
or `local-dir:/path` (open_clip_config.json + weights). Preprocessing comes from the factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kb.errors import ModelLoadError

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class ClipEmbedder:
    """Implements ImageTextEmbedder. Loads on first use (or explicitly via `load()`)."""

    def __init__(
        self,
        model: str,
        pretrained: str | None = None,
        *,
        device: str = "auto",
        batch_size: int = 32,
        model_config: Path | None = None,
    ) -> None:
        self.model_name = model
        self.pretrained = pretrained
        self.device_req = device
        self.batch_size = batch_size
        self.model_config = model_config
        tag = Path(pretrained).name if pretrained and Path(pretrained).suffix else pretrained
        self.model_id = f"open_clip:{model}" + (f":{tag}" if tag else "")
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._dim = 0
        self.device = "cpu"
        self._load_lock = threading.Lock()

    def load(self) -> None:
        if self._model is not None:
            return
        with self._load_lock:  # request threads may ask for the model at once; load it once
            self._load()

    def _load(self) -> None:
        if self._model is not None:
            return
        import open_clip
        import torch

        if self.model_config is not None:
            open_clip.add_model_config(self.model_config)
        self.device = pick_device(self.device_req)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model_name, pretrained=self.pretrained, device=self.device
            )
            tokenizer = open_clip.get_tokenizer(self.model_name)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load CLIP model {self.model_name!r} (pretrained={self.pretrained!r}): {exc}",
                "check KB_CLIP_MODEL / KB_CLIP_PRETRAINED; offline, point them at a local checkpoint "
                "or a local-dir: folder, or set KB_CLIP_MODEL='' to run without the image signal",
            ) from exc
        model.eval()
        with torch.no_grad():
            probe = tokenizer(["probe"]).to(self.device)
            self._dim = int(model.encode_text(probe).shape[-1])
        self._model, self._preprocess, self._tokenizer = model, preprocess, tokenizer
        log.info("loaded CLIP %s on %s (dim %d)", self.model_id, self.device, self._dim)

    @property
    def dim(self) -> int:
        self.load()
        return self._dim

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        self.load()
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = torch.stack([self._preprocess(im.convert("RGB")) for im in images[i : i + self.batch_size]])
            with torch.no_grad():
                out.append(self._model.encode_image(batch.to(self.device), normalize=True).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self.load()
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self._tokenizer(list(texts[i : i + self.batch_size])).to(self.device)
            with torch.no_grad():
                out.append(self._model.encode_text(tokens, normalize=True).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
