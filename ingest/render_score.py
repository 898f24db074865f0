"""Scoring a render configuration on documents: honest compression, word recall overall and per identifier
class, and reading order, with OCR (or a VLM transcription) as the judge.

Used by eval/bench_render.py and `kb tune-render`, so both report the same figures the same way.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ingest.accounting import ContentText
from ingest.legibility import (
    CLASSES,
    class_items,
    class_misses,
    class_recall,
    ocr_lang,
    ocr_text,
    reading_order,
    word_recall,
    words,
)
from ingest.render import GlyphRenderer
from kb.settings import RenderConfig, Settings
from kb.tokens import TokenCounter, visual_tokens
from kb.types import Block, Section

# A transcription of one image: (image, source text it should hold) -> text read back.
Judge = Callable[[Image.Image, str], str]


def tesseract_judge(image: Image.Image, source: str) -> str:
    return ocr_text(image, ocr_lang(source))


@dataclass(frozen=True)
class Targets:
    """The legibility bar a profile must clear (issue 16): overall recall, each identifier class, order."""

    recall: float = 0.97
    identifiers: float = 0.98
    order: float = 0.95
    min_items: int = 10  # a class with fewer items in the sample is reported, not enforced (one miss = 10 %)


@dataclass(frozen=True)
class SampleDoc:
    name: str
    title: str
    blocks: tuple[Block, ...]
    sections: tuple[Section, ...]
    ocr_sections: frozenset[int]  # ordinals of the sections whose images are transcribed


def load_docs(
    paths: Iterable[Path], settings: Settings, *, ocr_sections: int = 0, on_doc: Callable[[Path], None] | None = None
) -> list[SampleDoc]:
    """Parse and section documents once (the slow part that no render setting changes). `ocr_sections`:
    transcribe at most that many sections per document (0 = all), picked evenly and deterministically."""
    from ingest.formats import parse_file
    from ingest.sections import build_sections

    out = []
    for path in paths:
        if on_doc:
            on_doc(path)
        parsed = parse_file(path, settings)
        sections = build_sections(path.stem, parsed)
        ords = [s.ordinal for s in sections]
        if ocr_sections and len(ords) > ocr_sections:
            step = len(ords) / ocr_sections
            ords = [ords[int(i * step)] for i in range(ocr_sections)]
        out.append(SampleDoc(path.stem, parsed.title or path.stem, parsed.blocks, tuple(sections), frozenset(ords)))
    return out


@dataclass
class DocScore:
    name: str
    text_tokens: int = 0
    visual_tokens: int = 0
    images: int = 0
    matched: float = 0.0
    source_words: int = 0
    classes: dict[str, list[int]] = field(default_factory=lambda: {c: [0, 0] for c in CLASSES})
    lcs: int = 0
    order_words: int = 0
    render_ms: list[float] = field(default_factory=list)
    misses: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {c: [] for c in CLASSES})

    @property
    def compression(self) -> float:
        return self.text_tokens / self.visual_tokens if self.visual_tokens else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.source_words if self.source_words else float("nan")

    @property
    def order(self) -> float:
        return self.lcs / self.order_words if self.order_words else float("nan")


@dataclass
class Score:
    """Figures for one configuration over a set of documents (word-weighted, pooled over images)."""

    name: str
    config: RenderConfig
    tokenizer: str
    docs: list[DocScore]
    judged: bool = True

    def _sum(self, attr: str) -> float:
        return float(sum(getattr(d, attr) for d in self.docs))

    @property
    def text_tokens(self) -> int:
        return int(self._sum("text_tokens"))

    @property
    def visual_tokens(self) -> int:
        return int(self._sum("visual_tokens"))

    @property
    def images(self) -> int:
        return int(self._sum("images"))

    @property
    def compression(self) -> float:
        v = self.visual_tokens
        return self.text_tokens / v if v else 0.0

    @property
    def recall(self) -> float:
        n = self._sum("source_words")
        return self._sum("matched") / n if n else float("nan")

    @property
    def order(self) -> float:
        n = self._sum("order_words")
        return self._sum("lcs") / n if n else float("nan")

    def class_counts(self, cls: str) -> tuple[int, int]:
        return sum(d.classes[cls][0] for d in self.docs), sum(d.classes[cls][1] for d in self.docs)

    def class_recall(self, cls: str) -> float:
        got, n = self.class_counts(cls)
        return got / n if n else float("nan")

    @property
    def identifier_recall(self) -> float:
        """All identifier classes pooled (paths, options, numbers, code, CJK)."""
        got = sum(self.class_counts(c)[0] for c in CLASSES)
        n = sum(self.class_counts(c)[1] for c in CLASSES)
        return got / n if n else float("nan")

    @property
    def render_ms(self) -> float:
        ms = [m for d in self.docs for m in d.render_ms]
        return sorted(ms)[len(ms) // 2] if ms else 0.0

    def failures(self, t: Targets) -> list[str]:
        """What keeps this configuration under the bar (empty: it clears it)."""
        out = []
        if not self.recall >= t.recall:
            out.append(f"recall {self.recall:.3f} < {t.recall}")
        for c in CLASSES:
            got, n = self.class_counts(c)
            if n >= t.min_items and got / n < t.identifiers:
                out.append(f"{c} {got / n:.3f} < {t.identifiers}")
        if not self.order >= t.order:
            out.append(f"order {self.order:.3f} < {t.order}")
        return out

    def meets(self, t: Targets) -> bool:
        return self.judged and not self.failures(t)


def rendered_parts(
    renderer: GlyphRenderer, doc: SampleDoc, sections: Sequence[Section] | None = None
) -> list[tuple[Section, Image.Image, str]]:
    """(part, image, content text) for a document's sections, in order."""
    content = ContentText(doc.blocks)
    out = []
    for sec in doc.sections if sections is None else sections:
        for part in renderer.paginate(sec, doc.title):
            out.append((part, renderer.render(part, doc.title), content.of(part)))
    return out


def score(
    name: str,
    config: RenderConfig,
    docs: Sequence[SampleDoc],
    counter: TokenCounter,
    *,
    pool: Executor | None,
    judge: Judge = tesseract_judge,
    sampled_only: bool = False,
    cache: dict[str, str] | None = None,
) -> Score:
    """Render every document with `config` and judge the sampled sections' images (pool=None: no judging,
    compression only). `sampled_only` renders just the sampled sections (faster, for a search). `cache`
    maps an image's hash to its transcription, so identical images are read once."""
    renderer = GlyphRenderer(config)
    out: list[DocScore] = []
    jobs: list[tuple[DocScore, Section, Future[str] | str]] = []
    keys: list[tuple[str, int]] = []
    for doc in docs:
        ds = DocScore(doc.name)
        secs = [s for s in doc.sections if s.ordinal in doc.ocr_sections] if sampled_only else list(doc.sections)
        content = ContentText(doc.blocks)
        for sec in secs:
            t0 = time.perf_counter()
            parts = renderer.paginate(sec, doc.title)
            imgs = [renderer.render(p, doc.title) for p in parts]
            ms = (time.perf_counter() - t0) * 1000 / max(1, len(parts))
            texts = [content.of(p) for p in parts]
            ds.text_tokens += sum(counter.count_many(texts)) if texts else 0
            for part, img in zip(parts, imgs, strict=True):
                ds.images += 1
                ds.render_ms.append(ms)
                ds.visual_tokens += visual_tokens(img.width, img.height, config.patch)
                if pool is None or sec.ordinal not in doc.ocr_sections:
                    continue
                key = hashlib.sha256(img.tobytes() + str(img.size).encode()).hexdigest()
                if cache is not None and key in cache:
                    jobs.append((ds, part, cache[key]))
                else:
                    jobs.append((ds, part, pool.submit(judge, img, part.text)))
                    keys.append((key, len(jobs) - 1))
        out.append(ds)
    read = [job if isinstance(job, str) else job.result() for _, _, job in jobs]
    if cache is not None:
        cache.update((key, read[i]) for key, i in keys)
    for (ds, part, _), ocr in zip(jobs, read, strict=True):
        add_judgement(ds, part, ocr)
    return Score(name, config, counter.name, out, judged=pool is not None)


def add_judgement(ds: DocScore, part: Section, ocr: str) -> None:
    text = part.text
    n = len(words(text))
    ds.matched += word_recall(text, ocr) * n
    ds.source_words += n
    items = class_items([(b.plain_text(), b.kind == "code") for b in part.blocks])
    for cls, (got, total) in class_recall(items, ocr).items():
        ds.classes[cls][0] += got
        ds.classes[cls][1] += total
    for cls, missed in class_misses(items, ocr).items():
        ds.misses[cls].extend(missed)
    lcs, matched = reading_order(text, ocr)
    ds.lcs += lcs
    ds.order_words += matched
