"""The Qdrant index: one collection, one named vector per configured signal (kb.signals): dense, sparse
or multivector, as each signal's spec says.

Embedded local mode (`path=`) by default, a server when `KB_QDRANT_URL` is set: the same code.
The collection's metadata records which embedders built it; opening it with others is an error.
"""

from __future__ import annotations

import logging
import threading
import uuid
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from kb.embed.base import EmbedderSpec, SparseVector
from kb.errors import ConfigError, KbError, StoreLockedError
from kb.fsutil import record_store_holder, store_holder
from kb.local_mirror import LocalMirror, forget_client, is_local_client, mirror_for
from kb.points import IndexPoint as IndexPoint  # re-exported
from kb.points import ScoredPoint
from kb.points import point_id as point_id  # re-exported: callers name points through the index
from kb.rwlock import RWLock
from kb.settings import Settings

log = logging.getLogger(__name__)

KEYWORD_FIELDS = ("doc_id", "tags", "tenant", "format")


# Local mode's client is not thread-safe: one readers-writer lock per client, shared by every
# QdrantIndex on it. A server client needs none (the server orders concurrent requests).
_LOCKS: weakref.WeakKeyDictionary[QdrantClient, RWLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock_for(client: QdrantClient) -> RWLock | None:
    if not is_local_client(client):
        return None
    with _LOCKS_GUARD:
        lock = _LOCKS.get(client)
        if lock is None:
            lock = _LOCKS[client] = RWLock()
        return lock


class IndexError_(KbError):
    """The vector store refused an operation."""


def open_client(settings: Settings, *, location: str | None = None) -> QdrantClient:
    """`location=":memory:"` for throwaway stores; otherwise URL if configured, else the local folder."""
    if location is not None:
        return QdrantClient(location=location)
    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClient(url=settings.qdrant_url, api_key=key, timeout=settings.qdrant_timeout)
    settings.qdrant_path.mkdir(parents=True, exist_ok=True)
    try:
        client = QdrantClient(path=str(settings.qdrant_path))
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            who = store_holder(settings.qdrant_path)
            raise StoreLockedError(
                f"the embedded store {settings.qdrant_path} is open in "
                + (who or "another process")
                + " (local mode allows one process)",
                (f"stop {who.split(' (')[0]}" if who else "stop the other kb process (e.g. `kb ui`)")
                + ", point this command at it with KB_SERVER_URL if it is `kb serve`, "
                "or run a Qdrant server and set KB_QDRANT_URL",
            ) from exc
        raise
    record_store_holder(settings.qdrant_path)
    return client


class QdrantIndex:
    """`mirror=True`: in local mode, queries run on an in-process numpy mirror of the collection
    (kb.local_mirror) with the same results; every write below keeps it current. Server mode ignores it.
    Writes made on `client` directly, not through these methods, are not seen by the mirror."""

    def __init__(self, client: QdrantClient, collection: str, *, mirror: bool = True) -> None:
        self.client = client
        self.collection = collection
        self.mirror = mirror
        self._rw = _lock_for(client)

    def _reading(self) -> AbstractContextManager[None]:
        return self._rw.read() if self._rw is not None else nullcontext()

    def _writing(self) -> AbstractContextManager[None]:
        return self._rw.write() if self._rw is not None else nullcontext()

    def close(self) -> None:
        forget_client(self.client)
        self.client.close()

    def _mirror(self) -> LocalMirror | None:
        """The collection's mirror if one is loaded (writes keep it current; None in server mode)."""
        return mirror_for(self.client, self.collection, create=False)

    # -- schema -------------------------------------------------------------------------------
    def recorded_specs(self) -> dict[str, EmbedderSpec] | None:
        with self._reading():
            if not self.client.collection_exists(self.collection):
                return None
            meta = self.client.get_collection(self.collection).config.metadata or {}
        raw = meta.get("embedders", {})
        return {k: EmbedderSpec(str(v["model_id"]), int(v["dim"])) for k, v in raw.items()}

    def ensure(self, specs: Mapping[str, EmbedderSpec]) -> None:
        """Create the collection for these embedders, or check an existing one was built by them."""
        if not specs:
            raise ConfigError("no embedder configured", "enable at least one of KB_CLIP_MODEL, KB_TEXT_MODEL, KB_BM25")
        recorded = self.recorded_specs()
        if recorded is not None:
            if recorded != dict(specs):
                raise ConfigError(
                    f"collection {self.collection!r} was built with {_describe(recorded)}, "
                    f"but the settings give {_describe(specs)}",
                    "re-index: `kb reindex` (or restore the old model settings)",
                )
            return
        dense = {name: _vector_params(s) for name, s in specs.items() if s.vector_kind != "sparse"}
        sparse = {
            name: models.SparseVectorParams(modifier=models.Modifier.IDF if s.idf else None)
            for name, s in specs.items()
            if s.vector_kind == "sparse"
        }
        with self._writing():
            if self.client.collection_exists(self.collection):  # another thread made it meanwhile
                return self.ensure(specs)
            if (m := self._mirror()) is not None:
                m.invalidate()
            self.client.create_collection(
                self.collection,
                vectors_config=dense,
                sparse_vectors_config=sparse or None,
                metadata={"embedders": {k: v.as_dict() for k, v in specs.items()}},
            )
            with warnings.catch_warnings():  # local mode ignores payload indexes (and says so); servers use them
                warnings.simplefilter("ignore", UserWarning)
                for f in KEYWORD_FIELDS:
                    self.client.create_payload_index(self.collection, f, models.PayloadSchemaType.KEYWORD)

    def drop(self) -> None:
        with self._writing():
            if (m := self._mirror()) is not None:
                m.invalidate()
            if self.client.collection_exists(self.collection):
                self.client.delete_collection(self.collection)

    # -- writes -------------------------------------------------------------------------------
    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        with self._reading():
            found = self.client.retrieve(self.collection, list(ids), with_payload=False, with_vectors=False)
        return {str(p.id) for p in found}

    def upsert(self, points: Sequence[IndexPoint], batch: int = 128) -> None:
        for i in range(0, len(points), batch):
            structs = []
            for p in points[i : i + batch]:
                vec: dict[str, Any] = {k: _q(v) for k, v in p.vectors.items()}
                structs.append(models.PointStruct(id=p.id, vector=vec, payload=p.payload))
            with self._mirrored_write() as m:
                self.client.upsert(self.collection, structs, wait=True)
                if m is not None:
                    m.upsert(points[i : i + batch])

    def delete_doc(self, doc_id: str, *, keep: Iterable[str] = ()) -> None:
        """Remove a document's points, except the ids in `keep` (the live version)."""
        must: list[models.Condition] = [models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))]
        must_not: list[models.Condition] = []
        keep = list(keep)
        if keep:
            must_not.append(models.HasIdCondition(has_id=list[int | str | uuid.UUID](keep)))
        flt = models.Filter(must=must, must_not=must_not or None)
        with self._mirrored_write() as m:
            self.client.delete(self.collection, models.FilterSelector(filter=flt), wait=True)
            if m is not None:
                m.delete_doc(doc_id, keep)

    def delete_not_in(self, live: Iterable[str]) -> int:
        """Remove points no current manifest names (left by a crash between upsert and manifest)."""
        if not self.client.collection_exists(self.collection):
            return 0
        keep = set(live)
        stale: list[str] = []
        offset: Any = None
        with self._reading():
            while True:
                pts, offset = self.client.scroll(self.collection, limit=1024, offset=offset, with_payload=False)
                stale += [str(p.id) for p in pts if str(p.id) not in keep]
                if offset is None:
                    break
        if stale:
            with self._mirrored_write() as m:
                self.client.delete(self.collection, models.PointIdsList(points=stale), wait=True)  # type: ignore[arg-type]
                if m is not None:
                    m.delete_ids(stale)
        return len(stale)

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        """Merge `payload` into these points' payloads (e.g. new tags)."""
        if not ids:
            return
        with self._mirrored_write() as m:
            self.client.set_payload(self.collection, dict(payload), points=list(ids), wait=True)
            if m is not None:
                m.set_payload(ids, payload)

    @contextmanager
    def _mirrored_write(self) -> Iterator[LocalMirror | None]:
        """Holds the write lock and yields the loaded mirror, if any, to repeat the write on; a failed
        write invalidates it."""
        with self._writing():
            m = self._mirror()
            try:
                yield m
            except BaseException:
                if m is not None:
                    m.invalidate()
                raise

    def count(self, doc_id: str | None = None) -> int:
        with self._reading():
            if not self.client.collection_exists(self.collection):
                return 0
            flt = _filter(doc_ids=[doc_id]) if doc_id else None
            return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    # -- reads --------------------------------------------------------------------------------
    def query(
        self,
        queries: Mapping[str, np.ndarray | SparseVector],
        *,
        limit: int,
        per_signal_limit: int,
        weights: Mapping[str, float] | None = None,
        rrf_k: int | None = None,
        doc_ids: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        tenant: str | None = None,
    ) -> list[ScoredPoint]:
        """Prefetch per signal, fuse with (weighted) RRF server-side; one round trip that also
        returns each signal's own ranking, so every hit carries the score of each signal that found it.
        `rrf_k` None is Qdrant's default k. In local mode the mirror answers, with the same results."""
        with self._reading():
            if self.mirror and (m := mirror_for(self.client, self.collection, create=True)) is not None:
                hits = m.search(
                    self.client,
                    queries,
                    limit=limit,
                    per_signal_limit=per_signal_limit,
                    weights=weights,
                    rrf_k=rrf_k,
                    doc_ids=doc_ids,
                    tags=tags,
                    tenant=tenant,
                )
                if hits is not None:
                    found = self.client.retrieve(self.collection, [h.id for h in hits], with_payload=True)
                    payloads = {str(p.id): dict(p.payload or {}) for p in found}
                    return [ScoredPoint(h.id, h.score, payloads.get(h.id, {}), h.scores) for h in hits]
            flt = _filter(doc_ids=doc_ids, tags=tags, tenant=tenant)
            names = list(queries)
            per_signal = [
                models.QueryRequest(
                    query=_q(queries[n]), using=n, filter=flt, limit=per_signal_limit, with_payload=False
                )
                for n in names
            ]
            requests = list(per_signal)
            if len(names) > 1:
                w = [float((weights or {}).get(n, 1.0)) for n in names]
                weighted = any(x != 1.0 for x in w)
                fusion = (
                    models.RrfQuery(rrf=models.Rrf(k=rrf_k, weights=w if weighted else None))
                    if weighted or rrf_k is not None
                    else models.FusionQuery(fusion=models.Fusion.RRF)
                )
                prefetch = [
                    models.Prefetch(query=_q(queries[n]), using=n, filter=flt, limit=per_signal_limit) for n in names
                ]
                requests.append(models.QueryRequest(prefetch=prefetch, query=fusion, limit=limit, with_payload=True))
            else:
                requests[0] = models.QueryRequest(
                    query=_q(queries[names[0]]), using=names[0], filter=flt, limit=limit, with_payload=True
                )
            responses = self.client.query_batch_points(self.collection, requests)
            signal_scores: dict[str, dict[str, float]] = {}
            for n, resp in zip(names, responses[: len(names)], strict=True):
                for p in resp.points:
                    signal_scores.setdefault(str(p.id), {})[n] = float(p.score)
            return [
                ScoredPoint(str(p.id), float(p.score), dict(p.payload or {}), signal_scores.get(str(p.id), {}))
                for p in responses[-1].points
            ]


def _vector_params(spec: EmbedderSpec) -> models.VectorParams:
    """A dense vector, or a multivector compared late-interaction style (MaxSim, as ColBERT/ColPali)."""
    multi = (
        models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
        if spec.vector_kind == "multivector"
        else None
    )
    return models.VectorParams(size=spec.dim, distance=models.Distance.COSINE, multivector_config=multi)


def _q(v: np.ndarray | SparseVector) -> Any:
    if isinstance(v, SparseVector):
        return models.SparseVector(indices=v.indices, values=v.values)
    return v.tolist()


def _filter(
    *, doc_ids: Sequence[str] | None = None, tags: Sequence[str] | None = None, tenant: str | None = None
) -> models.Filter | None:
    must: list[models.Condition] = []
    if doc_ids:
        must.append(models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids))))
    if tags:
        must.append(models.FieldCondition(key="tags", match=models.MatchAny(any=list(tags))))
    if tenant is not None:
        must.append(models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant)))
    return models.Filter(must=must) if must else None


def _describe(specs: Mapping[str, EmbedderSpec]) -> str:
    return ", ".join(f"{k}={v.model_id}" + (f"/{v.dim}d" if v.dim else "") for k, v in sorted(specs.items()))
