"""Tiny random-weight models, saved to disk and loaded back through the same code users run."""

from __future__ import annotations

import json
from pathlib import Path

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def build_tiny_clip(folder: Path) -> tuple[Path, Path]:
    """Write `glyph-tiny-clip.json` (an open_clip model config) and a checkpoint; return both paths."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    cfg_path = folder / "glyph-tiny-clip.json"
    cfg_path.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(cfg_path)
    torch.manual_seed(0)
    model = open_clip.create_model("glyph-tiny-clip", pretrained=None)
    ckpt = folder / "tiny_clip.pt"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    return cfg_path, ckpt
