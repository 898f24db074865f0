"""The local mirror's dense vectors: one float32 matrix per named vector, searched exactly.

Rows are normalised the way Qdrant's local mode does at insert (`v / ‖v‖` when ‖v‖ > EPSILON, for
cosine). A query is scored with one matrix-vector product in float32; the candidates around the cut are
re-scored in float64 (local mode multiplies its float32 rows by the float64 query), so scores and order
agree with local mode to ~1e-7.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

EPSILON = 1.1920929e-7  # qdrant_client.local.distances.EPSILON: local mode's "zero norm" threshold
_RESCORE_MARGIN = 1e-5  # float32 scores of unit vectors are off by ~1e-7; re-score everything this close


class DenseColumn:
    """One named dense vector of every row (rows without it are marked absent)."""

    def __init__(self, dim: int, *, cosine: bool) -> None:
        self.dim = dim
        self.cosine = cosine  # normalise rows and queries (cosine) or not (dot)
        self.m: F32 = np.zeros((0, dim), np.float32)
        self.has: Mask = np.zeros(0, np.bool_)

    def grow(self, cap: int, new: int) -> None:
        m = np.zeros((new, self.dim), np.float32)
        m[:cap] = self.m
        self.m = m
        self.has = np.concatenate([self.has, np.zeros(new - cap, np.bool_)])

    def set(self, rows: I64, values: F32) -> None:
        if values.ndim != 2 or values.shape[1] != self.dim:
            raise ValueError(f"expected dimension {self.dim}, got {values.shape}")
        if self.cosine:
            norms = np.linalg.norm(values, axis=1)
            ok = norms > EPSILON  # local mode leaves (near-)zero vectors as they are
            values[ok] = values[ok] / norms[ok, None]
        self.m[rows] = values
        self.has[rows] = True

    def kill(self, r: int) -> None:
        self.has[r] = False

    def compact(self, keep: I64, cap: int) -> None:
        n = len(keep)
        m = np.zeros((cap, self.dim), np.float32)
        m[:n] = self.m[keep]
        self.m = m
        has = np.zeros(cap, np.bool_)
        has[:n] = self.has[keep]
        self.has = has

    def accepts(self, q: np.ndarray) -> bool:
        a = np.asarray(q)
        return a.shape == (self.dim,) and not bool(np.isnan(a).any())

    def search(self, q: np.ndarray, base: Mask, n: int, k: int) -> list[tuple[int, float]]:
        """The top `k` (row, score) among the first `n` rows where `base` holds, best first."""
        mask = base & self.has[:n]
        valid = np.flatnonzero(mask)
        if not len(valid):
            return []
        q64 = q.astype(np.float64)
        if self.cosine:
            norm = float(np.linalg.norm(q64))
            q64 = q64 / (norm if norm != 0.0 else EPSILON)
        m = self.m
        q32 = q64.astype(np.float32)
        # a narrow filter gathers its rows; otherwise one product over all rows is cheaper than the gather
        s32 = m[valid] @ q32 if len(valid) < n // 4 else (m[:n] @ q32)[valid]
        # candidates: the top k by float32, plus anything within float32 error of the k-th
        if len(valid) > k:
            kth = float(np.partition(s32, len(s32) - k)[len(s32) - k])
            cand = np.flatnonzero(s32 >= kth - _RESCORE_MARGIN)
        else:
            cand = np.arange(len(valid))
        rows = valid[cand]
        s64 = m[rows].astype(np.float64) @ q64
        order = np.lexsort((rows, -s64))[:k]
        return [(int(rows[i]), float(s64[i])) for i in order]
