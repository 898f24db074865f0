"""In-house BM25 as sparse vectors: documents carry the saturated TF part, Qdrant's IDF modifier
supplies the IDF, so the score is BM25 without any corpus statistics held here.

Tokens: NFKC + casefold, words of letters/digits; CJK runs become overlapping character bigrams
(single characters for one-character runs), the usual way to search unsegmented scripts.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence

from kb.embed.base import SparseVector

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\uff66-\uff9f"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_]+(?:[._'-][^\W_]+)*")
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")
# A small stop list: these carry no evidence and only add noise to long sections.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    ]
)


def tokenize(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if _CJK_RUN.match(tok):
            out.extend([tok] if len(tok) == 1 else [tok[i : i + 2] for i in range(len(tok) - 1)])
        elif tok not in _STOP:
            out.append(tok)
            if any(c in "._'-" for c in tok):  # "pg_dump.conf" also matches "conf"
                out.extend(p for p in re.split(r"[._'-]", tok) if p and p not in _STOP)
    return out


def term_id(term: str) -> int:
    """Stable across processes and machines (unlike hash()); 31 bits keeps Qdrant happy."""
    return zlib.crc32(term.encode()) & 0x7FFFFFFF


class Bm25Embedder:
    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_len: float = 256.0) -> None:
        self.k1, self.b, self.avg_len = k1, b, avg_len
        self.model_id = f"bm25:k1={k1}:b={b}:avg={avg_len:g}:tok=v1"

    def embed_passages(self, texts: Sequence[str]) -> list[SparseVector]:
        return [self._doc(t) for t in texts]

    def embed_queries(self, texts: Sequence[str]) -> list[SparseVector]:
        vecs = []
        for t in texts:
            ids = sorted({term_id(tok) for tok in tokenize(t)})
            vecs.append(SparseVector(ids, [1.0] * len(ids)))
        return vecs

    def _doc(self, text: str) -> SparseVector:
        toks = tokenize(text)
        counts: Counter[int] = Counter(term_id(t) for t in toks)
        norm = self.k1 * (1 - self.b + self.b * len(toks) / self.avg_len)
        ids = sorted(counts)
        return SparseVector(ids, [counts[i] * (self.k1 + 1) / (counts[i] + norm) for i in ids])
