"""A tiny random-weight Qwen2-VL, built offline and saved to a folder that loads back through
`AutoProcessor` + `AutoModelForImageTextToText` exactly like a real model id.

Text: hidden 64, 2 layers, 4 heads (2 KV), mrope_section [2, 3, 3] (sums to head_dim / 2). Vision: depth 2,
embed_dim 32. Tokenizer: byte-level BPE (~1k vocab) trained here with `tokenizers`, wrapped as a Qwen2 tokenizer
with the Qwen special tokens. The folder is about 1 MB and builds in a couple of seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

# The Qwen2-VL chat template (as shipped with Qwen/Qwen2-VL-*-Instruct).
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

_CORPUS = [
    "You are a helpful assistant. Answer only from the numbered sources and cite them as [1], [2].",
    "If the answer is not in the sources, say that you cannot find it in the knowledge base.",
    "Handbook › Travel › Per diem, p. 3. Employees may claim meals and lodging on business trips.",
    "Security policy › Passwords, p. 12. Passwords rotate every ninety days; reuse is not allowed.",
    "What does the handbook say about travel expenses? Compare the two documents. Do A and B agree?",
    "The quick brown fox jumps over the lazy dog. 0123456789 !?.,;:()[]{}<>/\\'\"-_=+*&^%$#@~`|",
    "system user assistant question sources image text section heading page title document",
]


def build_tiny_qwen2_vl(folder: Path, *, seed: int = 0) -> Path:
    """Build the tiny model, processor, tokenizer and chat template and save them all to `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        AutoTokenizer,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    # --- tokenizer: byte-level BPE trained on a few sentences, Qwen special tokens appended
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer=trainer)
    with tempfile.TemporaryDirectory() as tmp:
        bpe.save(str(Path(tmp) / "tokenizer.json"))
        tokenizer = _qwen2_tokenizer(Path(tmp) / "tokenizer.json")
    tokenizer.chat_template = QWEN2_VL_CHAT_TEMPLATE

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}

    # --- processor: Qwen2-VL image processor with small images (<= 224x224 px -> <= 64 visual tokens)
    image_processor = Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=224 * 224)
    video_processor = Qwen2VLVideoProcessor()
    processor_cls: Any = Qwen2VLProcessor
    processor = processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )

    # --- model: random weights from a tiny config
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    # the processor saves the tokenizer too; make sure AutoTokenizer alone also reads it back
    AutoTokenizer.from_pretrained(str(folder))
    return folder


def _qwen2_tokenizer(tokenizer_file: Path) -> Any:
    """Wrap the trained BPE as a Qwen2 tokenizer; padding_side must go to the constructor to be saved."""
    import transformers

    # transformers 5 has one tokenizers-backed Qwen2Tokenizer; 4.x calls that one Qwen2TokenizerFast
    qwen2_tok: Any = getattr(transformers, "Qwen2TokenizerFast", None) or transformers.Qwen2Tokenizer
    return qwen2_tok(
        tokenizer_file=str(tokenizer_file),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        padding_side="left",
        errors="replace",
    )
