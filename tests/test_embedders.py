from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from kb.embed.base import DenseEmbedder, ImageTextEmbedder, SparseEmbedder
from kb.embed.bm25 import Bm25Embedder, term_id, tokenize
from kb.embed.clip import ClipEmbedder
from kb.embed.dense import SentenceEmbedder
from kb.errors import ModelLoadError
from tests.tiny_models import build_tiny_clip


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> ClipEmbedder:
    cfg, ckpt = build_tiny_clip(tmp_path_factory.mktemp("clip"))
    return ClipEmbedder("glyph-tiny-clip", str(ckpt), model_config=cfg, device="cpu", batch_size=3)


def _page(text: str) -> Image.Image:
    im = Image.new("RGB", (200, 120), "white")
    ImageDraw.Draw(im).text((5, 5), text, fill="black")
    return im


def test_clip_checkpoint_loads_by_path_and_embeds_in_batches(tiny_clip: ClipEmbedder) -> None:
    assert isinstance(tiny_clip, ImageTextEmbedder)
    imgs = [_page(f"page {i}") for i in range(7)]  # 7 with batch 3: three batches
    iv = tiny_clip.embed_images(imgs)
    tv = tiny_clip.embed_texts(["hello", "world"])
    assert iv.shape == (7, 32) and tv.shape == (2, 32) and tiny_clip.dim == 32
    assert np.allclose(np.linalg.norm(iv, axis=1), 1, atol=1e-4)
    assert np.allclose(tiny_clip.embed_images(imgs[:1]), iv[:1], atol=1e-5), "batching must not change results"
    assert "tiny_clip.pt" in tiny_clip.model_id


def test_clip_that_cannot_load_is_a_clear_error(tmp_path: Path) -> None:
    bad = ClipEmbedder("ViT-B-32", str(tmp_path / "missing.pt"), device="cpu")
    with pytest.raises(ModelLoadError, match="KB_CLIP"):
        bad.embed_texts(["x"])


def test_dense_minilm_real_weights_rank_sensibly() -> None:
    e = SentenceEmbedder("minilm-bundled", device="cpu")
    assert isinstance(e, DenseEmbedder) and e.dim == 384
    docs = e.embed_passages(
        ["Restore a dump with psql.", "Vacuum reclaims storage of dead tuples.", "Bananas are yellow."]
    )
    q = e.embed_queries(["how do I reclaim disk space from deleted rows"])[0]
    assert int(np.argmax(docs @ q)) == 1


def test_dense_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="KB_TEXT_MODEL"):
        SentenceEmbedder(str(tmp_path / "nope")).embed_queries(["x"])


def test_bm25_english_tokens_and_saturation() -> None:
    e = Bm25Embedder()
    assert isinstance(e, SparseEmbedder)
    assert tokenize("The pg_dump Tool") == ["pg_dump", "pg", "dump", "tool"]
    (one, many) = e.embed_passages(["vacuum", "vacuum " * 50])
    tid = term_id("vacuum")
    w1 = one.values[one.indices.index(tid)]
    w50 = many.values[many.indices.index(tid)]
    assert w50 > w1 and w50 < (e.k1 + 1), "term frequency saturates at k1 + 1"
    (q,) = e.embed_queries(["vacuum vacuum the table"])
    assert sorted(q.indices) == q.indices and len(q.indices) == 2 and set(q.values) == {1.0}


def test_bm25_cjk_bigrams_match_inside_unsegmented_text() -> None:
    assert tokenize("使い方") == ["使い", "い方"]
    assert tokenize("表") == ["表"]
    e = Bm25Embedder()
    (doc,) = e.embed_passages(["コマンドラインからの aptitude の使い方"])
    (q,) = e.embed_queries(["コマンドライン"])
    assert set(q.indices) <= set(doc.indices)


def test_long_passages_are_embedded_by_windows() -> None:
    from kb.embed.dense import word_windows

    text = " ".join(f"w{i}" for i in range(500))
    wins = word_windows(text, 160, 120)
    assert [len(w.split()) for w in wins] == [160, 160, 160, 140]
    assert wins[-1].split()[-1] == "w499"
    assert word_windows("short text", 160, 120) == ["short text"]
    jp = word_windows("あ" * 300, 160, 120)
    assert [len(w) for w in jp] == [160, 160, 60]
    plain = SentenceEmbedder("minilm-bundled", device="cpu")
    win = SentenceEmbedder("minilm-bundled", device="cpu", window_words=40, window_stride=30)
    assert win.model_id != plain.model_id and "win=40/30" in win.model_id
    tail_fact = "filler words about nothing in particular " * 70 + "vacuum reclaims storage occupied by dead tuples"
    q = plain.embed_queries(["what reclaims storage of dead tuples"])[0]
    assert float(win.embed_passages([tail_fact])[0] @ q) > float(plain.embed_passages([tail_fact])[0] @ q)
