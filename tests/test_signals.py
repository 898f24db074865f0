"""The signals registry: a signal registered from outside the package (here a toy character-trigram
signal) is indexed, searched, fused and reported like the built-ins, with no edit to the core."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import models

from kb.embed.base import EmbedderSpec
from kb.errors import QueryError
from kb.points import Vector
from kb.retrieve import SearchOptions
from kb.service import KnowledgeBase
from kb.settings import Settings
from kb.signals import BM25, Passage, Signal, register, unregister
from kb.signals.configured import build_embedders

DIM = 256


class Trigrams(Signal):
    """Hashed character trigrams of the text, L2-normalised: crude, but a real dense text signal."""

    def __init__(self) -> None:
        super().__init__("trigram")

    @property
    def model_id(self) -> str:
        return f"test:trigram/{DIM}"

    def spec(self) -> EmbedderSpec:
        return EmbedderSpec(self.model_id, DIM, "dense")

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(DIM, np.float32)
        t = f"  {text.lower()}  "
        for i in range(len(t) - 2):
            v[int.from_bytes(hashlib.blake2b(t[i : i + 3].encode(), digest_size=4).digest(), "little") % DIM] += 1
        n = float(np.linalg.norm(v))
        return v / n if n else v

    def embed_passages(self, passages: Sequence[Passage]) -> list[Vector]:
        return [self._vec(p.text) for p in passages]

    def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        return [self._vec(t) for t in texts]


@pytest.fixture
def toy() -> Iterator[None]:
    register("trigram", lambda s: Trigrams(), enabled_by="(registered by the test)")
    yield
    unregister("trigram")


DOCS = {
    "pumps.md": "# Pump maintenance\n\nThe centrifugal pump impeller is inspected every 500 operating hours.\n",
    "payroll.md": "# Payroll calendar\n\nSalaries are paid on the last working day of each month.\n",
    "backup.md": "# Backups\n\nNightly snapshots are kept for thirty days in the vault.\n",
}


@pytest.mark.usefixtures("toy")
def test_a_registered_signal_is_indexed_searched_and_fused(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    s = Settings(data_dir=tmp_path / "d", clip_model="", text_model="", bm25=True)
    assert [sig.name for sig in build_embedders(s)] == [BM25, "trigram"]
    with KnowledgeBase(s) as kb:
        results = kb.ingest([docs])
        assert all(r.status == "ingested" for r in results), [r.error for r in results]
        # the collection got a named vector for it, from its spec
        params = kb.index.client.get_collection(kb.settings.collection).config.params
        assert isinstance(params.vectors, dict) and params.vectors["trigram"].size == DIM
        assert params.vectors["trigram"].distance == models.Distance.COSINE
        only = kb.search("centrifugal pump impeller", SearchOptions(k=2, signals=["trigram"]))
        assert only[0].doc == "pumps.md" and set(only[0].scores) == {"trigram"}
        fused = kb.search("when are salaries paid", SearchOptions(k=3))
        assert fused[0].doc == "payroll.md" and "trigram" in fused[0].scores
        with pytest.raises(QueryError, match="unknown signal"):
            kb.search("pump", SearchOptions(k=2, signals=["colour"]))
        # removed again: the same store now refuses to open with other signals than it was built with
    unregister("trigram")
    with KnowledgeBase(s) as kb2, pytest.raises(Exception, match="re-index"):
        kb2.search("pump", SearchOptions(k=2))
