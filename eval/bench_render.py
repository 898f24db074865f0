"""Render benchmark: honest compression, word recall overall and per identifier class, reading order.

    python eval/bench_render.py [--docs DIR ...] [--configs SPEC ...] [--ocr-sections N] [--per-doc]
        [--misses CLASS ...] [--plot OUT.png]

A config SPEC is `default` (the shipped RenderConfig), a preset name below, a profile JSON file written by
`kb tune-render`, or `key=value,key=value` over RenderConfig fields (e.g. `font_size=10,line_height=1.15`).
Every corpus given with --docs is reported on its own.

- compression = text tokens ÷ visual tokens over whole documents. Text tokens are the documents' content
  counted once (ingest/accounting.py: no dot leaders, running headers, repeated table headers; the header
  line drawn on each image is overhead, in the visual tokens); the tokenizer is printed. Visual tokens:
  ceil(w/28)·ceil(h/28) per image.
- recall = source words (multiset per image) that tesseract reads back (2× LANCZOS upscale), pooled.
- path / option / number / code / cjk = the same for identifier items only, punctuation inside kept
  ("/usr/share/man" must come back whole; "300 ms" as both words). n = items in the sample.
- order = LCS(source words, OCR words) ÷ source words recovered: 1.0 when what is read comes back in
  source order, i.e. the columns are read as the text flows.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.legibility import CLASSES
from ingest.render_score import SampleDoc, Score, Targets, load_docs, score
from ingest.render_tuning import pareto_front
from kb.settings import RenderConfig, Settings
from kb.tokens import TokenCounter

DEFAULT_DOCS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "public" / "docs"
DEV_DOCS = Path(os.environ.get("TMPDIR", "/tmp")) / "kb-dev-corpus"  # eval/fetch_dev_corpus.sh
PRESETS: dict[str, dict[str, object]] = {
    "default": {},
    "fs10": {"font_size": 10},
    "fs8": {"font_size": 8},
    "lh1.1": {"line_height": 1.1},
    "lh1.25": {"line_height": 1.25},
    "cols3": {"columns": 3},
    "cols1": {"columns": 1},
    "dejavu9": {"font": "DejaVuSans"},
    "noto9": {"font": "NotoSans"},
    # the renderer before issue 16: slashes and "--" drawn tight, short column bands kept
    "before": {"slash_spacing": 0.0, "dash_spacing": 0.0, "min_column_lines": 1, "id_bold": False, "id_tracking": 0.0},
    # the default before inline identifiers were drawn bold and tracked apart
    "plain-ids": {"id_bold": False, "id_tracking": 0.0},
    "fs10-spaced": {"font_size": 10, "slash_spacing": 0.08, "dash_spacing": 0.15},
    # inline paths and --options one pixel larger and tracked apart (ingest/render/fonts.py FontChain.ident)
    "id-style": {"id_scale": 1.12, "id_tracking": 0.04, "id_bold": False},
    "id-scale": {"id_scale": 1.12, "id_bold": False, "id_tracking": 0.0},
    "id-bold": {"id_bold": True, "id_tracking": 0.04},  # the default since it measured better (README)
}


def parse_config(spec: str) -> tuple[str, RenderConfig]:
    if spec in PRESETS:
        return spec, RenderConfig.model_validate(PRESETS[spec])
    if spec.endswith(".json") and Path(spec).is_file():
        from kb.render_profiles import load_profile_file

        prof = load_profile_file(Path(spec))
        return prof.name, prof.config
    kv: dict[str, str] = dict(item.split("=", 1) for item in spec.split(",") if item)
    return spec, RenderConfig.model_validate(kv)


def fmt_class(s: Score, cls: str) -> str:
    got, n = s.class_counts(cls)
    return f"{got / n:.3f}/{n}" if n else "-"


_COLS = ["images", "text tok", "vis tok", "compr", "recall", *CLASSES, "order", "ms/img"]
_WIDTHS = [6, 9, 8, 6, 6, 10, 10, 10, 10, 10, 6, 6]


def print_header() -> None:
    print(f"{'config':<28} " + " ".join(f"{c:>{w}}" for c, w in zip(_COLS, _WIDTHS, strict=True)))


def print_row(s: Score) -> None:
    cells = [str(s.images), str(s.text_tokens), str(s.visual_tokens), f"{s.compression:.2f}", f"{s.recall:.3f}",
             *(fmt_class(s, c) for c in CLASSES), f"{s.order:.3f}", f"{s.render_ms:.0f}"]
    print(f"{s.name[:28]:<28} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, _WIDTHS, strict=True)), flush=True)


def print_per_doc(s: Score) -> None:
    print(f"\nper document, {s.name}: compression / recall / order")
    for d in s.docs:
        print(f"  {d.name[:40]:<40} {d.compression:>6.2f}x {d.recall:>7.3f} {d.order:>7.3f}  ({d.images} images)")


def print_misses(s: Score, classes: list[str]) -> None:
    for cls in classes:
        got, n = s.class_counts(cls)
        print(f"\nmissed {cls} items, {s.name} ({n - got} of {n}): source -> closest OCR reading")
        for d in s.docs:
            for want, read in d.misses[cls]:
                print(f"  {d.name[:28]:<28} {want!r:<40} -> {read!r}")


def plot(results: dict[str, list[Score]], out: Path, targets: Targets) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for (corpus, scores), color in zip(results.items(), colors, strict=False):
        for ax, metric, label in ((axes[0], "recall", "word recall"), (axes[1], "id", "identifier recall (worst class)")):
            def y(s: Score, metric: str = metric) -> float:
                if metric == "recall":
                    return s.recall
                vals = [s.class_recall(c) for c in CLASSES if s.class_counts(c)[1] >= targets.min_items]
                return min(vals) if vals else float("nan")

            ax.scatter([s.compression for s in scores], [y(s) for s in scores], color=color, alpha=0.6, s=18,
                       label=corpus)
            front = pareto_front(scores, key=y)
            ax.plot([s.compression for s in front], [y(s) for s in front], color=color, lw=1)
            for s in scores:
                if s.name == "default":
                    ax.scatter([s.compression], [y(s)], color=color, marker="*", s=160, edgecolor="black")
            ax.axhline(targets.recall if metric == "recall" else targets.identifiers, color="grey", ls="--", lw=0.8)
            ax.axvline(3.0, color="grey", ls=":", lw=0.8)
            ax.set_xlabel("compression (honest text tokens ÷ visual tokens)")
            ax.set_ylabel(label)
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("Render configurations: compression against legibility (★ = default)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, nargs="+", default=None,
                    help=f"corpora (default: the public set, and {DEV_DOCS} when fetched)")
    ap.add_argument("--configs", nargs="+", default=["default"], help="presets, profile JSON files or key=value,...")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents of each corpus")
    ap.add_argument("--ocr-sections", type=int, default=0, help="OCR at most N sections per document (0 = all)")
    ap.add_argument("--no-ocr", action="store_true", help="compression only")
    ap.add_argument("--jobs", type=int, default=2, help="parallel tesseract processes")
    ap.add_argument("--per-doc", action="store_true", help="per-document compression, recall and order")
    ap.add_argument("--misses", nargs="+", default=[], choices=CLASSES, metavar="CLASS",
                    help="list the missed identifier items of these classes, each with what OCR read closest")
    ap.add_argument("--plot", type=Path, default=None, help="write the compression/recall plot here")
    ap.add_argument("--save", type=Path, default=None, help="write the first config's images here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    corpora = args.docs or [DEFAULT_DOCS, *([DEV_DOCS] if DEV_DOCS.is_dir() else [])]
    settings = Settings()
    counter = TokenCounter.load(settings.token_counter)
    targets = Targets()
    configs = [parse_config(c) for c in args.configs]
    results: dict[str, list[Score]] = {}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for corpus in corpora:
            files = sorted(p for p in corpus.iterdir() if p.is_file())[: args.limit]
            docs: list[SampleDoc] = load_docs(files, settings, ocr_sections=args.ocr_sections)
            n_sec = sum(len(d.sections) for d in docs)
            print(f"\n{corpus}: {len(docs)} documents, {n_sec} sections; text tokens by {counter.name}")
            scores = []
            for i, (name, config) in enumerate(configs):
                s = score(name, config, docs, counter, pool=None if args.no_ocr else pool)
                if i == 0 and args.save:
                    save_images(config, docs, args.save / corpus.name)
                scores.append(s)
                if i == 0:
                    print_header()
                print_row(s)
            results["public set" if corpus.resolve() == DEFAULT_DOCS.resolve() else corpus.name] = scores
            if args.per_doc:
                for s in scores:
                    print_per_doc(s)
            for s in scores:
                print_misses(s, args.misses)
            if not args.no_ocr and len(scores) > 1:
                front = pareto_front(scores, key=lambda s: min(s.recall, s.identifier_recall))
                print("Pareto front (compression against min(recall, identifier recall)):",
                      ", ".join(f"{s.name} {s.compression:.2f}x/{min(s.recall, s.identifier_recall):.3f}"
                                for s in front))
            for s in scores:
                if not args.no_ocr:
                    fails = s.failures(targets)
                    print(f"{s.name}: " + ("meets the bar" if not fails else "misses: " + "; ".join(fails)))
    if args.plot and not args.no_ocr:
        plot(results, args.plot, targets)
    return 0


def save_images(config: RenderConfig, docs: list[SampleDoc], out: Path) -> None:
    from ingest.render import GlyphRenderer

    out.mkdir(parents=True, exist_ok=True)
    renderer = GlyphRenderer(config)
    for doc in docs:
        for section in doc.sections:
            for part in renderer.paginate(section, doc.title):
                renderer.render(part, doc.title).save(out / f"{doc.name}-{section.ordinal:03d}-{part.part}.png")


if __name__ == "__main__":
    raise SystemExit(main())
