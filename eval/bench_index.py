"""Index benchmark: ingest throughput per stage, and fused query latency at growing corpus sizes.

    python eval/bench_index.py [--docs DIR] [--sizes 1000,20000] [--queries N] [--clip small|tiny|vit-b-32]
                               [--json OUT] [--workdir DIR] [--no-ref-clip] [--no-profile]

Part 1 ingests the public docs through the real `KnowledgeBase.ingest` → `Committer` → `DocumentIndexer`
path (Qdrant local mode, `QdrantClient(path=...)`), with thin timing wrappers around the renderer,
`png_bytes`, the embedders and the index, so every stage is measured inside the production code path.
Throughput is in indexed sections (one point = one rendered part) per second.

Part 2 grows the same store to each size with synthetic sections (perturbed real embeddings, BM25 of
text resampled from the docs' vocabulary, real payloads and catalog manifests; no images rendered) and
times `Retriever.search` (CLIP text + MiniLM + BM25 fused by RRF, tenant filter as `KnowledgeBase.search`
sets it), split into query embedding, the catalog's live-id check and the Qdrant query.

CLIP weights are random (no real CLIP weights offline): the numbers are about speed only. `--clip small`
(default) is a ViT-B-32 layout (224 px, 32 px patches, 512-d output, so the index sees production-sized
vectors) at half width and depth; `tiny` is tests/tiny_models; `vit-b-32` is the full default architecture.
Dense text uses the real bundled MiniLM (all-MiniLM-L6-v2). Everything runs on the CPU.

Torch runs with 1 intra-op thread by default (`--torch-threads 0` for torch's own choice): on 2 cores shared
with other work, 2 threads spin-wait on each other and one MiniLM query went from ~19 ms to 100-800 ms.
Part 2 keeps its store on /dev/shm when present: local-mode upsert commits sqlite once per point, which is
fsync-bound on disk (part 1 shows that cost); searches in local mode run from memory either way. Searches
per size stop early (at least 5) after `--query-budget` seconds, since local mode scores BM25 in Python.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

DEFAULT_DOCS = ROOT.parent / "shared" / "eval" / "public" / "docs"
DEFAULT_QUESTIONS = ROOT.parent / "shared" / "eval" / "public" / "questions.jsonl"
QUERY_TARGET_MS = 150.0
SYNTH_SECTIONS_PER_DOC = 40

# ViT-B-32 is embed 512, vision width 768 x 12 layers, text width 512 x 12 layers. Half of both.
SMALL_CLIP = {
    "embed_dim": 512,
    "vision_cfg": {"image_size": 224, "layers": 6, "width": 384, "patch_size": 32, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 6},
}


# -- timing helpers ------------------------------------------------------------------------------
class Clock:
    """Accumulates seconds per key; `lap()` returns and resets the per-call totals."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.total[key] += time.perf_counter() - t0
                self.calls[key] += 1

        return timed

    def lap(self) -> dict[str, float]:
        out = dict(self.total)
        self.total.clear()
        self.calls.clear()
        return out


class Timed:
    """Proxy that times the named methods of `inner` into `clock` (other attributes pass through)."""

    def __init__(self, inner: Any, clock: Clock, keys: dict[str, str]) -> None:
        self._inner, self._clock, self._keys = inner, clock, keys

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        key = self._keys.get(name)
        return self._clock.wrap(key, attr) if key and callable(attr) else attr


def pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=float), q)) if xs else float("nan")


def fmt_rate(n: int, s: float) -> str:
    return f"{n / s:9.1f}" if s > 0 else "      inf"


# -- models --------------------------------------------------------------------------------------
def clip_embedder(kind: str, folder: Path) -> tuple[Any, str]:
    """A ClipEmbedder (random weights) built through the same loading code users run."""
    from kb.embed.clip import ClipEmbedder

    if kind == "tiny":
        from tests.tiny_models import TINY_CLIP, build_tiny_clip

        cfg, ckpt = build_tiny_clip(folder)
        desc = f"tests/tiny_models glyph-tiny-clip ({json.dumps(TINY_CLIP)})"
        return ClipEmbedder("glyph-tiny-clip", str(ckpt), device="cpu", model_config=cfg), desc
    if kind == "vit-b-32":
        return ClipEmbedder("ViT-B-32", None, device="cpu"), "open_clip ViT-B-32 architecture, random init"
    from tests.tiny_models import build_random_clip

    cfg, ckpt = build_random_clip(folder, "glyph-bench-small-clip", SMALL_CLIP, "small_clip.pt")
    desc = (
        "glyph-bench-small-clip = ViT-B-32 layout at half width/depth: vision 224px/32px patches, width 384 x 6 "
        "layers; text width 256 x 6 layers; 512-d output; random init"
    )
    return ClipEmbedder("glyph-bench-small-clip", str(ckpt), device="cpu", model_config=cfg), desc


# -- part 1: ingest ------------------------------------------------------------------------------
def bench_ingest(kb: Any, docs: list[Path], clock: Clock) -> dict[str, Any]:
    import ingest.pipeline as pipeline
    from kb.fsutil import writer_lock
    from kb.ingest_commit import Committer

    stamps: dict[Path, list[tuple[str, float]]] = defaultdict(list)

    def on_stage(path: Path, stage: str) -> None:
        stamps[path].append((stage, time.perf_counter()))

    real_png = pipeline.png_bytes
    pipeline.png_bytes = clock.wrap("render.png", real_png)  # render_document looks it up at call time
    try:
        indexer = kb.indexer()
        indexer.ensure()
        ing = Committer(kb.settings, kb.catalog, kb.images, indexer)
        ing.preparer.renderer = Timed(
            ing.preparer.renderer, clock, {"paginate": "render.paginate", "render": "render.draw"}
        )
        per_doc = []
        with writer_lock(kb.settings.data_dir):
            for f in docs:
                clock.lap()
                t0 = time.perf_counter()
                res = ing.ingest_file(f, on_stage=on_stage)
                t_end = time.perf_counter()
                if res.status != "ingested":
                    raise SystemExit(f"ingest of {f.name} gave {res.status}: {res.error}")
                laps = clock.lap()
                st = dict(stamps[f])
                stage = {
                    "read": st["parse"] - t0,
                    "parse": st["section"] - st["parse"],
                    "section": st["render"] - st["section"],
                    "render": st["store"] - st["render"],
                    "store": st["index"] - st["store"],
                    "index": st["done"] - st["index"],
                    "total": t_end - t0,
                }
                per_doc.append({"doc": f.name, "sections": res.sections, "stages": stage, "laps": laps})
    finally:
        pipeline.png_bytes = real_png
    return {"per_doc": per_doc}


def ingest_table(per_doc: list[dict[str, Any]]) -> list[tuple[str, float]]:
    tot: dict[str, float] = defaultdict(float)
    for d in per_doc:
        for k, v in d["stages"].items():
            tot[k] += v
        for k, v in d["laps"].items():
            tot[k] += v
    embed = tot["embed.clip_image"] + tot["embed.minilm"] + tot["embed.bm25"]
    write = tot["qdrant.existing_ids"] + tot["qdrant.upsert"]
    rows = [
        ("parse (parse_file)", tot["parse"] + tot["read"]),
        ("section (build_sections)", tot["section"]),
        ("render total", tot["render"]),
        ("  paginate", tot["render.paginate"]),
        ("  render (draw)", tot["render.draw"]),
        ("  png encode", tot["render.png"]),
        ("store (token count, PNG files)", tot["store"]),
        ("embed total", embed),
        ("  CLIP images", tot["embed.clip_image"]),
        ("  MiniLM passages", tot["embed.minilm"]),
        ("  BM25 passages", tot["embed.bm25"]),
        ("upsert (existing_ids + upsert)", write),
        ("manifest + finalize", tot["index"] - embed - write),
        ("end to end", tot["total"]),
    ]
    return rows


# -- part 2: synthetic growth and queries --------------------------------------------------------
class Synth:
    """Makes synthetic documents from the real points: perturbed vectors, resampled text, real payloads."""

    def __init__(self, kb: Any, seed: int = 0) -> None:
        from kb.embed.bm25 import Bm25Embedder

        self.kb = kb
        self.rng = np.random.default_rng(seed)
        self.bm25 = Bm25Embedder()
        pts, offset = [], None
        while True:
            batch, offset = kb.index.client.scroll(
                kb.index.collection, limit=256, offset=offset, with_payload=True, with_vectors=True
            )
            pts += batch
            if offset is None:
                break
        self.base = sorted(pts, key=lambda p: (p.payload["doc_id"], p.payload["ordinal"]))
        words = [w for p in self.base for w in re.findall(r"\S+", p.payload["text"])]
        counts = Counter(words)
        self.vocab = np.array(list(counts))
        freq = np.array([counts[w] for w in self.vocab], dtype=float)
        self.p = freq / freq.sum()
        self.n_docs = 0

    def seed(self, dst: Any) -> int:
        """Copy the real points and manifests into `dst` (the query store); later docs go there too."""
        from kb.embed.base import SparseVector
        from kb.index import IndexPoint
        from kb.signals import BM25

        for rec in self.kb.catalog:
            dst.catalog.put(rec)
        points = []
        for p in self.base:
            vec = dict(p.vector)
            sp = vec.pop(BM25, None)
            sparse = SparseVector(list(sp.indices), list(sp.values)) if sp is not None else None
            dense = {k: np.asarray(v, dtype=np.float32) for k, v in vec.items()}
            vectors: dict[str, Any] = {**dense, **({BM25: sparse} if sparse is not None else {})}
            points.append(IndexPoint(id=str(p.id), payload=dict(p.payload), vectors=vectors))
        dst.indexer().ensure()
        dst.index.upsert(points)
        self.kb = dst
        return len(points)

    def _vec(self, v: Sequence[float], cos: float = 0.85) -> np.ndarray:
        base = np.asarray(v, dtype=np.float32)
        sigma = np.sqrt((1 / cos**2 - 1) / base.size)
        out = base + self.rng.normal(0, sigma, base.size).astype(np.float32)
        return out / np.linalg.norm(out)

    def _text(self, text: str, swap: float = 0.35) -> str:
        words = re.findall(r"\S+", text) or ["empty"]
        mask = self.rng.random(len(words)) < swap
        repl = self.rng.choice(self.vocab, size=int(mask.sum()), p=self.p)
        out = np.array(words, dtype=object)
        out[mask] = repl
        return " ".join(out)

    def add_doc(self, n_sections: int, clock: Clock) -> int:
        from kb.catalog import DocumentRecord, ImageRecord, SectionRecord
        from kb.index import IndexPoint, point_id
        from kb.indexer import DocumentIndexer, passage_text
        from kb.signals import BM25, IMAGE, TEXT

        j = self.n_docs
        self.n_docs += 1
        start = (j * 7) % len(self.base)
        bases = [self.base[(start + i) % len(self.base)] for i in range(n_sections)]
        doc_id = f"synth-{j:05d}"
        title = f"{bases[0].payload['title']} (synthetic {j})"
        sections, vecs = [], []
        for i, b in enumerate(bases):
            pl = b.payload
            text = self._text(pl["text"])
            key = f"{self.rng.integers(1 << 62):016x}" * 4
            sec = SectionRecord(
                section_id=f"{doc_id}#{i}",
                ordinal=i,
                heading_path=[*pl["heading_path"], f"part {i}"],
                page_start=pl.get("page_start"),
                page_end=pl.get("page_end"),
                kinds=["paragraph"],
                text=text,
                content_hash=f"{hash(text) & 0xFFFFFFFF:08x}",
                text_tokens=len(text.split()),
                images=[ImageRecord(key=key, width=812, height=560, visual_tokens=580)],
            )
            sec.point_id = point_id(sec.section_id, [key])
            sections.append(sec)
            vecs.append({IMAGE: self._vec(b.vector[IMAGE]), TEXT: self._vec(b.vector[TEXT])})
        rec = DocumentRecord(
            doc_id=doc_id,
            title=title,
            source_name=f"{doc_id}.html",
            source_path=f"/synthetic/{doc_id}.html",
            format="html",
            file_sha256="0" * 64,
            file_bytes=0,
            pages=None,
            ocr_used=False,
            render_fingerprint="synthetic",
            ingested_at="2025-01-01T00:00:00+00:00",
            tags=["synthetic"],
            warnings=[],
            sections=sections,
        )
        ix = DocumentIndexer(self.kb.index, self.kb.embedders, self.kb.settings.tenant)
        sparse = self.bm25.embed_passages([passage_text(title, s) for s in sections])
        points = [
            IndexPoint(id=str(s.point_id), payload=ix.payload(rec, s), vectors={**v, BM25: sp})
            for s, v, sp in zip(sections, vecs, sparse, strict=True)
        ]
        clock.wrap("fill.qdrant_upsert", self.kb.index.upsert)(points)
        clock.wrap("fill.catalog", self.kb.catalog.put)(rec)
        return len(points)


def grow_to(kb: Any, synth: Synth, size: int, clock: Clock) -> dict[str, Any]:
    have = kb.index.count()
    t0 = time.perf_counter()
    added = 0
    while have + added < size:
        added += synth.add_doc(min(SYNTH_SECTIONS_PER_DOC, size - have - added), clock)
    wall = time.perf_counter() - t0
    laps = clock.lap()
    return {
        "added": added,
        "seconds": wall,
        "qdrant_upsert_s": laps.get("fill.qdrant_upsert", 0.0),
        "catalog_s": laps.get("fill.catalog", 0.0),
        "count": kb.index.count(),
    }


def bench_queries(
    kb: Any, retriever: Any, clock: Clock, questions: list[str], n: int, budget_s: float
) -> dict[str, Any]:
    """Up to `n` timed searches, fewer (at least 5) when they would run past `budget_s`."""
    from kb.retrieve import SearchOptions

    opts = SearchOptions(k=kb.settings.top_k, tenant=kb.settings.tenant)
    for q in questions[:2]:  # warm-up (first-call allocations, the live-id cache)
        retriever.search(q, opts)
    clock.lap()
    rows: dict[str, list[float]] = defaultdict(list)
    n_hits = []
    t_begin = time.perf_counter()
    for i in range(n):
        if i >= 5 and time.perf_counter() - t_begin > budget_s:
            break
        q = questions[i % len(questions)]
        t0 = time.perf_counter()
        hits = retriever.search(q, opts)
        total = time.perf_counter() - t0
        laps = clock.lap()
        n_hits.append(len(hits))
        parts = {k: laps.get(k, 0.0) for k in ("q.clip_text", "q.minilm", "q.bm25", "q.live_ids", "q.qdrant")}
        for k, v in parts.items():
            rows[k].append(v * 1000)
        rows["q.embed"].append((parts["q.clip_text"] + parts["q.minilm"] + parts["q.bm25"]) * 1000)
        rows["q.other"].append((total - sum(parts.values())) * 1000)
        rows["total"].append(total * 1000)
    return {"ms": dict(rows), "hits_min": min(n_hits), "n": len(n_hits)}


def qdrant_breakdown(kb: Any, retriever: Any, questions: list[str], n: int, budget_s: float) -> dict[str, list[float]]:
    """Single-signal Qdrant queries with and without the tenant filter, and the fused query without it
    (at least 2 queries, fewer than `n` when they would run past `budget_s`)."""
    from qdrant_client import models

    from kb.index import _filter, _q

    flt = _filter(tenant=kb.settings.tenant)
    out: dict[str, list[float]] = defaultdict(list)
    limit = max(kb.settings.per_signal_limit, kb.settings.top_k * 2)
    t_begin = time.perf_counter()
    for i in range(n):
        if i >= 2 and time.perf_counter() - t_begin > budget_s:
            break
        vecs = retriever.query_vectors(questions[i % len(questions)])
        for name, v in vecs.items():
            for label, f in (("filter", flt), ("nofilter", None)):
                t0 = time.perf_counter()
                kb.index.client.query_points(
                    kb.index.collection, query=_q(v), using=name, query_filter=f, limit=limit, with_payload=False
                )
                out[f"{name}.{label}"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        kb.index.client.query_points(
            kb.index.collection,
            prefetch=[models.Prefetch(query=_q(v), using=k, limit=limit) for k, v in vecs.items()],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=kb.settings.top_k * 2,
            with_payload=True,
        )
        out["fused.nofilter"].append((time.perf_counter() - t0) * 1000)
    return dict(out)


def profile_query(kb: Any, retriever: Any, questions: list[str], n: int = 3, top: int = 12) -> str:
    from kb.retrieve import SearchOptions

    opts = SearchOptions(k=kb.settings.top_k, tenant=kb.settings.tenant)
    prof = cProfile.Profile()
    prof.enable()
    for q in questions[:n]:
        retriever.search(q, opts)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    keep, on = [], False
    for ln in lines:
        if ln.strip().startswith("ncalls"):
            on = True
        if on and ln.strip():
            keep.append(re.sub(r"\S*site-packages/", "", ln).replace(str(ROOT) + "/", ""))
    return "\n".join(keep)


def load_questions(path: Path, docs: list[Path]) -> list[str]:
    if path.is_file():
        qs = [json.loads(ln)["question"] for ln in path.read_text().splitlines() if ln.strip()]
        if qs:
            return qs
    return [f"what does {d.stem.replace('-', ' ')} say about limits" for d in docs]


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    ap.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    ap.add_argument("--sizes", default="1000,20000", help="corpus sizes (sections) for the query benchmark")
    ap.add_argument("--queries", type=int, default=30, help="timed searches per size")
    ap.add_argument("--breakdown-queries", type=int, default=8, help="queries for the per-signal Qdrant split")
    ap.add_argument("--clip", choices=["small", "tiny", "vit-b-32"], default="small")
    ap.add_argument("--no-ref-clip", action="store_true", help="skip the ViT-B-32 reference embedding timing")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile of the largest size")
    ap.add_argument(
        "--query-budget",
        type=float,
        default=90.0,
        help="seconds of timed searches per size before stopping early (at least 5 searches)",
    )
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads; 0 = torch default (see the module doc: 2 threads on 2 shared cores spin-wait)",
    )
    ap.add_argument(
        "--query-store", type=Path, default=None, help="folder for the part-2 store (default /dev/shm when present)"
    )
    ap.add_argument("--workdir", type=Path, default=None, help="keep the store here (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())

    import torch

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)

    from kb.embed.bm25 import Bm25Embedder
    from kb.embed.dense import SentenceEmbedder
    from kb.service import KnowledgeBase
    from kb.settings import Settings
    from kb.signals.configured import Embedders

    warnings.filterwarnings("ignore", message=".*[Ll]ocal mode.*")
    tmp = tempfile.TemporaryDirectory(prefix="bench_index_") if args.workdir is None else None
    work = Path(tmp.name) if tmp else args.workdir
    assert work is not None
    docs = sorted(p for p in args.docs.iterdir() if p.is_file())
    questions = load_questions(args.questions, docs)
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}}
    t_start = time.perf_counter()

    print(
        f"# bench_index: {len(docs)} docs from {args.docs}; cpus={os.cpu_count()} torch threads="
        f"{torch.get_num_threads()}; load avg {os.getloadavg()[0]:.1f}; ingest store: Qdrant local mode under {work}"
    )

    # models (load time reported separately; all CPU)
    clock = Clock()
    clip, clip_desc = clip_embedder(args.clip, work / "clip")
    text = SentenceEmbedder("minilm-bundled", device="cpu")
    t0 = time.perf_counter()
    clip.load()
    t_clip = time.perf_counter() - t0
    t0 = time.perf_counter()
    text.load()
    t_text = time.perf_counter() - t0
    print(f"# CLIP: {clip_desc}  [weights random: speed only]")
    print("# dense text: bundled all-MiniLM-L6-v2 (real weights); BM25: in-house Bm25Embedder")
    print(f"# model load: CLIP {t_clip:.2f}s, MiniLM {t_text:.2f}s")
    emb = Embedders.of(
        clip=Timed(clip, clock, {"embed_images": "embed.clip_image", "embed_texts": "q.clip_text"}),  # type: ignore[arg-type]
        text=Timed(text, clock, {"embed_passages": "embed.minilm", "embed_queries": "q.minilm"}),  # type: ignore[arg-type]
        bm25=Timed(Bm25Embedder(), clock, {"embed_passages": "embed.bm25", "embed_queries": "q.bm25"}),  # type: ignore[arg-type]
    )
    settings = Settings(
        data_dir=work / "data",
        clip_model=clip.model_name,
        clip_pretrained=clip.pretrained,
        text_model="minilm-bundled",
        device="cpu",
    )
    kb = KnowledgeBase(settings, embedders=emb)
    kb.index.upsert = clock.wrap("qdrant.upsert", kb.index.upsert)  # type: ignore[method-assign]
    kb.index.existing_ids = clock.wrap("qdrant.existing_ids", kb.index.existing_ids)  # type: ignore[method-assign]

    # warm-up: imports, fonts, first-call allocations (not timed as a stage)
    from ingest.pipeline import render_document
    from ingest.render import GlyphRenderer

    t0 = time.perf_counter()
    warm = min(docs, key=lambda p: p.stat().st_size)
    parts = render_document(warm, settings, GlyphRenderer(settings.render)).parts
    clip.embed_images([parts[0].image])
    text.embed_passages(["warm up"])
    print(f"# warm-up ({warm.name}: parse+render+embed once, untimed): {time.perf_counter() - t0:.2f}s")
    clock.lap()

    # -- part 1 --
    ing = bench_ingest(kb, docs, clock)
    n_sec = sum(d["sections"] for d in ing["per_doc"])
    n_built = n_sec
    rows = ingest_table(ing["per_doc"])
    total = dict(rows)["end to end"]
    print(f"\n## 1. Ingest throughput: {len(docs)} docs, {n_built} indexed sections (rendered parts)")
    print(f"{'stage':34s} {'seconds':>8s} {'sections/s':>10s} {'ms/section':>10s} {'share':>6s}")
    for name, s in rows:
        print(f"{name:34s} {s:8.2f} {fmt_rate(n_sec, s):>10s} {1000 * s / n_sec:10.1f} {100 * s / total:5.1f}%")
    print("\nper document (seconds):")
    print(f"{'doc':36s} {'secs':>4s} {'parse':>6s} {'render':>6s} {'clip':>6s} {'minilm':>6s} {'upsert':>6s}")
    for d in ing["per_doc"]:
        st, lp = d["stages"], d["laps"]
        up = lp.get("qdrant.upsert", 0) + lp.get("qdrant.existing_ids", 0)
        print(
            f"{d['doc']:36s} {d['sections']:4d} {st['parse'] + st['read']:6.2f} {st['render']:6.2f} "
            f"{lp.get('embed.clip_image', 0):6.2f} {lp.get('embed.minilm', 0):6.2f} {up:6.2f}"
        )
    report["ingest"] = {
        "sections": n_sec,
        "docs": len(docs),
        "clip": clip_desc,
        "stages_s": {k.strip(): v for k, v in rows},
        "per_doc": ing["per_doc"],
        "model_load_s": {"clip": t_clip, "minilm": t_text},
    }

    if not args.no_ref_clip and args.clip != "vit-b-32":
        ref, _ = clip_embedder("vit-b-32", work / "clip-ref")
        ref.load()
        imgs = []
        for d in docs[:4]:
            ps = render_document(d, settings, GlyphRenderer(settings.render)).parts
            imgs += [p.image for p in ps]
        ref.embed_images(imgs[:2])
        t0 = time.perf_counter()
        ref.embed_images(imgs)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        clip.embed_images(imgs)
        t_small = time.perf_counter() - t0
        qs = questions[:10]
        ref.embed_texts(qs[:1])
        t0 = time.perf_counter()
        for q in qs:
            ref.embed_texts([q])
        t_ref_q = (time.perf_counter() - t0) / len(qs)
        print(
            f"\nreference, same {len(imgs)} images: CLIP images ViT-B-32 arch {fmt_rate(len(imgs), t_ref).strip()}/s "
            f"vs {args.clip} {fmt_rate(len(imgs), t_small).strip()}/s; ViT-B-32 text query {1000 * t_ref_q:.1f} ms"
        )
        report["ingest"]["reference_vit_b_32"] = {
            "images": len(imgs),
            "img_per_s": len(imgs) / t_ref,
            "small_img_per_s": len(imgs) / t_small,
            "text_query_ms": 1000 * t_ref_q,
        }
        del ref

    # -- part 2 --
    # Local-mode upsert commits sqlite once per point (fsync-bound on a real disk), so the query store lives on
    # tmpfs when there is one: the query path is all in memory and is not affected, the fill just gets faster.
    synth = Synth(kb)
    kb.close()
    qroot = args.query_store if args.query_store else (Path("/dev/shm") if Path("/dev/shm").is_dir() else work)
    qtmp = tempfile.TemporaryDirectory(prefix="bench_index_q_", dir=qroot)
    qsettings = settings.model_copy(update={"data_dir": Path(qtmp.name) / "data"})
    kb = KnowledgeBase(qsettings, embedders=emb)
    n_seed = synth.seed(kb)
    print(f"\n# query store: {qsettings.data_dir} (Qdrant local mode), seeded with the {n_seed} real sections")
    catalog = kb.catalog
    catalog.live_point_ids = clock.wrap("q.live_ids", catalog.live_point_ids)  # type: ignore[method-assign]
    kb.index.query = clock.wrap("q.qdrant", kb.index.query)  # type: ignore[method-assign]
    retriever = kb.retriever
    clock.lap()
    random.seed(0)
    results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        fill = grow_to(kb, synth, size, clock)
        q = bench_queries(kb, retriever, clock, questions, args.queries, args.query_budget)
        bd = qdrant_breakdown(kb, retriever, questions, args.breakdown_queries, args.query_budget / 2)
        clock.lap()
        results[size] = {"fill": fill, "query": q, "qdrant_breakdown_ms": bd}
        rate = fill["added"] / fill["seconds"] if fill["seconds"] else float("inf")
        print(
            f"\n# grew store to {fill['count']} sections: +{fill['added']} synthetic in {fill['seconds']:.1f}s "
            f"({rate:.0f} sections/s; Qdrant upsert {fill['qdrant_upsert_s']:.1f}s, "
            f"catalog manifests {fill['catalog_s']:.1f}s)"
        )
    prof = profile_query(kb, retriever, questions, n=1) if not args.no_profile and sizes else ""
    kb.close()
    qtmp.cleanup()

    print(
        f"\n## 2. Query latency, Retriever.search (k={settings.top_k}, fused CLIP text + MiniLM + BM25, "
        "tenant filter), ms; searches timed per size: " + ", ".join(f"{s}: {results[s]['query']['n']}" for s in sizes)
    )
    head = f"{'stage':34s}" + "".join(f" {f'p50@{s}':>10s} {f'p95@{s}':>10s}" for s in sizes)
    if len(sizes) > 1:
        head += f" {'p50 ratio':>10s}"
    print(head)
    labels = [
        ("total search", "total"),
        ("query embedding", "q.embed"),
        ("  CLIP text", "q.clip_text"),
        ("  MiniLM query", "q.minilm"),
        ("  BM25 query", "q.bm25"),
        ("catalog live ids", "q.live_ids"),
        ("Qdrant query (fused, filtered)", "q.qdrant"),
        ("other (hits, quota)", "q.other"),
    ]
    for label, key in labels:
        line = f"{label:34s}"
        for s in sizes:
            xs = results[s]["query"]["ms"][key]
            line += f" {pct(xs, 50):10.1f} {pct(xs, 95):10.1f}"
        if len(sizes) > 1:
            a, b = (pct(results[s]["query"]["ms"][key], 50) for s in (sizes[0], sizes[-1]))
            line += f" {b / a if a > 0 else float('nan'):9.1f}x"
        print(line)
    print(
        "\nQdrant local mode split (client.query_points, p50 ms; queries per size: "
        + ", ".join(f"{s}: {len(results[s]['qdrant_breakdown_ms']['fused.nofilter'])}" for s in sizes)
        + "; "
        f"per-signal limit {max(settings.per_signal_limit, settings.top_k * 2)}):"
    )
    keys = sorted(results[sizes[0]]["qdrant_breakdown_ms"])
    print(f"{'query':34s}" + "".join(f" {f'p50@{s}':>10s}" for s in sizes) + (" ratio" if len(sizes) > 1 else ""))
    for k in keys:
        vals = [pct(results[s]["qdrant_breakdown_ms"][k], 50) for s in sizes]
        line = f"{k:34s}" + "".join(f" {v:10.1f}" for v in vals)
        if len(sizes) > 1:
            line += f" {vals[-1] / vals[0] if vals[0] > 0 else float('nan'):5.1f}x"
        print(line)
    if prof:
        print(f"\ncProfile of 1 search at {sizes[-1]} sections (top by own time):")
        print(prof)

    big = sizes[-1]
    p50 = pct(results[big]["query"]["ms"]["total"], 50)
    ok = p50 <= QUERY_TARGET_MS
    ing_s = report["ingest"]["stages_s"]
    stage_share = {
        k: ing_s[k] for k in ("parse (parse_file)", "render total", "embed total", "upsert (existing_ids + upsert)")
    }
    top = max(stage_share, key=lambda k: stage_share[k])
    print("\n## Verdict")
    print(
        f"query p50 at {big} sections: {p50:.0f} ms -> target <= {QUERY_TARGET_MS:.0f} ms {'MET' if ok else 'MISSED'}"
    )
    print(
        f"slowest ingest stage: {top} ({stage_share[top]:.1f}s of {ing_s['end to end']:.1f}s); "
        f"render {'IS' if top == 'render total' else 'is not'} the bottleneck"
    )
    print(f"load avg at end {os.getloadavg()[0]:.1f} (2 cores; anything above ~1 means the timings are shared)")
    print(f"total bench wall time {time.perf_counter() - t_start:.0f}s")

    report["query"] = {
        str(s): {
            "fill": results[s]["fill"],
            "hits_min": results[s]["query"]["hits_min"],
            "p50_ms": {k: pct(v, 50) for k, v in results[s]["query"]["ms"].items()},
            "p95_ms": {k: pct(v, 95) for k, v in results[s]["query"]["ms"].items()},
            "qdrant_breakdown_p50_ms": {k: pct(v, 50) for k, v in results[s]["qdrant_breakdown_ms"].items()},
            "raw_ms": results[s]["query"]["ms"],
        }
        for s in sizes
    }
    report["verdict"] = {
        "query_p50_ms_at_largest": p50,
        "target_ms": QUERY_TARGET_MS,
        "met": ok,
        "slowest_ingest_stage": top,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))
        print(f"wrote {args.json}")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
