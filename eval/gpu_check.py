"""GPU check for the transformers answering backend: build the tiny random-weight Qwen2-VL, load it on CUDA in
bfloat16 through `TransformersAnswerer` (the same path as a real model id) and answer over 4 images, streamed and
not. Proves the device path; the answer itself is random-weight gibberish.

    python eval/gpu_check.py [--folder DIR] [--max-new-tokens 16]

Exits 2 with a clear message where CUDA is absent. `--device cpu --dtype bfloat16` dry-runs the script itself on
a machine without a GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=None, help="where to save the tiny VLM (default: a temp dir)")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--device", default="cuda", help="cuda (the check); cpu only to dry-run the script itself")
    ap.add_argument("--dtype", default="auto", help="auto = bfloat16 on CUDA")
    args = ap.parse_args()

    import torch

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print(
            f"gpu_check: CUDA is not available (torch {torch.__version__}, cuda build {torch.version.cuda}); "
            "run this on a machine with an NVIDIA GPU and a CUDA build of torch.",
            file=sys.stderr,
        )
        return 2

    from PIL import Image, ImageDraw

    from kb.answer.hf import TransformersAnswerer
    from kb.answer.types import Prompt, PromptImage
    from kb.hits import Hit
    from tests.tiny_vlm import build_tiny_qwen2_vl

    tmp = tempfile.TemporaryDirectory() if args.folder is None else None
    folder = args.folder or Path(tmp.name)  # type: ignore[union-attr]
    t0 = time.perf_counter()
    build_tiny_qwen2_vl(folder)
    t_build = time.perf_counter() - t0

    sources = []
    for n in range(1, 5):
        img = Image.new("RGB", (224, 112 + 28 * n), "white")
        ImageDraw.Draw(img).text((8, 8), f"Section {n}: the travel allowance is {n * 10} EUR", fill="black")
        hit = Hit(
            doc=f"doc{n}",
            title=f"Document {n}",
            heading_path=["Policies", f"Part {n}"],
            pages=(n, n),
            text=f"The travel allowance is {n * 10} EUR.",
            score=1.0 / n,
            scores={},
            image_keys=[],
            images=[],
            section_id=f"s{n}",
            point_id=f"p{n}",
        )
        sources.append(PromptImage(n=n, hit=hit, label=hit.label(n), images=[img], visual_tokens=0))
    prompt = Prompt(
        system="Answer only from the numbered sources and cite them as [n].",
        question="What is the travel allowance?",
        sources=sources,
    )

    vlm = TransformersAnswerer(str(folder), device=args.device, dtype=args.dtype, max_new_tokens=args.max_new_tokens)
    vlm.load()
    param = next(vlm._model.parameters())
    name = torch.cuda.get_device_name(0) if cuda else "no GPU: dry run"
    print(f"device: {vlm.device} ({name}), dtype: {vlm.dtype}, weights {param.dtype} on {param.device}")
    print(f"torch {torch.__version__}, cuda {torch.version.cuda}; build {t_build:.2f}s, load {vlm.load_seconds:.2f}s")
    if cuda:
        assert param.device.type == "cuda", "model is not on the GPU"
        if args.dtype == "auto" and torch.cuda.is_bf16_supported():
            assert param.dtype == torch.bfloat16, f"expected bfloat16 weights, got {param.dtype}"

    inputs = vlm.build_inputs(prompt)
    n_images = int(inputs["image_grid_thw"].shape[0])
    print(
        f"inputs: {int(inputs['input_ids'].shape[-1])} tokens, {n_images} images, "
        f"pixel_values {tuple(inputs['pixel_values'].shape)} {inputs['pixel_values'].dtype} "
        f"on {inputs['pixel_values'].device}"
    )
    assert n_images == 4

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    vlm.generate(prompt)  # warm-up (CUDA kernels, allocator)
    sync()
    t1 = time.perf_counter()
    answer = vlm.generate(prompt)
    sync()
    t_gen = time.perf_counter() - t1
    print(f"generate: {t_gen * 1000:.1f} ms, usage {vlm.last_usage}")
    print(f"answer: {answer!r}")

    t2 = time.perf_counter()
    first = None
    pieces = []
    for piece in vlm.stream(prompt):
        first = first if first is not None else time.perf_counter() - t2
        pieces.append(piece)
    t_stream = time.perf_counter() - t2
    print(f"stream: {len(pieces)} pieces, first after {(first or 0) * 1000:.1f} ms, total {t_stream * 1000:.1f} ms")
    assert "".join(pieces).strip() == answer, "stream and generate disagree (greedy)"
    if cuda:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")
    print("gpu_check: OK")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
