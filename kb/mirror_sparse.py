"""The local mirror's sparse vector: an inverted index (term → rows, values) plus document frequencies.

With the IDF modifier the query weight of term t is `value * ln((N - df + 0.5) / (df + 0.5) + 1)`, N the
live rows that have the sparse vector, df those among them whose vector lists t (local mode's
`_compute_idf`). A row's score is the float64 sum over shared terms in ascending term order, cast to
float32, and only rows sharing at least one term are candidates: the very operations of local mode's
`sparse_dot_product`, so scores are bit-identical. Appended rows get their own small posting lists
(`delta`), merged into the main ones when the mirror says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kb.embed.base import SparseVector

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Mask = npt.NDArray[np.bool_]
RowSparse = tuple[I64, F64]


@dataclass
class _Postings:
    """Posting lists of a set of rows: term → slice of (rows, values)."""

    slots: dict[int, int]
    indptr: I64
    rows: I32
    vals: F64

    @classmethod
    def build(cls, rows: Iterable[int], row_sparse: Sequence[RowSparse | None]) -> _Postings:
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


class SparseColumn:
    """The sparse vector of every row (None where a row has none)."""

    def __init__(self, *, idf: bool) -> None:
        self.idf = idf
        self.has: Mask = np.zeros(0, np.bool_)
        self.rows: list[RowSparse | None] = []
        self.df: dict[int, int] = {}
        self.n_docs = 0  # live rows with a sparse vector
        self.base = _Postings.build((), [])
        self.base_n = 0  # rows [0, base_n) are in `base`; later ones in `delta`
        self.delta: _Postings | None = None

    def grow(self, cap: int, new: int) -> None:
        self.has = np.concatenate([self.has, np.zeros(new - cap, np.bool_)])

    def append(self, r: int, sparse: SparseVector | None) -> None:
        """Row `r` (== len(rows)): its vector, or None (it may come later through `add_batch`)."""
        assert r == len(self.rows)
        if sparse is None:
            self.rows.append(None)
            return
        idx = np.asarray(list(sparse.indices), np.int64)
        val = np.asarray([float(x) for x in sparse.values], np.float64)
        self.rows.append((idx, val))
        self.has[r] = True
        self.n_docs += 1
        for t in idx.tolist():
            self.df[t] = self.df.get(t, 0) + 1

    def add_batch(self, rows: list[int], lens: list[int], idx: list[int], val: list[float]) -> None:
        """Vectors of rows already appended (as None), as one array each, split into per-row views."""
        all_idx = np.asarray(idx, np.int64)
        all_val = np.asarray(val, np.float64)
        cuts = np.cumsum(lens)[:-1]
        for r, ti, tv in zip(rows, np.split(all_idx, cuts), np.split(all_val, cuts), strict=True):
            self.rows[r] = (ti, tv)
        self.has[rows] = True
        self.n_docs += len(rows)
        terms, counts = np.unique(all_idx, return_counts=True)
        for t, c in zip(terms.tolist(), counts.tolist(), strict=True):
            self.df[t] = self.df.get(t, 0) + c

    def kill(self, r: int) -> None:
        sp = self.rows[r]
        if self.has[r]:
            self.has[r] = False
            self.n_docs -= 1
            if sp is not None:
                for t in sp[0].tolist():
                    left = self.df[t] - 1
                    if left:
                        self.df[t] = left
                    else:
                        del self.df[t]
        self.rows[r] = None

    def compact(self, keep: I64, cap: int) -> None:
        has = np.zeros(cap, np.bool_)
        has[: len(keep)] = self.has[keep]
        self.has = has
        self.rows = [self.rows[r] for r in keep.tolist()]

    def merge(self, n: int) -> None:
        """Rebuild the main posting lists over rows [0, n)."""
        self.base = _Postings.build(range(n), self.rows)
        self.base_n = n
        self.delta = None

    @staticmethod
    def accepts(q: SparseVector) -> bool:
        if len(q.indices) != len(q.values):
            return False
        if len(set(q.indices)) != len(q.indices) or any(i < 0 or i > 2**32 - 1 for i in q.indices):
            return False
        return not any(math.isnan(float(v)) for v in q.values)

    def search(self, q: SparseVector, base: Mask, n: int, k: int) -> list[tuple[int, float]]:
        """The top `k` (row, score) among the first `n` rows where `base` holds, best first."""
        pairs = sorted(zip((int(i) for i in q.indices), (float(v) for v in q.values), strict=True))
        acc = np.zeros(n, np.float64)
        hit = np.zeros(n, np.bool_)
        if self.delta is None and n > self.base_n:
            self.delta = _Postings.build(range(self.base_n, n), self.rows)
        segments = [self.base] + ([self.delta] if self.delta is not None else [])
        for term, value in pairs:
            if self.idf:
                df = self.df.get(term, 0)
                value = value * math.log((self.n_docs - df + 0.5) / (df + 0.5) + 1)
            for seg in segments:
                got = seg.get(term)
                if got is None:
                    continue
                rows, vals = got
                acc[rows] += value * vals
                hit[rows] = True
        mask = base & hit & self.has[:n]
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
        return [(int(found[i]), float(top_s[i])) for i in order]
