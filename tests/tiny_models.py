"""Tiny random-weight models, saved to disk and loaded back through the same code users run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def build_random_clip(
    folder: Path, name: str, config: Mapping[str, Any], ckpt_name: str | None = None
) -> tuple[Path, Path]:
    """Write `<name>.json` (an open_clip model config) and a seeded random-weight checkpoint; return both."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    cfg_path = folder / f"{name}.json"
    cfg_path.write_text(json.dumps(config))
    open_clip.add_model_config(cfg_path)
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None)
    ckpt = folder / (ckpt_name or f"{name}.pt")
    torch.save({"state_dict": model.state_dict()}, ckpt)
    return cfg_path, ckpt


def build_tiny_clip(folder: Path) -> tuple[Path, Path]:
    """The tests' tiny CLIP (`glyph-tiny-clip`)."""
    return build_random_clip(folder, "glyph-tiny-clip", TINY_CLIP, "tiny_clip.pt")


def settings_fields(env: Mapping[str, str]) -> dict[str, Any]:
    """`KB_*` environment variables as Settings keyword arguments."""
    return {k[3:].lower(): v for k, v in env.items()}
