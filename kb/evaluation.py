"""The measuring stick: evidence recall@k and MRR per signal and fused, by question type,
plus ingest speed and query latency. Question format: ../shared/eval/public/questions.jsonl."""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.hits import Hit
from kb.settings import Settings

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "‟": '"'})


def norm(s: str) -> str:
    """Same as the eval set's verify.py: NFKC, straight quotes, casefold, collapsed whitespace."""
    s = unicodedata.normalize("NFKC", s).translate(_QUOTES).casefold()
    return re.sub(r"\s+", " ", s).strip()


@dataclass
class Question:
    id: str
    type: str
    question: str
    evidence: list[dict[str, Any]]
    must_include: list[str] = field(default_factory=list)
    answer: str = ""


def load_questions(path: Path) -> list[Question]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(
                Question(
                    d["id"],
                    d["type"],
                    d["question"],
                    d.get("evidence", []),
                    d.get("must_include", []),
                    d.get("answer", ""),
                )
            )
    return out


@dataclass
class Chunk:
    doc: str  # source file name
    pages: tuple[int, int] | None
    text: str


def first_hit_rank(q: Question, chunks: Sequence[Chunk], *, strict_pages: bool = False) -> int | None:
    """1-based rank at which every evidence quote is covered by a chunk of the right document."""
    worst = 0
    for ev in q.evidence:
        quote = norm(ev["quote"])
        rank = None
        for i, c in enumerate(chunks, 1):
            if c.doc != ev["doc"] or quote not in norm(c.text):
                continue
            if (
                strict_pages
                and ev["doc"].lower().endswith(".pdf")
                and (c.pages is None or not (c.pages[0] <= int(ev["page"]) <= c.pages[1]))
            ):
                continue
            rank = i
            break
        if rank is None:
            return None
        worst = max(worst, rank)
    return worst


def hit_chunks(hits: Sequence[Hit]) -> list[Chunk]:
    return [Chunk(h.source_name or h.doc, h.pages, h.text) for h in hits]


@dataclass
class SignalReport:
    name: str
    recall: dict[int, float]
    recall_by_type: dict[str, dict[int, float]]
    recall_strict: dict[int, float]
    mrr: float
    latency_ms: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        if not self.latency_ms:
            return 0.0
        xs = sorted(self.latency_ms)
        return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def score(
    name: str,
    questions: Sequence[Question],
    retrieve: Callable[[Question], list[Chunk]],
    ks: Sequence[int],
) -> tuple[SignalReport, dict[str, list[Chunk]]]:
    answerable = [q for q in questions if q.evidence]
    ranks: dict[str, int | None] = {}
    strict: dict[str, int | None] = {}
    lat: list[float] = []
    got: dict[str, list[Chunk]] = {}
    for q in answerable:
        t0 = time.perf_counter()
        chunks = retrieve(q)
        lat.append((time.perf_counter() - t0) * 1000)
        got[q.id] = chunks
        ranks[q.id] = first_hit_rank(q, chunks)
        strict[q.id] = first_hit_rank(q, chunks, strict_pages=True)

    def rec(ids: Sequence[str], table: dict[str, int | None], k: int) -> float:
        return sum(1 for i in ids if (r := table[i]) is not None and r <= k) / len(ids) if ids else 0.0

    ids = [q.id for q in answerable]
    by_type: dict[str, list[str]] = defaultdict(list)
    for q in answerable:
        by_type[q.type].append(q.id)
    report = SignalReport(
        name=name,
        recall={k: rec(ids, ranks, k) for k in ks},
        recall_by_type={t: {k: rec(v, ranks, k) for k in ks} for t, v in sorted(by_type.items())},
        recall_strict={k: rec(ids, strict, k) for k in ks},
        mrr=statistics.fmean([1 / r if r else 0.0 for r in (ranks[i] for i in ids)]) if ids else 0.0,
        latency_ms=lat,
    )
    return report, got


def markdown(reports: Sequence[SignalReport], ks: Sequence[int], extra: dict[str, Any]) -> str:
    head = "| signal | " + " | ".join(f"R@{k}" for k in ks) + " | MRR | strict R@5 | p50 ms | p95 ms |"
    lines = [head, "|" + "---|" * (len(ks) + 5)]
    for r in reports:
        lines.append(
            f"| {r.name} | "
            + " | ".join(f"{r.recall[k]:.3f}" for k in ks)
            + f" | {r.mrr:.3f} | {r.recall_strict.get(5, float('nan')):.3f} | {r.p(0.5):.1f} | {r.p(0.95):.1f} |"
        )
    types = sorted({t for r in reports for t in r.recall_by_type})
    lines += ["", "| signal | " + " | ".join(f"{t} R@5 / R@10" for t in types) + " |", "|" + "---|" * (len(types) + 1)]
    for r in reports:
        cells = [f"{r.recall_by_type[t].get(5, 0):.2f} / {r.recall_by_type[t].get(10, 0):.2f}" for t in types]
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    lines += ["", *(f"- {k}: {v}" for k, v in extra.items())]
    return "\n".join(lines)


def plot(reports: Sequence[SignalReport], ks: Sequence[int], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for r in reports:
        ax.plot(list(ks), [r.recall[k] for k in ks], marker="o", label=r.name)
    ax.set_xlabel("k")
    ax.set_ylabel("evidence recall@k")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)


def scratch_settings(base: Settings, data_dir: Path | None = None) -> Settings:
    d = data_dir or Path(tempfile.mkdtemp(prefix="kb-eval-"))
    return base.model_copy(update={"data_dir": d, "qdrant_url": None})
