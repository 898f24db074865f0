"""An in-process mirror of a local-mode Qdrant collection, for exact search at numpy speed.

Qdrant's local mode (`QdrantClient(path=...)` / `":memory:"`) searches in pure Python: every query
scores BM25 with a per-point merge loop and checks the payload filter point by point, ~9 s at 20k
points. Local mode is single-process by design (a second process cannot open the folder), so a copy
of the collection kept in this process is coherent as long as every write goes through `QdrantIndex`,
which forwards each write here after Qdrant accepted it.

What is mirrored, and how it reproduces local mode's answers:

* dense named vectors: float32 matrices, rows normalised the way local mode does at insert
  (`v / ‖v‖` when ‖v‖ > EPSILON, for cosine). Scored with one matrix-vector product in float32;
  the candidates around the cut are re-scored in float64 (local mode multiplies its float32 rows by
  the float64 query), so scores and order agree to ~1e-7.
* the sparse vector: an inverted index (term → rows, values) plus document frequencies. With the
  IDF modifier the query weight of term t is `value * ln((N - df + 0.5) / (df + 0.5) + 1)`, N the live
  points that have the sparse vector, df those among them whose vector lists t (local mode's
  `_compute_idf` over `sparse_vectors_idf`). A point's score is the float64 sum over shared terms in
  ascending term order, cast to float32, and only points sharing at least one term are candidates:
  the very operations of local mode's `sparse_dot_product`, so scores are bit-identical.
* payload fields used by filters (doc_id, tags, tenant): string values per point (a list is
  unwrapped one level, as local mode's `value_by_key` does), inverted to value → rows.
* fusion: Qdrant's RRF, `Σ 1/((rank+1)/weight + k - 1)`, k=2 when unset, sources in query order,
  points in first-seen order, stable sort, the same float operations in the same order.

Upserts append rows (an updated point's old row dies); deletes mark rows dead. Dead rows are
compacted away when they outnumber live ones; appended rows get their own small posting lists,
merged into the main ones when they grow.
"""

from __future__ import annotations

import math
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
from kb.points import IndexPoint

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Mask = npt.NDArray[np.bool_]

EPSILON = 1.1920929e-7  # qdrant_client.local.distances.EPSILON: local mode's "zero norm" threshold
DEFAULT_RRF_K = 2  # qdrant_client.hybrid.fusion.DEFAULT_RANKING_CONSTANT_K
FILTER_KEYS = ("doc_id", "tags", "tenant")
_LOAD_BATCH = 2048
COMPACT_MIN_DEAD = 1024  # compact when dead rows exceed this and the live ones
DELTA_MIN_ROWS = 2048  # merge appended rows' postings into the main ones past max(this, main rows / 4)
_RESCORE_MARGIN = 1e-5  # float32 scores of unit vectors are off by ~1e-7; re-score everything this close


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


@dataclass
class _Postings:
    """Posting lists of a set of rows: term → slice of (rows, values)."""

    slots: dict[int, int]
    indptr: I64
    rows: I32
    vals: F64

    @classmethod
    def build(cls, rows: Iterable[int], row_sparse: Sequence[tuple[I64, F64] | None]) -> _Postings:
        terms: list[I64] = []
        vals: list[F64] = []
        owners: list[I32] = []
        for r in rows:
            sp = row_sparse[r]
            if sp is None or not len(sp[0]):
                continue
            terms.append(sp[0])
            vals.append(sp[1])
            owners.append(np.full(len(sp[0]), r, dtype=np.int32))
        if not terms:
            return cls({}, np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float64))
        t = np.concatenate(terms)
        order = np.argsort(t, kind="stable")
        t = t[order]
        uniq, starts = np.unique(t, return_index=True)
        indptr = np.append(starts, len(t)).astype(np.int64)
        slots = dict(zip(uniq.tolist(), range(len(uniq)), strict=True))
        return cls(slots, indptr, np.concatenate(owners)[order], np.concatenate(vals)[order])

    def get(self, term: int) -> tuple[I32, F64] | None:
        s = self.slots.get(term)
        if s is None:
            return None
        a, b = int(self.indptr[s]), int(self.indptr[s + 1])
        return self.rows[a:b], self.vals[a:b]


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
        self._dense_cosine: dict[str, bool] = {}  # name → normalise (cosine) or not (dot)
        self._dims: dict[str, int] = {}
        self._sparse: str | None = None
        self._idf = False
        self._n = 0  # rows used (live and dead)
        self._dead = 0
        self._ids: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._alive: Mask = np.zeros(0, np.bool_)
        self._dense: dict[str, F32] = {}
        self._has: dict[str, Mask] = {}
        self._has_sparse: Mask = np.zeros(0, np.bool_)
        self._row_sparse: list[tuple[I64, F64] | None] = []
        self._df: dict[int, int] = {}
        self._n_sparse = 0
        self._base = _Postings.build((), [])
        self._base_n = 0  # rows [0, base_n) are in _base; later ones in _delta
        self._delta: _Postings | None = None
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
            self._dense_cosine[name] = vp.distance == models.Distance.COSINE
            self._dims[name] = int(vp.size)
            self._dense[name] = np.zeros((0, int(vp.size)), np.float32)
            self._has[name] = np.zeros(0, np.bool_)
        sparse = params.sparse_vectors or {}
        if len(sparse) > 1:
            return False
        for name, sp in sparse.items():
            self._sparse = name
            self._idf = sp.modifier == models.Modifier.IDF
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
        dense: dict[str, tuple[list[int], list[Any]]] = {name: ([], []) for name in self._dense_cosine}
        sp_rows: list[int] = []
        sp_lens: list[int] = []
        sp_idx: list[int] = []
        sp_val: list[float] = []
        first = self._n
        self._grow(self._n + len(records))
        for i, rec in enumerate(records):
            r = first + i
            vec = rec.vector if isinstance(rec.vector, dict) else {}
            for name in self._dense_cosine:
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
        if sp_rows:  # sparse vectors of the whole batch at once: one array each, split into per-row views
            self._add_sparse_batch(sp_rows, sp_lens, sp_idx, sp_val)

    def _add_sparse_batch(self, sp_rows: list[int], sp_lens: list[int], sp_idx: list[int], sp_val: list[float]) -> None:
        all_idx = np.asarray(sp_idx, np.int64)
        all_val = np.asarray(sp_val, np.float64)
        cuts = np.cumsum(sp_lens)[:-1]
        for r, ti, tv in zip(sp_rows, np.split(all_idx, cuts), np.split(all_val, cuts), strict=True):
            self._row_sparse[r] = (ti, tv)
        self._has_sparse[sp_rows] = True
        self._n_sparse += len(sp_rows)
        terms, counts = np.unique(all_idx, return_counts=True)
        for t, c in zip(terms.tolist(), counts.tolist(), strict=True):
            self._df[t] = self._df.get(t, 0) + c

    def _grow(self, need: int) -> None:
        cap = len(self._alive)
        if need <= cap:
            return
        new = max(need, cap * 2, 64)
        self._alive = np.concatenate([self._alive, np.zeros(new - cap, np.bool_)])
        self._has_sparse = np.concatenate([self._has_sparse, np.zeros(new - cap, np.bool_)])
        for name, dim in self._dims.items():
            m = np.zeros((new, dim), np.float32)
            m[:cap] = self._dense[name]
            self._dense[name] = m
            self._has[name] = np.concatenate([self._has[name], np.zeros(new - cap, np.bool_)])

    def _set_dense(self, name: str, rows: I64, values: F32) -> None:
        if values.ndim != 2 or values.shape[1] != self._dims[name]:
            raise ValueError(f"vector {name!r}: expected dimension {self._dims[name]}, got {values.shape}")
        if self._dense_cosine[name]:
            norms = np.linalg.norm(values, axis=1)
            ok = norms > EPSILON  # local mode leaves (near-)zero vectors as they are
            values[ok] = values[ok] / norms[ok, None]
        self._dense[name][rows] = values
        self._has[name][rows] = True

    def _add_row(self, pid: str, payload: Mapping[str, Any], sparse: Any, r: int) -> None:
        """Row `r` (already allocated, r == self._n) for point `pid`; dense vectors are set by the caller."""
        assert r == self._n
        self._n += 1
        self._ids.append(pid)
        self._row_of[pid] = r
        self._alive[r] = True
        if sparse is not None:
            idx = np.asarray(list(sparse.indices), np.int64)
            val = np.asarray([float(x) for x in sparse.values], np.float64)
            self._row_sparse.append((idx, val))
            self._has_sparse[r] = True
            self._n_sparse += 1
            for t in idx.tolist():
                self._df[t] = self._df.get(t, 0) + 1
        else:
            self._row_sparse.append(None)
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
        for name in self._has:
            self._has[name][r] = False
        sp = self._row_sparse[r]
        if self._has_sparse[r]:
            self._has_sparse[r] = False
            self._n_sparse -= 1
            if sp is not None:
                for t in sp[0].tolist():
                    left = self._df[t] - 1
                    if left:
                        self._df[t] = left
                    else:
                        del self._df[t]
        self._row_sparse[r] = None
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
                    self._add_row(_norm_id(p.id), p.payload, sparse, first + i)
                for name in self._dense_cosine:
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
        self._delta = None
        live = len(self._row_of)
        if self._dead > COMPACT_MIN_DEAD and self._dead > live:
            self._compact()
        elif self._n - self._base_n > max(DELTA_MIN_ROWS, self._base_n // 4):
            self._merge_postings()

    def _merge_postings(self) -> None:
        self._base = _Postings.build(range(self._n), self._row_sparse)
        self._base_n = self._n
        self._delta = None

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._n])
        remap = {int(old): new for new, old in enumerate(keep.tolist())}
        n = len(keep)
        cap = max(64, n * 2)
        self._alive = np.zeros(cap, np.bool_)
        self._alive[:n] = True
        self._has_sparse = _take(self._has_sparse, keep, cap)
        for name in self._dims:
            m = np.zeros((cap, self._dims[name]), np.float32)
            m[:n] = self._dense[name][keep]
            self._dense[name] = m
            self._has[name] = _take(self._has[name], keep, cap)
        kept = keep.tolist()
        self._ids = [self._ids[r] for r in kept]
        self._row_of = {pid: i for i, pid in enumerate(self._ids) if pid is not None}
        self._row_sparse = [self._row_sparse[r] for r in kept]
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
                if name != self._sparse or len(q.indices) != len(q.values):
                    return False
                if len(set(q.indices)) != len(q.indices) or any(i < 0 or i > 2**32 - 1 for i in q.indices):
                    return False
                if any(math.isnan(float(v)) for v in q.values):
                    return False
            else:
                a = np.asarray(q)
                if name not in self._dims or a.shape != (self._dims[name],) or bool(np.isnan(a).any()):
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
                    ranked.append(self._search_sparse(q, base, k_each))
                else:
                    ranked.append(self._search_dense(n, np.asarray(q), base, k_each))
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

    def _search_dense(self, name: str, q: np.ndarray, base: Mask, k: int) -> list[tuple[str, float]]:
        mask = base & self._has[name][: self._n]
        valid = np.flatnonzero(mask)
        if not len(valid):
            return []
        q64 = q.astype(np.float64)
        if self._dense_cosine[name]:
            norm = float(np.linalg.norm(q64))
            q64 = q64 / (norm if norm != 0.0 else EPSILON)
        m = self._dense[name]
        q32 = q64.astype(np.float32)
        # a narrow filter gathers its rows; otherwise one product over all rows is cheaper than the gather
        s32 = m[valid] @ q32 if len(valid) < self._n // 4 else (m[: self._n] @ q32)[valid]
        # candidates: the top k by float32, plus anything within float32 error of the k-th
        if len(valid) > k:
            kth = float(np.partition(s32, len(s32) - k)[len(s32) - k])
            cand = np.flatnonzero(s32 >= kth - _RESCORE_MARGIN)
        else:
            cand = np.arange(len(valid))
        rows = valid[cand]
        s64 = m[rows].astype(np.float64) @ q64
        order = np.lexsort((rows, -s64))[:k]
        return [(self._pid(int(rows[i])), float(s64[i])) for i in order]

    def _search_sparse(self, q: SparseVector, base: Mask, k: int) -> list[tuple[str, float]]:
        pairs = sorted(zip((int(i) for i in q.indices), (float(v) for v in q.values), strict=True))
        acc = np.zeros(self._n, np.float64)
        hit = np.zeros(self._n, np.bool_)
        if self._delta is None and self._n > self._base_n:
            self._delta = _Postings.build(range(self._base_n, self._n), self._row_sparse)
        segments = [self._base] + ([self._delta] if self._delta is not None else [])
        n_docs = self._n_sparse
        for term, value in pairs:
            if self._idf:
                df = self._df.get(term, 0)
                value = value * math.log((n_docs - df + 0.5) / (df + 0.5) + 1)
            for seg in segments:
                got = seg.get(term)
                if got is None:
                    continue
                rows, vals = got
                acc[rows] += value * vals
                hit[rows] = True
        mask = base & hit & self._has_sparse[: self._n]
        valid = np.flatnonzero(mask)
        if not len(valid):
            return []
        s32 = acc[valid].astype(np.float32)
        if len(valid) > k:
            kth = np.partition(s32, len(s32) - k)[len(s32) - k]
            top: I64 = np.flatnonzero(s32 >= kth)  # the top k and every tie at the cut, then ordered
        else:
            top = np.arange(len(valid), dtype=np.int64)
        found = valid[top]
        top_s = s32[top]
        order = np.lexsort((found, -top_s))[:k]
        return [(self._pid(int(found[i])), float(top_s[i])) for i in order]

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


def _take(a: Mask, keep: I64, cap: int) -> Mask:
    out = np.zeros(cap, np.bool_)
    out[: len(keep)] = a[keep]
    return out
