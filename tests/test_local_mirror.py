"""Congruence: QdrantIndex on the in-process mirror answers exactly what Qdrant's local mode answers.

Both indexes share one client, so they see the same collection; `mirror=False` asks Qdrant, `mirror=True`
asks the mirror. Random points (dense vectors, sparse vectors over a shared vocabulary, a few docs,
tenants and tags, some points missing a vector), random queries with and without filters, weights and
rrf_k, single-signal and fused; then writes after the mirror is loaded, and the same again.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

from kb import local_mirror
from kb.embed.base import EmbedderSpec, SparseVector
from kb.index import IndexPoint, QdrantIndex, ScoredPoint, point_id
from kb.local_mirror import is_local_client, mirror_for, rrf
from kb.signals import BM25, IMAGE, TEXT

DIMS = {IMAGE: 8, TEXT: 6}
SPECS = {IMAGE: EmbedderSpec("clip:test", 8), TEXT: EmbedderSpec("st:test", 6), BM25: EmbedderSpec("bm25:test", 0)}
VOCAB = 60
DOCS = [f"d{i}" for i in range(7)]
TENANTS = ["t1", "t2"]
TAGS = ["ops", "spec", "howto", "faq"]
SCORE_TOL = 1e-4  # per-signal scores
TIE_TOL = 1e-6  # two points may swap places only when their scores are this close


@pytest.fixture(params=["memory", "path"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[QdrantIndex, QdrantIndex]]:
    client = QdrantClient(location=":memory:") if request.param == "memory" else QdrantClient(path=str(tmp_path / "q"))
    ref = QdrantIndex(client, "c", mirror=False)
    fast = QdrantIndex(client, "c", mirror=True)
    ref.ensure(SPECS)
    yield ref, fast
    client.close()


def _sparse(rng: random.Random, lo: int = 2, hi: int = 14) -> SparseVector:
    terms = rng.sample(range(VOCAB), rng.randint(lo, hi))
    return SparseVector(terms, [round(rng.uniform(0.05, 3.0), 4) for _ in terms])


def _points(rng: random.Random, n: int, tag: str = "", *, duplicates: bool = False) -> list[IndexPoint]:
    nrng = np.random.default_rng(rng.randrange(2**32))
    pts = []
    for i in range(n):
        dense = {k: nrng.normal(size=d).astype(np.float32) for k, d in DIMS.items()}
        if rng.random() < 0.08:
            del dense[IMAGE]  # a section without images
        sparse = None if rng.random() < 0.05 else _sparse(rng)
        tags: Any = rng.sample(TAGS, rng.randint(0, 2))
        if rng.random() < 0.05:
            tags = rng.choice(TAGS)  # a bare string: a keyword match still sees it
        payload = {
            "doc_id": rng.choice(DOCS),
            "tenant": rng.choice(TENANTS),
            "tags": tags,
            "text": f"section {tag}{i}",
            "page_start": i,
        }
        vectors: dict[str, Any] = {**dense, **({BM25: sparse} if sparse is not None else {})}
        pts.append(IndexPoint(point_id(f"{tag}{i}", []), payload, vectors))
    if duplicates:  # exact duplicates of vectors: ties, which either side may order either way
        for a, b in zip(pts[:6], pts[6:12], strict=True):
            b.vectors = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in a.vectors.items()}
    return pts


SINGLE = [[IMAGE], [TEXT], [BM25]]
FUSED = [[IMAGE, TEXT], [TEXT, BM25], [IMAGE, TEXT, BM25], [BM25, IMAGE]]


def _query(rng: random.Random, shapes: Sequence[list[str]] = SINGLE + FUSED) -> dict[str, Any]:
    nrng = np.random.default_rng(rng.randrange(2**32))
    signals = rng.choice(shapes)
    q: dict[str, np.ndarray | SparseVector] = {}
    for s in signals:
        if s == BM25:
            sp = _sparse(rng, 1, 5)
            if rng.random() < 0.2:  # a term no point has
                sp = SparseVector([*sp.indices, VOCAB + 7], [*sp.values, 1.0])
            q[s] = sp
        else:
            q[s] = nrng.normal(size=DIMS[s]).astype(np.float32)
    kw: dict[str, Any] = {"limit": rng.randint(1, 30), "per_signal_limit": rng.randint(1, 60)}
    if rng.random() < 0.4:
        kw["weights"] = {s: rng.choice([0.0, 0.3, 1.0, 2.5]) for s in signals}
    if rng.random() < 0.4:
        kw["rrf_k"] = rng.choice([1, 2, 10, 60])
    if rng.random() < 0.35:
        kw["doc_ids"] = rng.sample(DOCS, rng.randint(1, 3))
    if rng.random() < 0.3:
        kw["tags"] = rng.sample([*TAGS, "none"], rng.randint(1, 2))
    if rng.random() < 0.4:
        kw["tenant"] = rng.choice([*TENANTS, "other"])
    return {"queries": q, **kw}


def assert_same(ref: Sequence[ScoredPoint], got: Sequence[ScoredPoint], what: str) -> int:
    """Same ids in the same order, except that points whose scores are equal within TIE_TOL may swap;
    same fused score, same per-signal scores (within SCORE_TOL), same payload. Returns the swaps seen."""
    assert len(got) == len(ref), what
    swaps = 0
    by_id = {p.id: p for p in ref}
    for i, (a, b) in enumerate(zip(ref, got, strict=True)):
        assert abs(a.score - b.score) <= SCORE_TOL, f"{what}: rank {i} score {a.score} vs {b.score}"
        if a.id != b.id:
            swaps += 1
            assert abs(a.score - b.score) <= TIE_TOL, f"{what}: rank {i} {a.id} ({a.score}) vs {b.id} ({b.score})"
        if b.id in by_id:
            r = by_id[b.id]
            assert set(r.scores) == set(b.scores), f"{what}: signals of {b.id}"
            for s, v in r.scores.items():
                assert abs(v - b.scores[s]) <= SCORE_TOL, f"{what}: {s} score of {b.id}: {v} vs {b.scores[s]}"
            assert r.payload == b.payload, what
    return swaps


def _run_queries(
    ref: QdrantIndex, fast: QdrantIndex, rng: random.Random, n: int, shapes: Sequence[list[str]] = SINGLE + FUSED
) -> tuple[int, int]:
    swaps = nonempty = 0
    for j in range(n):
        kw = _query(rng, shapes)
        want = ref.query(**kw)
        got = fast.query(**kw)
        opts = {k: v for k, v in kw.items() if k != "queries"}
        swaps += assert_same(want, got, f"query {j}: {sorted(kw['queries'])} {opts}")
        nonempty += bool(want)
    return swaps, nonempty


def _mirror_len(index: QdrantIndex) -> int:
    m = mirror_for(index.client, index.collection, create=False)
    assert m is not None and m.loaded
    return len(m)


def test_mirror_answers_what_qdrant_answers(pair: tuple[QdrantIndex, QdrantIndex]) -> None:
    ref, fast = pair
    rng = random.Random(7)
    ref.upsert(_points(rng, 300))
    swaps, nonempty = _run_queries(ref, fast, rng, 200)
    assert nonempty > 150  # the filters don't make it vacuous
    assert swaps == 0  # no ties in random data: the very same rankings
    assert _mirror_len(fast) == ref.count() == 300


def test_ties_may_only_swap_places(pair: tuple[QdrantIndex, QdrantIndex]) -> None:
    """Equal scores (duplicate vectors) come in no defined order, from Qdrant either; one signal at a time,
    since a swap within one signal's ranking legitimately changes fused scores."""
    ref, fast = pair
    rng = random.Random(8)
    ref.upsert(_points(rng, 120, duplicates=True))
    _run_queries(ref, fast, rng, 80, SINGLE)


def test_writes_after_loading_reach_the_mirror(pair: tuple[QdrantIndex, QdrantIndex]) -> None:
    ref, fast = pair
    rng = random.Random(11)
    pts = _points(rng, 200)
    ref.upsert(pts)
    _run_queries(ref, fast, rng, 10)  # loads the mirror

    # new points and new versions of old ones (new vectors and payloads), through either index
    changed = _points(random.Random(12), 40)
    for old, new in zip(pts[:40], changed, strict=True):
        new.id = old.id
    fast.upsert(changed + _points(rng, 60, tag="new"))
    ref.delete_doc(DOCS[0], keep=[p.id for p in pts if p.payload["doc_id"] == DOCS[0]][:3])
    fast.delete_doc(DOCS[1])
    live = [p.id for p in pts[:150]] + [p.id for p in _points(random.Random(0), 60, tag="new")]
    assert ref.delete_not_in(live) > 0
    fast.set_payload(sorted(ref.existing_ids([p.id for p in pts[40:80]])), {"tags": ["moved"], "tenant": "t9"})
    assert _mirror_len(fast) == ref.count()
    _run_queries(ref, fast, rng, 120)

    kw: dict[str, Any] = {"queries": {TEXT: np.ones(6, np.float32)}, "limit": 50, "per_signal_limit": 50}
    assert {h.id for h in fast.query(**kw, tags=["moved"])} == {h.id for h in ref.query(**kw, tags=["moved"])} != set()
    assert not [h for h in fast.query(**kw, doc_ids=[DOCS[1]])]


def test_compaction_and_posting_merges_keep_answers(
    pair: tuple[QdrantIndex, QdrantIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_mirror, "COMPACT_MIN_DEAD", 10)
    monkeypatch.setattr(local_mirror, "DELTA_MIN_ROWS", 16)
    ref, fast = pair
    rng = random.Random(5)
    pts = _points(rng, 150)
    ref.upsert(pts)
    _run_queries(ref, fast, rng, 5)
    for k in range(4):  # appended rows (merged into the main postings past the threshold), then deletes
        fast.upsert(_points(rng, 30, tag=f"r{k}"))
        _run_queries(ref, fast, rng, 15)
    fast.delete_not_in([p.id for p in pts[:40]])  # most rows dead: compaction
    assert _mirror_len(fast) == ref.count() == 40
    _run_queries(ref, fast, rng, 40)


def test_drop_and_recreate(pair: tuple[QdrantIndex, QdrantIndex]) -> None:
    ref, fast = pair
    rng = random.Random(3)
    ref.upsert(_points(rng, 50))
    _run_queries(ref, fast, rng, 5)
    fast.drop()
    with pytest.raises(ValueError):  # Qdrant's own error for a missing collection, from both
        ref.query({TEXT: np.ones(6, np.float32)}, limit=3, per_signal_limit=3)
    with pytest.raises(ValueError):
        fast.query({TEXT: np.ones(6, np.float32)}, limit=3, per_signal_limit=3)
    fast.ensure(SPECS)
    assert fast.query({TEXT: np.ones(6, np.float32)}, limit=3, per_signal_limit=3) == []
    ref.upsert(_points(rng, 80, tag="again"))
    _run_queries(ref, fast, rng, 30)
    assert _mirror_len(fast) == 80


def test_reopened_store_is_mirrored(tmp_path: Path) -> None:
    """A store read back from disk holds un-normalised vectors until Qdrant first searches it."""
    rng = random.Random(9)
    client = QdrantClient(path=str(tmp_path / "q"))
    first = QdrantIndex(client, "c")
    first.ensure(SPECS)
    first.upsert(_points(rng, 120))
    client.close()
    client = QdrantClient(path=str(tmp_path / "q"))
    try:
        fast, ref = QdrantIndex(client, "c"), QdrantIndex(client, "c", mirror=False)
        kw = _query(rng)
        got = fast.query(**kw)  # the mirror loads before Qdrant has searched
        assert_same(ref.query(**kw), got, "reopened")
        _run_queries(ref, fast, rng, 30)
    finally:
        client.close()


def test_queries_qdrant_rejects_still_go_to_qdrant(pair: tuple[QdrantIndex, QdrantIndex]) -> None:
    ref, fast = pair
    ref.upsert(_points(random.Random(1), 20))
    with pytest.raises(ValueError):
        fast.query({TEXT: np.ones(5, np.float32)}, limit=3, per_signal_limit=3)  # wrong size
    with pytest.raises(ValueError):
        fast.query({BM25: SparseVector([1, 1], [1.0, 2.0])}, limit=3, per_signal_limit=3)  # repeated index


def test_rrf_is_qdrants() -> None:
    rng = random.Random(2)
    for _ in range(200):
        rankings = [rng.sample(range(40), rng.randint(0, 25)) for _ in range(rng.randint(1, 4))]
        weights = [rng.choice([0.0, 0.5, 1.0, 3.0]) for _ in rankings] if rng.random() < 0.5 else None
        k = rng.choice([None, 1, 2, 60])
        limit = rng.randint(1, 50)
        responses = [[models.ScoredPoint(id=i, version=0, score=0.0) for i in r] for r in rankings]
        want = reciprocal_rank_fusion(responses, limit=limit, ranking_constant_k=k, weights=weights)
        got = rrf([[str(i) for i in r] for r in rankings], limit=limit, k=k, weights=weights)
        assert [(str(p.id), p.score) for p in want] == got  # same order, bit-identical scores


def test_mirror_only_in_local_mode(tmp_path: Path) -> None:
    remote = QdrantClient(url="http://127.0.0.1:1")
    assert not is_local_client(remote)
    assert mirror_for(remote, "c", create=True) is None
    remote.close()
    local = QdrantClient(location=":memory:")
    assert is_local_client(local)
    off = QdrantIndex(local, "c", mirror=False)
    off.ensure(SPECS)
    off.upsert(_points(random.Random(4), 5))
    off.query({TEXT: np.ones(6, np.float32)}, limit=3, per_signal_limit=3)
    assert mirror_for(local, "c", create=False) is None  # mirror=False never builds one
    local.close()
