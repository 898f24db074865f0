"""Question embeddings for BERT-family sentence-transformers folders, in numpy.

Importing sentence-transformers (torch, transformers, scikit-learn) costs 15-25 s on a small machine, longer
than the whole search. A question is a dozen tokens, so the same forward pass in numpy takes milliseconds:
token, position and type embeddings, N post-LayerNorm encoder layers, mean or CLS pooling, L2 normalisation.
Passages (many, long) still go through sentence-transformers; tests/test_cli.py checks both give the same
vectors. Only folders this module fully understands are taken (`supports`); any other model uses
sentence-transformers for queries too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _modules(folder: Path) -> list[str]:
    raw = json.loads((folder / "modules.json").read_text())
    return [str(m["type"]).rsplit(".", 1)[-1] for m in raw]


def supports(folder: Path) -> bool:
    """A BertModel with absolute positions and GELU, then mean or CLS pooling (and maybe Normalize)."""
    try:
        cfg = json.loads((folder / "config.json").read_text())
        mods = _modules(folder)
        pool = json.loads((folder / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError):
        return False
    modes = [k for k, v in pool.items() if k.startswith("pooling_mode") and v]
    return (
        cfg.get("model_type") == "bert"
        and cfg.get("hidden_act") == "gelu"
        and cfg.get("position_embedding_type", "absolute") == "absolute"
        and mods[:2] == ["Transformer", "Pooling"]
        and set(mods[2:]) <= {"Normalize"}
        and modes in (["pooling_mode_mean_tokens"], ["pooling_mode_cls_token"])
        and (folder / "model.safetensors").is_file()
        and (folder / "tokenizer.json").is_file()
    )


def hidden_size(folder: Path) -> int:
    """The embedding size of a supported folder (mean/CLS pooling keeps the hidden size)."""
    return int(json.loads((folder / "config.json").read_text())["hidden_size"])


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to 1.5e-7 (Abramowitz & Stegun 7.1.26): below float32 resolution, without scipy's import."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.asarray(s * (1.0 - poly * np.exp(-a * a)), dtype=np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0)))), dtype=np.float32)


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return np.asarray((x - mu) / np.sqrt(var + eps) * w + b, dtype=np.float32)


class NumpyBert:
    """Embeds short texts like the sentence-transformers folder it is built from (normalised rows)."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        cfg = json.loads((folder / "config.json").read_text())
        st_cfg = folder / "sentence_bert_config.json"
        max_len = int(json.loads(st_cfg.read_text()).get("max_seq_length", 512)) if st_cfg.is_file() else 512
        pool = json.loads((folder / "1_Pooling" / "config.json").read_text())
        self.cls_pooling = bool(pool.get("pooling_mode_cls_token"))
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.dim = int(cfg["hidden_size"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(min(max_len, int(cfg.get("max_position_embeddings", 512))))
        raw = load_file(str(folder / "model.safetensors"))
        # Linear weights stored transposed and contiguous: x @ W^T becomes one plain matmul.
        self.w: dict[str, np.ndarray] = {
            k.removeprefix("bert."): np.ascontiguousarray(
                v.T if k.endswith("dense.weight") or (".self." in k and k.endswith(".weight")) else v, dtype=np.float32
            )
            for k, v in raw.items()
            if not k.startswith("pooler")
        }

    def _p(self, name: str) -> np.ndarray:
        return self.w[name]

    def _encode_one(self, text: str) -> np.ndarray:
        enc: Any = self.tokenizer.encode(text)
        ids = np.asarray(enc.ids, dtype=np.int64)
        types = np.asarray(enc.type_ids or [0] * len(ids), dtype=np.int64)
        p = self._p
        h = p("embeddings.word_embeddings.weight")[ids] + p("embeddings.position_embeddings.weight")[: len(ids)]
        h = h + p("embeddings.token_type_embeddings.weight")[types]
        h = _layer_norm(h, p("embeddings.LayerNorm.weight"), p("embeddings.LayerNorm.bias"), self.eps)
        n, d = h.shape
        hd = d // self.heads
        for i in range(self.layers):
            pre = f"encoder.layer.{i}."

            def lin(x: np.ndarray, name: str, pre: str = pre) -> np.ndarray:
                return np.asarray(x @ p(pre + name + ".weight") + p(pre + name + ".bias"), dtype=np.float32)

            q = lin(h, "attention.self.query").reshape(n, self.heads, hd).transpose(1, 0, 2)
            k = lin(h, "attention.self.key").reshape(n, self.heads, hd).transpose(1, 0, 2)
            v = lin(h, "attention.self.value").reshape(n, self.heads, hd).transpose(1, 0, 2)
            att = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(hd))
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, d)
            h = _layer_norm(
                h + lin(ctx, "attention.output.dense"),
                p(pre + "attention.output.LayerNorm.weight"),
                p(pre + "attention.output.LayerNorm.bias"),
                self.eps,
            )
            ff = lin(_gelu(lin(h, "intermediate.dense")), "output.dense")
            h = _layer_norm(h + ff, p(pre + "output.LayerNorm.weight"), p(pre + "output.LayerNorm.bias"), self.eps)
        vec = h[0] if self.cls_pooling else h.mean(0)
        return np.asarray(vec / max(float(np.linalg.norm(vec)), 1e-12), dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._encode_one(t) for t in texts])
