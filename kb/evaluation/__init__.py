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
from kb.retrieve import SearchOptions
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
    """Recall@k (all evidence quotes covered by chunks of the right document) and MRR over answerable questions."""
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


def text_rag_baseline(
    docs: Sequence[tuple[str, str]], embed_model: str = "minilm-bundled", chunk_size: int = 512
) -> Callable[[Question, int], list[Chunk]]:
    """The plain text-RAG users build: LlamaIndex SentenceSplitter(512) + all-MiniLM-L6-v2, cosine top-k.
    `docs` is (file name, full extracted text); extraction is ours, so only chunking and retrieval differ."""
    import numpy as np
    from llama_index.core.node_parser import SentenceSplitter

    from kb.embed.dense import SentenceEmbedder

    splitter = SentenceSplitter(chunk_size=chunk_size)
    chunks = [Chunk(name, None, piece) for name, text in docs for piece in splitter.split_text(text)]
    emb = SentenceEmbedder(embed_model, device="cpu")
    mat = emb.embed_passages([c.text for c in chunks])

    def retrieve(q: Question, k: int) -> list[Chunk]:
        v = emb.embed_queries([q.question])[0]
        order = np.argsort(-(mat @ v))[:k]
        return [chunks[int(i)] for i in order]

    return retrieve


@dataclass
class EvalResult:
    reports: list[SignalReport]
    per_question: list[dict[str, Any]]
    extra: dict[str, Any]


def run_eval(
    settings: Settings,
    questions_path: Path,
    docs_dir: Path,
    *,
    ks: Sequence[int] = (1, 3, 5, 10),
    signals: Sequence[str] | None = None,  # None: each configured signal, then "fused"
    baseline: bool = True,
    store: Path | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> EvalResult:
    """Ingest `docs_dir` into a scratch store and score every signal on the questions."""
    from kb.service import KnowledgeBase

    questions = load_questions(questions_path)
    kmax = max(ks)
    scratch = scratch_settings(settings, store)
    extra: dict[str, Any] = {"questions": len(questions), "answerable": sum(1 for q in questions if q.evidence)}
    with KnowledgeBase(scratch) as kb:
        log(f"ingesting {docs_dir} into {scratch.data_dir} …")
        t0 = time.perf_counter()
        results = kb.ingest([docs_dir])
        secs = time.perf_counter() - t0
        failed = [f"{r.path.name}: {r.error}" for r in results if r.status == "failed"]
        n_sections = sum(r.sections for r in results)
        extra.update(
            documents=len(results) - len(failed),
            failed=failed,
            sections=n_sections,
            ingest_seconds=round(secs, 1),
            sections_per_second=round(n_sections / secs, 2) if secs else 0.0,
            embedders={k: v.model_id for k, v in kb.embedders.specs().items()},
        )
        configured = kb.embedders.signals
        if signals is None:
            signals = [*configured, "fused"]
        per_q: dict[str, dict[str, Any]] = {
            q.id: {"id": q.id, "type": q.type, "question": q.question, "signals": {}} for q in questions if q.evidence
        }
        reports: list[SignalReport] = []
        for sig in signals:
            use = None if sig == "fused" else sig.split("+")  # "text+bm25" fuses just those
            if use and any(u not in configured for u in use):
                log(f"skipping {sig}: not configured")
                continue
            kb.search("warm-up", SearchOptions(k=1, signals=use))
            hits_by_q: dict[str, list[Any]] = {}

            def retrieve(
                q: Question, use: list[str] | None = use, store: dict[str, list[Any]] = hits_by_q
            ) -> list[Chunk]:
                hits = kb.search(q.question, SearchOptions(k=kmax, signals=use))
                store[q.id] = hits
                return hit_chunks(hits)

            rep, _ = score(sig, questions, retrieve, ks)
            reports.append(rep)
            for qid, hits in hits_by_q.items():
                q = next(x for x in questions if x.id == qid)
                per_q[qid]["signals"][sig] = {
                    "rank": first_hit_rank(q, hit_chunks(hits)),
                    "hits": [h.to_json() for h in hits],
                }
            log(f"{sig}: R@5 {rep.recall.get(5, 0):.3f}")
        if baseline:
            docs = [(d.source_name, "\n\n".join(s.text for s in d.sections)) for d in kb.documents()]
            base = text_rag_baseline(docs)
            base_hits: dict[str, list[Chunk]] = {}

            def retrieve_base(q: Question) -> list[Chunk]:
                got = base(q, kmax)
                base_hits[q.id] = got
                return got

            rep, _ = score("baseline: SentenceSplitter(512)+MiniLM", questions, retrieve_base, ks)
            reports.append(rep)
            for qid, chunks in base_hits.items():
                q = next(x for x in questions if x.id == qid)
                per_q[qid]["signals"]["baseline"] = {
                    "rank": first_hit_rank(q, chunks),
                    "hits": [{"doc": c.doc, "text": c.text} for c in chunks],
                }
        extra.update(answer_metrics(kb, scratch, questions, per_q, log))
    return EvalResult(reports, list(per_q.values()), extra)


def answer_metrics(
    kb: Any,
    settings: Settings,
    questions: Sequence[Question],
    per_q: dict[str, dict[str, Any]],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Always: the evidence-in-context rate (evidence that reaches the VLM after the token budget).
    With a VLM configured: must_include accuracy, unanswerable handled, false refusals, cited evidence."""
    from kb.answer.backend import make_answerer
    from kb.answer.prepare import prepare_answer
    from kb.answer.run import generate

    answerer = make_answerer(settings)
    answerable = [q for q in questions if q.evidence]
    in_ctx = correct = cited_ok = false_refusals = 0
    unans_ok = 0
    unanswerable = [q for q in questions if not q.evidence]
    visual: list[int] = []
    for q in questions:
        prep = prepare_answer(kb, q.question)
        sent = [s.hit for s in prep.prompt.sources]
        visual.append(prep.prompt.visual_tokens)
        row = per_q.setdefault(q.id, {"id": q.id, "type": q.type, "question": q.question, "signals": {}})
        row["visual_tokens_sent"] = prep.prompt.visual_tokens
        row["sources_sent"] = len(sent)
        if q.evidence:
            ok = first_hit_rank(q, hit_chunks(sent)) is not None
            in_ctx += ok
            row["evidence_in_context"] = ok
        if answerer is None:
            continue
        ans = generate(prep, answerer, settings)
        row["answer"] = ans.text
        row["found"] = ans.found
        if q.evidence:
            good = all(norm(m) in norm(ans.text) for m in q.must_include)
            correct += good
            false_refusals += not ans.found
            cited = [c.hit for c in ans.citations if getattr(c, "cited", True)]
            cites_evidence = first_hit_rank(q, hit_chunks(cited)) is not None
            cited_ok += cites_evidence
            row.update(correct=good, cites_evidence=cites_evidence)
        else:
            unans_ok += not ans.found
            row["correct"] = not ans.found
    out: dict[str, Any] = {
        "evidence_in_context_rate": round(in_ctx / len(answerable), 3) if answerable else 0.0,
        # what focusing the sources saves: visual tokens the VLM gets per question (KB_ANSWER_MIN_RELEVANCE)
        "visual_tokens_per_question": round(sum(visual) / len(visual), 1) if visual else 0.0,
        "answer_min_relevance": settings.answer_min_relevance,
    }
    if answerer is None:
        out["answers"] = "no VLM configured (KB_VLM_BACKEND=none): answer metrics skipped"
    else:
        n = len(answerable) or 1
        out.update(
            vlm=f"{answerer.backend}:{answerer.model}",
            answer_accuracy_must_include=round(correct / n, 3),
            unanswerable_handled=f"{unans_ok}/{len(unanswerable)}",
            false_refusal_rate=round(false_refusals / n, 3),
            citations_cover_evidence=round(cited_ok / n, 3),
        )
    log(
        f"evidence in context: {out['evidence_in_context_rate']} · visual tokens sent per question: "
        f"{out['visual_tokens_per_question']} (relevance cut-off {settings.answer_min_relevance})"
    )
    return out


def eval_json(res: EvalResult, ks: Sequence[int]) -> dict[str, Any]:
    return {
        "summary": {
            r.name: {
                "recall": {str(k): r.recall[k] for k in ks},
                "recall_strict_pdf_page": {str(k): r.recall_strict[k] for k in ks},
                "recall_by_type": {t: {str(k): v[k] for k in ks} for t, v in r.recall_by_type.items()},
                "mrr": r.mrr,
                "latency_ms": {"p50": r.p(0.5), "p95": r.p(0.95)},
            }
            for r in res.reports
        },
        "run": res.extra,
        "questions": res.per_question,
    }
