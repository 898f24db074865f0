"""Build a small random-weight open_clip model (config JSON + checkpoint) for offline runs.

No CLIP weights are obtainable without a model hub, so the `image` signal measured with this
model is noise by construction; it exercises the plumbing and gives speed numbers only.

    python eval/random_clip.py OUT_DIR   # prints the KB_CLIP_* settings to export
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SMALL_CLIP = {
    "embed_dim": 256,
    "vision_cfg": {"image_size": 224, "layers": 4, "width": 256, "patch_size": 32, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 4},
}


def build(out: Path, name: str = "glyph-small-clip") -> tuple[Path, Path]:
    from tests.tiny_models import build_random_clip

    return build_random_clip(out, name, SMALL_CLIP)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "eval/out/random-clip")
    cfg, ckpt = build(target)
    print(f"export KB_CLIP_MODEL=glyph-small-clip KB_CLIP_MODEL_CONFIG={cfg} KB_CLIP_PRETRAINED={ckpt}")
