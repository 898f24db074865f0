"""Index contract: the same behaviour in Qdrant's in-memory and on-disk local modes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from kb.embed.base import EmbedderSpec
from kb.embed.bm25 import Bm25Embedder
from kb.errors import ConfigError, StoreLockedError
from kb.index import IndexPoint, QdrantIndex, open_client, point_id
from kb.retrieve import apply_quota
from kb.settings import Settings
from kb.signals import BM25, IMAGE, TEXT

SPECS = {IMAGE: EmbedderSpec("clip:test", 4), TEXT: EmbedderSpec("st:test", 3), BM25: EmbedderSpec("bm25:test", 0)}
BM = Bm25Embedder()


@pytest.fixture(params=["memory", "path"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QdrantIndex]:
    client = QdrantClient(location=":memory:") if request.param == "memory" else QdrantClient(path=str(tmp_path / "q"))
    idx = QdrantIndex(client, "t")
    idx.ensure(SPECS)
    yield idx
    idx.close()


def _pt(doc: str, n: int, text: str, img: list[float], txt: list[float], tags: list[str] | None = None) -> IndexPoint:
    pid = point_id(f"{doc}-{n}", [f"k{n}"])
    return IndexPoint(
        id=pid,
        payload={"doc_id": doc, "text": text, "tags": tags or [], "tenant": "t1", "heading_path": [f"s{n}"]},
        vectors={
            IMAGE: np.array(img, np.float32),
            TEXT: np.array(txt, np.float32),
            BM25: BM.embed_passages([text])[0],
        },
    )


def _fill(index: QdrantIndex) -> list[IndexPoint]:
    pts = [
        _pt("a", 1, "vacuum reclaims storage", [1, 0, 0, 0], [1, 0, 0], ["ops"]),
        _pt("a", 2, "pg_dump writes a script", [0, 1, 0, 0], [0, 1, 0]),
        _pt("b", 1, "page size is 4096 bytes", [0, 0, 1, 0], [0, 0, 1], ["spec"]),
        _pt("b", 2, "maximum page count", [0, 0, 0, 1], [0.5, 0.5, 0]),
    ]
    index.upsert(pts)
    return pts


def test_fused_query_carries_per_signal_scores(index: QdrantIndex) -> None:
    pts = _fill(index)
    q = {
        IMAGE: np.array([1, 0, 0, 0], np.float32),
        TEXT: np.array([1, 0, 0], np.float32),
        BM25: BM.embed_queries(["vacuum"])[0],
    }
    hits = index.query(q, limit=3, per_signal_limit=10)
    assert hits[0].id == pts[0].id
    assert set(hits[0].scores) == {IMAGE, TEXT, BM25}
    assert hits[0].scores[IMAGE] == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload["text"] == "vacuum reclaims storage"


def test_bm25_alone_and_weights(index: QdrantIndex) -> None:
    pts = _fill(index)
    hits = index.query({BM25: BM.embed_queries(["page count"])[0]}, limit=2, per_signal_limit=10)
    assert hits[0].id == pts[3].id and BM25 in hits[0].scores
    q = {IMAGE: np.array([0, 1, 0, 0], np.float32), TEXT: np.array([0, 0, 1], np.float32)}
    by_image = index.query(q, limit=1, per_signal_limit=10, weights={IMAGE: 5.0, TEXT: 0.1})
    by_text = index.query(q, limit=1, per_signal_limit=10, weights={IMAGE: 0.1, TEXT: 5.0})
    assert by_image[0].id == pts[1].id and by_text[0].id == pts[2].id


def test_filters_doc_tags_tenant(index: QdrantIndex) -> None:
    _fill(index)
    q = {TEXT: np.array([1, 0, 0], np.float32)}
    assert {h.payload["doc_id"] for h in index.query(q, limit=10, per_signal_limit=10, doc_ids=["b"])} == {"b"}
    assert [h.payload["tags"] for h in index.query(q, limit=10, per_signal_limit=10, tags=["spec"])] == [["spec"]]
    assert index.query(q, limit=10, per_signal_limit=10, tenant="other") == []
    assert len(index.query(q, limit=10, per_signal_limit=10, tenant="t1")) == 4


def test_upsert_is_idempotent_and_delete_keeps_live(index: QdrantIndex) -> None:
    pts = _fill(index)
    _fill(index)
    assert index.count() == 4
    assert index.existing_ids([pts[0].id, point_id("zz", [])]) == {pts[0].id}
    index.delete_doc("a", keep=[pts[1].id])
    assert index.count("a") == 1 and index.count("b") == 2
    index.delete_doc("b")
    assert index.count() == 1


def test_mismatched_embedders_is_a_clear_error(index: QdrantIndex) -> None:
    index.ensure(SPECS)  # same models: fine
    other = dict(SPECS)
    other[TEXT] = EmbedderSpec("st:other", 3)
    with pytest.raises(ConfigError, match="re-index"):
        index.ensure(other)


def test_second_process_on_local_store_gets_clear_message(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    first = open_client(s)
    try:
        with pytest.raises(StoreLockedError, match="KB_QDRANT_URL"):
            open_client(s)
    finally:
        first.close()


def test_server_settings_build_a_remote_client(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, qdrant_url="http://127.0.0.1:1", qdrant_api_key="k")
    client = open_client(s)  # connects lazily: building it is the code path compose uses
    assert client._client.__class__.__name__ == "QdrantRemote"
    client.close()


def test_quota_spreads_hits_across_documents() -> None:
    from kb.index import ScoredPoint

    pts = [ScoredPoint(str(i), 1.0 - i / 10, {"doc_id": d}) for i, d in enumerate("aaaabb")]
    got = [p.payload["doc_id"] for p in apply_quota(pts, 4, 2)]
    assert got == ["a", "a", "b", "b"]
    assert [p.payload["doc_id"] for p in apply_quota(pts[:4], 3, 1)] == ["a", "a", "a"]  # back-fill
