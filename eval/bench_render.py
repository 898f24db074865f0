"""Render benchmark: compression (text tokens / visual tokens), OCR legibility and speed per render config.

    python eval/bench_render.py [--docs DIR] [--configs SPEC ...] [--limit N] [--ocr-sample N] [--per-doc]

A config SPEC is `name` of a preset below or `key=value,key=value` over RenderConfig fields
(e.g. `font_size=10,line_height=1.15`). Compression is text tokens / visual tokens summed over whole
documents. `recall` is pooled word recall: source words (a multiset per image) that tesseract (2x LANCZOS
upscale) recovers, summed over every OCR'd image of every document / all their source words (word-weighted,
not a mean of per-image ratios); --per-doc adds the same figure per document under the table.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from ingest.legibility import char_similarity, ocr_lang, ocr_text, word_recall, words
from ingest.render import GlyphRenderer
from kb.settings import RenderConfig, Settings
from kb.tokens import TokenCounter, visual_tokens
from kb.types import Section

DEFAULT_DOCS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "public" / "docs"
PRESETS: dict[str, dict[str, object]] = {
    "default": {},
    "noto10": {"font": "NotoSans", "font_size": 10, "word_spacing": 0.15},
    "fs10": {"font_size": 10},
    "cjk1": {"cjk_scale": 1.0},
    "fs11": {"font_size": 11},
    "fs9": {"font_size": 9},
    "lh1.1": {"line_height": 1.1},
    "lh1.3": {"line_height": 1.3},
    "cols1": {"columns": 1},
    "w1092": {"page_width": 1092, "max_pixels": 1092 * 1148},
    "w644": {"page_width": 644, "max_pixels": 644 * 1148},
    "dejavu": {"font": "DejaVuSans", "mono_font": "DejaVuSansMono"},
    "margin12": {"margin": 12},
}
DEFAULT_CONFIGS = ["default", "noto10", "fs10", "lh1.1", "cjk1", "cols1", "w1092", "margin12"]


@dataclass
class Result:
    name: str
    text_tokens: int = 0
    visual: int = 0
    images: int = 0
    matched: float = 0.0
    source_words: int = 0
    sims: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    per_doc: dict[str, tuple[float, int]] = field(default_factory=dict)  # doc -> (matched words, source words)


def parse_config(spec: str) -> tuple[str, RenderConfig]:
    if spec in PRESETS:
        return spec, RenderConfig(**PRESETS[spec])  # type: ignore[arg-type]
    kv: dict[str, str] = dict(item.split("=", 1) for item in spec.split(",") if item)
    return spec, RenderConfig.model_validate(kv)


def load_sections(docs: Path, limit: int | None, min_chars: int | None = None) -> list[tuple[str, list[Section]]]:
    """(title, sections) per document, through the real parser and sectioner."""
    from ingest.formats import parse_file
    from ingest.sections import MIN_CHARS, build_sections

    settings = Settings()
    out = []
    files = sorted(p for p in docs.iterdir() if p.is_file())
    for path in files[:limit] if limit else files:
        parsed = parse_file(path, settings)
        mc = MIN_CHARS if min_chars is None else min_chars
        out.append((parsed.title or path.stem, build_sections(path.stem, parsed, min_chars=mc)))
    return out


def run_config(name: str, config: RenderConfig, docs: list[tuple[str, list[Section]]], ocr_sample: int,
               counter: TokenCounter, pool: ThreadPoolExecutor) -> Result:
    res = Result(name)
    renderer = GlyphRenderer(config)
    jobs = []
    for title, sections in docs:
        images: list[tuple[Section, Image.Image]] = []
        for section in sections:
            res.text_tokens += counter.count(section.text)
            t0 = time.perf_counter()
            parts = renderer.paginate(section, title)
            rendered = [(p, renderer.render(p, title)) for p in parts]
            ms = (time.perf_counter() - t0) * 1000 / max(1, len(parts))
            res.ms.extend([ms] * len(parts))
            for _, img in rendered:
                res.visual += visual_tokens(img.width, img.height, config.patch)
            images.extend(rendered)
        res.images += len(images)
        step = max(1, len(images) // ocr_sample) if ocr_sample else 1
        for part, img in images[::step][: ocr_sample or None]:
            text = part.text
            jobs.append((part.doc_id, text, pool.submit(ocr_text, img, ocr_lang(text))))
    for doc, text, fut in jobs:
        ocr = fut.result()
        n = len(words(text))
        got = word_recall(text, ocr) * n
        res.matched += got
        res.source_words += n
        m, w = res.per_doc.get(doc, (0.0, 0))
        res.per_doc[doc] = (m + got, w + n)
        res.sims.append(char_similarity(text, ocr))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="preset names or key=value,... specs")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--ocr-sample", type=int, default=0, help="OCR at most N images per document (0 = all)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel tesseract processes")
    ap.add_argument("--min-chars", type=int, default=None, help="build_sections min_chars (default: its own)")
    ap.add_argument("--per-doc", action="store_true", help="also print pooled word recall per document")
    ap.add_argument("--save", type=Path, default=None, help="write the first config's images here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    docs = load_sections(args.docs, args.limit, args.min_chars)
    counter = TokenCounter.load("auto")
    n_sec = sum(len(s) for _, s in docs)
    print(f"{len(docs)} documents, {n_sec} sections from {args.docs}")
    cols = ("images", "text tok", "vis tok", "compr", "recall", "charsim", "ms/img")
    header = f"{'config':<34} " + " ".join(f"{c:>{w}}" for c, w in zip(cols, (6, 9, 8, 6, 7, 7, 7), strict=True))
    print(header)
    print("-" * len(header))
    results: list[Result] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for i, spec in enumerate(args.configs):
            name, config = parse_config(spec)
            if i == 0 and args.save:
                save_images(config, docs, args.save)
            r = run_config(name, config, docs, args.ocr_sample, counter, pool)
            recall = r.matched / r.source_words if r.source_words else float("nan")
            sim = statistics.fmean(r.sims) if r.sims else float("nan")
            print(
                f"{name:<34} {r.images:>6} {r.text_tokens:>9} {r.visual:>8} {r.text_tokens / max(1, r.visual):>6.2f} "
                f"{recall:>7.3f} {sim:>7.3f} {statistics.median(r.ms):>7.1f}",
                flush=True,
            )
            results.append(r)
    if args.per_doc and results:
        names = sorted({d for r in results for d in r.per_doc})
        print("\npooled word recall per document")
        print(f"{'document':<34} " + " ".join(f"{r.name[:12]:>12}" for r in results))
        for d in names:
            cells = [r.per_doc.get(d, (0.0, 0)) for r in results]
            print(f"{d[:34]:<34} " + " ".join(f"{m / w if w else float('nan'):>12.3f}" for m, w in cells))
    return 0


def save_images(config: RenderConfig, docs: list[tuple[str, list[Section]]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    renderer = GlyphRenderer(config)
    for title, sections in docs:
        for section in sections:
            for part in renderer.paginate(section, title):
                img = renderer.render(part, title)
                img.save(out / f"{section.doc_id}-{section.ordinal:03d}-{part.part}.png")


if __name__ == "__main__":
    raise SystemExit(main())
