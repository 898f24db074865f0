"""An in-process mirror of a local-mode Qdrant collection, for exact search at numpy speed.

Qdrant's local mode (`QdrantClient(path=...)` / `":memory:"`) searches in pure Python: every query
scores BM25 with a per-point merge loop and checks the payload filter point by point, ~9 s at 20k
points. Local mode is single-process by design (a second process cannot open the folder), so a copy
of the collection kept in this process is coherent as long as every write goes through `QdrantIndex`,
which forwards each write here after Qdrant accepted it.

What is mirrored, and how it reproduces local mode's answers (one module per kind of vector, the signal seam):

* dense named vectors: kb/mirror_dense.py (float32 matrices, float64 re-scoring at the cut);
* the sparse vector: kb/mirror_sparse.py (inverted index and document frequencies, bit-identical scores);
* other kinds (multivectors) and more than one sparse vector: not mirrored; Qdrant answers those queries.
* payload fields used by filters (doc_id, tags, tenant): string values per point (a list is
  unwrapped one level, as local mode's `value_by_key` does), inverted to value → rows.
* fusion: Qdrant's RRF, `Σ 1/((rank+1)/weight + k - 1)`, k=2 when unset, sources in query order,
  points in first-seen order, stable sort, the same float operations in the same order.

Upserts append rows (an updated point's old row dies); deletes mark rows dead. Dead rows are
compacted away when they outnumber live ones; appended rows' sparse postings are merged into the main
ones when they grow.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client import QdrantClient, models

from kb.embed.base import SparseVector
from kb.mirror_dense import DenseColumn
from kb.mirror_sparse import SparseColumn
from kb.points import IndexPoint

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

DEFAULT_RRF_K = 2  # qdrant_client.hybrid.fusion.DEFAULT_RANKING_CONSTANT_K
FILTER_KEYS = ("doc_id", "tags", "tenant")
_LOAD_BATCH = 2048
COMPACT_MIN_DEAD = 1024  # compact when dead rows exceed this and the live ones
DELTA_MIN_ROWS = 2048  # merge appended rows' postings into the main ones past max(this, main rows / 4)


def is_local_client(client: QdrantClient) -> bool:
    """True for local mode (`path=` or `":memory:"`), where search runs in Python in this process."""
    try:
        from qdrant_client.local.qdrant_local import QdrantLocal
    except ImportError:  # pragma: no cover - a client build without local mode
        return False
    return isinstance(getattr(client, "_client", None), QdrantLocal)


# One mirror per (client, collection), shared by every QdrantIndex on that client, so a write through
# any of them reaches it. Mirrors hold no reference to the client, so the registry never keeps one alive.
_REGISTRY: weakref.WeakKeyDictionary[QdrantClient, dict[str, LocalMirror]] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def mirror_for(client: QdrantClient, collection: str, *, create: bool) -> LocalMirror | None:
    """The mirror of this local-mode collection (made if `create`), or None (server mode, or none yet)."""
    with _REGISTRY_LOCK:
        per_client = _REGISTRY.get(client)
        if per_client is None:
            if not create or not is_local_client(client):
                return None
            per_client = _REGISTRY[client] = {}
        found = per_client.get(collection)
        if found is None and create:
            found = per_client[collection] = LocalMirror(collection)
        return found


def forget_client(client: QdrantClient) -> None:
    with _REGISTRY_LOCK:
        _REGISTRY.pop(client, None)


@dataclass(frozen=True)
class MirrorHit:
    id: str
    score: float
    scores: dict[str, float]


class LocalMirror:
    """Rows of one collection; see the module doc. Thread-safe (one lock around reads and writes)."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self._lock = threading.RLock()
        self._reset()

    # -- state --------------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.loaded = False
        self.supported = True
        self._dense: dict[str, DenseColumn] = {}
        self._sparse: str | None = None  # the sparse vector's name
        self._sp: SparseColumn | None = None
        self._n = 0  # rows used (live and dead)
        self._dead = 0
        self._ids: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._alive: Mask = np.zeros(0, np.bool_)
        self._row_fvals: list[dict[str, tuple[str, ...]]] = []
        self._fidx: dict[str, dict[str, set[int]]] = {k: {} for k in FILTER_KEYS}
        self._fcache: dict[tuple[str, str], I64] = {}

    def invalidate(self) -> None:
        """Forget everything; the next query loads the collection again."""
        with self._lock:
            self._reset()

    def __len__(self) -> int:
        return len(self._row_of)

    # -- loading --------------------------------------------------------------------------------------
    def ensure_loaded(self, client: QdrantClient) -> bool:
        """Load on first use. False when the collection is missing or has a layout the mirror can't serve."""
        with self._lock:
            if self.loaded:
                return self.supported
            if not client.collection_exists(self.collection):
                return False
            self._reset()
            params = client.get_collection(self.collection).config.params
            self.supported = self._read_schema(params)
            if self.supported:
                self._load_points(client)
            self.loaded = True
            return self.supported

    def _read_schema(self, params: models.CollectionParams) -> bool:
        vectors = params.vectors
        if not isinstance(vectors, dict):  # an unnamed vector: not a layout QdrantIndex creates
            return False
        for name, vp in vectors.items():
            if vp.multivector_config is not None or vp.distance not in (models.Distance.COSINE, models.Distance.DOT):
                return False
            self._dense[name] = DenseColumn(int(vp.size), cosine=vp.distance == models.Distance.COSINE)
        sparse = params.sparse_vectors or {}
        if len(sparse) > 1:
            return False
        for name, sp in sparse.items():
            self._sparse = name
            self._sp = SparseColumn(idf=sp.modifier == models.Modifier.IDF)
        return True

    def _load_points(self, client: QdrantClient) -> None:
        offset: Any = None
        while True:
            records, offset = client.scroll(
                self.collection, limit=_LOAD_BATCH, offset=offset, with_payload=list(FILTER_KEYS), with_vectors=True
            )
            self._append_records(records)
            if offset is None:
                break
        self._merge_postings()

    def _append_records(self, records: Sequence[models.Record]) -> None:
        if not records:
            return
        dense: dict[str, tuple[list[int], list[Any]]] = {name: ([], []) for name in self._dense}
        sp_rows: list[int] = []
        sp_lens: list[int] = []
        sp_idx: list[int] = []
        sp_val: list[float] = []
        first = self._n
        self._grow(self._n + len(records))
        for i, rec in enumerate(records):
            r = first + i
            vec = rec.vector if isinstance(rec.vector, dict) else {}
            for name in self._dense:
                v = vec.get(name)
                if v is not None:
                    dense[name][0].append(r)
                    dense[name][1].append(v)
            self._add_row(str(rec.id), rec.payload or {}, None, r)
            sp = vec.get(self._sparse) if self._sparse else None
            if isinstance(sp, models.SparseVector):
                sp_rows.append(r)
                sp_lens.append(len(sp.indices))
                sp_idx.extend(sp.indices)
                sp_val.extend(sp.values)
        for name, (rows, values) in dense.items():
            if rows:
                self._set_dense(name, np.asarray(rows, np.int64), np.asarray(values, np.float32))
        if sp_rows and self._sp is not None:  # the whole batch's sparse vectors at once
            self._sp.add_batch(sp_rows, sp_lens, sp_idx, sp_val)

    def _grow(self, need: int) -> None:
        cap = len(self._alive)
        if need <= cap:
            return
        new = max(need, cap * 2, 64)
        self._alive = np.concatenate([self._alive, np.zeros(new - cap, np.bool_)])
        for col in self._dense.values():
            col.grow(cap, new)
        if self._sp is not None:
            self._sp.grow(cap, new)

    def _set_dense(self, name: str, rows: I64, values: npt.NDArray[np.float32]) -> None:
        try:
            self._dense[name].set(rows, values)
        except ValueError as exc:
            raise ValueError(f"vector {name!r}: {exc}") from None

    def _add_row(self, pid: str, payload: Mapping[str, Any], sparse: SparseVector | None, r: int) -> None:
        """Row `r` (already allocated, r == self._n) for point `pid`; dense vectors are set by the caller."""
        assert r == self._n
        self._n += 1
        self._ids.append(pid)
        self._row_of[pid] = r
        self._alive[r] = True
        if self._sp is not None:
            self._sp.append(r, sparse)
        fvals = {k: _str_values(payload.get(k)) for k in FILTER_KEYS if k in payload}
        self._row_fvals.append(fvals)
        for k, vs in fvals.items():
            for v in vs:
                self._fidx[k].setdefault(v, set()).add(r)

    def _kill_row(self, r: int) -> None:
        pid = self._ids[r]
        if pid is None:
            return
        self._ids[r] = None
        self._row_of.pop(pid, None)
        self._alive[r] = False
        for col in self._dense.values():
            col.kill(r)
        if self._sp is not None:
            self._sp.kill(r)
        for k, vs in self._row_fvals[r].items():
            for v in vs:
                rows = self._fidx[k].get(v)
                if rows is not None:
                    rows.discard(r)
                    if not rows:
                        del self._fidx[k][v]
        self._row_fvals[r] = {}
        self._dead += 1

    # -- writes (called by QdrantIndex after Qdrant accepted them) -----------------------------------
    def upsert(self, points: Sequence[IndexPoint]) -> None:
        with self._lock:
            if not self.loaded or not self.supported or not points:
                return
            try:
                # the last write of an id wins, as in Qdrant; an updated point's old row dies
                points = list({_norm_id(p.id): p for p in points}.values())
                for p in points:
                    old = self._row_of.get(_norm_id(p.id))
                    if old is not None:
                        self._kill_row(old)
                first = self._n
                self._grow(self._n + len(points))
                for i, p in enumerate(points):
                    sparse = p.vectors.get(self._sparse) if self._sparse else None
                    self._add_row(
                        _norm_id(p.id), p.payload, sparse if isinstance(sparse, SparseVector) else None, first + i
                    )
                for name in self._dense:
                    rows = [first + i for i, p in enumerate(points) if name in p.vectors]
                    if rows:
                        vals = np.stack([np.asarray(p.vectors[name], np.float32) for p in points if name in p.vectors])
                        self._set_dense(name, np.asarray(rows, np.int64), vals)
                self._after_write()
            except Exception:
                self._reset()  # never serve a half-applied write: reload on the next query
                raise

    def delete_ids(self, ids: Iterable[str]) -> None:
        with self._lock:
            if not self.loaded or not self.supported:
                return
            for pid in ids:
                r = self._row_of.get(_norm_id(pid))
                if r is not None:
                    self._kill_row(r)
            self._after_write()

    def delete_doc(self, doc_id: str, keep: Iterable[str] = ()) -> None:
        """Mirror of `delete(filter: doc_id == doc_id and id not in keep)`."""
        with self._lock:
            if not self.loaded or not self.supported:
                return
            keep_set = {_norm_id(k) for k in keep}
            rows = list(self._fidx["doc_id"].get(doc_id, ()))
            self.delete_ids([pid for r in rows if (pid := self._ids[r]) is not None and pid not in keep_set])

    def set_payload(self, ids: Iterable[str], payload: Mapping[str, Any]) -> None:
        """Mirror of `set_payload` (merge: only the given keys change)."""
        with self._lock:
            if not self.loaded or not self.supported:
                return
            keys = [k for k in FILTER_KEYS if k in payload]
            if not keys:
                return
            for pid in ids:
                r = self._row_of.get(_norm_id(pid))
                if r is None:
                    continue
                fv = self._row_fvals[r]
                for k in keys:
                    for v in fv.get(k, ()):
                        rows = self._fidx[k].get(v)
                        if rows is not None:
                            rows.discard(r)
                            if not rows:
                                del self._fidx[k][v]
                    fv[k] = _str_values(payload[k])
                    for v in fv[k]:
                        self._fidx[k].setdefault(v, set()).add(r)
            self._fcache.clear()

    def _after_write(self) -> None:
        self._fcache.clear()
        if self._sp is not None:
            self._sp.delta = None
        live = len(self._row_of)
        if self._dead > COMPACT_MIN_DEAD and self._dead > live:
            self._compact()
        elif self._sp is not None and self._n - self._sp.base_n > max(DELTA_MIN_ROWS, self._sp.base_n // 4):
            self._merge_postings()

    def _merge_postings(self) -> None:
        if self._sp is not None:
            self._sp.merge(self._n)

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._n])
        remap = {int(old): new for new, old in enumerate(keep.tolist())}
        n = len(keep)
        cap = max(64, n * 2)
        self._alive = np.zeros(cap, np.bool_)
        self._alive[:n] = True
        for col in self._dense.values():
            col.compact(keep, cap)
        if self._sp is not None:
            self._sp.compact(keep, cap)
        kept = keep.tolist()
        self._ids = [self._ids[r] for r in kept]
        self._row_of = {pid: i for i, pid in enumerate(self._ids) if pid is not None}
        self._row_fvals = [self._row_fvals[r] for r in kept]
        for k in FILTER_KEYS:
            self._fidx[k] = {v: {remap[r] for r in rows} for v, rows in self._fidx[k].items()}
        self._n = n
        self._dead = 0
        self._merge_postings()

    # -- reads ----------------------------------------------------------------------------------------
    def can_answer(self, queries: Mapping[str, np.ndarray | SparseVector]) -> bool:
        """False for anything local mode would reject (unknown name, wrong size, NaN, bad sparse vector):
        those go to Qdrant, which raises its own error."""
        for name, q in queries.items():
            if isinstance(q, SparseVector):
                if name != self._sparse or not SparseColumn.accepts(q):
                    return False
            elif name not in self._dense or not self._dense[name].accepts(q):
                return False
        return True

    def search(
        self,
        client: QdrantClient,
        queries: Mapping[str, np.ndarray | SparseVector],
        *,
        limit: int,
        per_signal_limit: int,
        weights: Mapping[str, float] | None = None,
        rrf_k: int | None = None,
        doc_ids: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        tenant: str | None = None,
    ) -> list[MirrorHit] | None:
        """What `QdrantIndex.query` gets from Qdrant (without payloads), or None when the mirror can't
        answer (the caller asks Qdrant then)."""
        if limit <= 0 or per_signal_limit <= 0 or not queries:
            return None
        with self._lock:
            if not self.ensure_loaded(client) or not self.can_answer(queries):
                return None
            base = self._alive[: self._n].copy()
            if doc_ids:
                base &= self._match_any("doc_id", doc_ids)
            if tags:
                base &= self._match_any("tags", tags)
            if tenant is not None:
                base &= self._match_any("tenant", [tenant])
            names = list(queries)
            k_each = per_signal_limit if len(names) > 1 else limit
            ranked: list[list[tuple[str, float]]] = []
            for n in names:
                q = queries[n]
                if isinstance(q, SparseVector):
                    assert self._sp is not None  # can_answer checked the name
                    found = self._sp.search(q, base, self._n, k_each)
                else:
                    found = self._dense[n].search(np.asarray(q), base, self._n, k_each)
                ranked.append([(self._pid(r), score) for r, score in found])
        if len(names) == 1:
            return [MirrorHit(pid, s, {names[0]: s}) for pid, s in ranked[0]]
        signal_scores: dict[str, dict[str, float]] = {}
        for n, lst in zip(names, ranked, strict=True):
            for pid, s in lst:
                signal_scores.setdefault(pid, {})[n] = s
        w = [float((weights or {}).get(n, 1.0)) for n in names]
        fused = rrf([[pid for pid, _ in lst] for lst in ranked], limit=limit, k=rrf_k, weights=w)
        return [MirrorHit(pid, s, signal_scores[pid]) for pid, s in fused]

    def _match_any(self, key: str, values: Sequence[str]) -> Mask:
        mask = np.zeros(self._n, np.bool_)
        for v in values:
            if not isinstance(v, str):
                continue
            rows = self._fcache.get((key, v))
            if rows is None:
                rows = self._fcache[(key, v)] = np.fromiter(self._fidx[key].get(v, ()), np.int64)
            mask[rows] = True
        return mask

    def _pid(self, r: int) -> str:
        pid = self._ids[r]
        assert pid is not None
        return pid


def rrf(
    rankings: Sequence[Sequence[str]], *, limit: int, k: int | None = None, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Qdrant's reciprocal rank fusion (qdrant_client.hybrid.fusion.reciprocal_rank_fusion), operation for
    operation: same float sums in the same order, same first-seen order among equal scores."""
    const = k if k is not None else DEFAULT_RRF_K
    scores: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        w = weights[i] if weights is not None else 1.0
        for pos, pid in enumerate(ranking):
            s = 0.0 if w <= 0 else 1 / ((pos + 1.0) / w + const - 1.0)
            scores[pid] = scores[pid] + s if pid in scores else s
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)[:limit]


def _str_values(value: Any) -> tuple[str, ...]:
    """The values a keyword match compares with: the value, or a list's items (one level), strings only."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(v for v in items if isinstance(v, str))


def _norm_id(pid: object) -> str:
    """Qdrant's canonical form of a point id (UUIDs lower-case and hyphenated), as scroll returns it."""
    s = str(pid)
    try:
        return str(uuid.UUID(s))
    except ValueError:
        return s
