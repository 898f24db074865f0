"""Question → query vectors per signal → fused Qdrant query → live, diversified hits."""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kb.embed.batching import QueryBatcher
from kb.hits import Hit
from kb.images import ImageStore
from kb.index import QdrantIndex
from kb.labels import page_span
from kb.points import ScoredPoint, Vector
from kb.signals.configured import Embedders

log = logging.getLogger(__name__)

_CROSS = re.compile(
    r"\b(compare|comparison|contrast|differ\w*|difference|versus|vs\.?|agree\w*|disagree\w*|conflict\w*|"
    r"contradict\w*|inconsisten\w*|both|between|consistent|each other|cross-check)\b|比較|違い|相違",
    re.IGNORECASE,
)


def is_cross_document(question: str, doc_ids: Sequence[str] | None) -> bool:
    return bool(doc_ids and len(doc_ids) > 1) or bool(_CROSS.search(question))


@dataclass
class SearchOptions:
    k: int = 8
    doc_ids: Sequence[str] | None = None
    tags: Sequence[str] | None = None
    tenant: str | None = None
    signals: Sequence[str] | None = None  # subset of the configured ones; None = all
    diversify: bool | None = None  # None = automatic (cross-document questions)
    per_doc_quota: int = 0  # 0 = automatic


class Retriever:
    def __init__(
        self,
        index: QdrantIndex,
        embedders: Embedders,
        images: ImageStore,
        *,
        per_signal_limit: int = 50,
        weights: Mapping[str, float] | None = None,
        rrf_k: int | None = None,
        live_ids: Callable[[], frozenset[str]] | None = None,
    ) -> None:
        self.index = index
        self.embedders = embedders
        self.images = images
        self.per_signal_limit = per_signal_limit
        self.weights = dict(weights or {})
        self.rrf_k = rrf_k
        self.live_ids = live_ids
        # Concurrent searches (the API) share forward passes; a lone search is not delayed.
        self._batchers = {
            s.name: QueryBatcher(s.embed_queries, name=f"kb-{s.name}-queries") for s in embedders if s.batch_queries
        }

    def query_vectors(self, question: str, signals: Sequence[str] | None = None) -> dict[str, Vector]:
        """One query vector per signal in `signals` (None: every configured one), in configured order."""
        want = set(signals or self.embedders.signals)
        out: dict[str, Vector] = {}
        for s in self.embedders:
            if s.name in want:
                batcher = self._batchers.get(s.name)
                out[s.name] = batcher(question) if batcher is not None else s.embed_queries([question])[0]
        return out

    def search(self, question: str, opts: SearchOptions | None = None) -> list[Hit]:
        opts = opts or SearchOptions()
        vectors = self.query_vectors(question, opts.signals)
        if not vectors:
            return []
        diversify = is_cross_document(question, opts.doc_ids) if opts.diversify is None else opts.diversify
        live = self.live_ids() if self.live_ids else None
        # Over-fetch: diversity needs alternatives, and stale points (mid-ingest) are dropped.
        fetch = max(opts.k * (4 if diversify else 2), opts.k + 8)
        points = self.index.query(
            vectors,
            limit=fetch,
            per_signal_limit=max(self.per_signal_limit, fetch),
            weights=self.weights,
            rrf_k=self.rrf_k,
            doc_ids=opts.doc_ids,
            tags=opts.tags,
            tenant=opts.tenant,
        )
        if live is not None:
            points = [p for p in points if p.id in live]
        if diversify:
            quota = opts.per_doc_quota or max(1, math.ceil(opts.k / max(2, len(opts.doc_ids or []) or 2)))
            points = apply_quota(points, opts.k, quota)
        return [self._hit(p) for p in points[: opts.k]]

    def _hit(self, p: ScoredPoint) -> Hit:
        pl = p.payload
        keys = [str(k) for k in pl.get("image_keys", [])]
        start, end = pl.get("page_start"), pl.get("page_end")
        pages = page_span(int(start), int(end) if end is not None else None) if start is not None else None
        return Hit(
            doc=str(pl.get("doc_id", "")),
            title=str(pl.get("title", "")),
            heading_path=[str(h) for h in pl.get("heading_path", [])],
            pages=pages,
            text=str(pl.get("text", "")),
            score=p.score,
            scores=p.scores,
            image_keys=keys,
            images=[self.images.location(k) for k in keys],
            section_id=str(pl.get("section_id", "")),
            point_id=p.id,
            source_name=str(pl.get("source_name", "")),
            format=str(pl.get("format", "")),
            part=int(pl.get("part") or 1),
            parts=int(pl.get("parts") or 1),
            version=str(pl.get("version") or ""),
        )


def apply_quota(points: Sequence[ScoredPoint], k: int, quota: int) -> list[ScoredPoint]:
    """At most `quota` hits per document in rank order; back-fill with the rest if slots stay empty."""
    taken: list[ScoredPoint] = []
    skipped: list[ScoredPoint] = []
    per_doc: Counter[str] = Counter()
    for p in points:
        d = str(p.payload.get("doc_id"))
        if per_doc[d] < quota:
            per_doc[d] += 1
            taken.append(p)
        else:
            skipped.append(p)
        if len(taken) == k:
            break
    return taken + skipped[: max(0, k - len(taken))]
