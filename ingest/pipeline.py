"""Ingest one file: parse → sections → image-sized parts → glyph PNGs → catalog manifest.

The manifest is written last, so a failure at any stage leaves the previous version (or
nothing) in place. The vector index step slots in between rendering and the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from PIL import Image

from ingest.accounting import ContentText
from ingest.formats import parse_file, supported_extensions
from ingest.render import GlyphRenderer, png_bytes
from ingest.sections import build_sections
from kb.catalog import Catalog, DocumentRecord, ImageRecord, SectionRecord, doc_id_for
from kb.embed.factory import Embedders
from kb.errors import CorruptDocumentError, FileTooLargeError, KbError
from kb.images import ImageStore
from kb.index import IndexPoint
from kb.indexer import DocumentIndexer, assign_point_ids, embed_points
from kb.settings import RenderConfig, Settings, mb_bytes
from kb.spans import encode_blocks, encode_lines, line_spans
from kb.tokens import TokenCounter, visual_tokens
from kb.types import Section

log = logging.getLogger(__name__)

# Bump when parsing/sectioning/rendering changes output, so unchanged files are re-rendered once.
PIPELINE_VERSION = "3"  # 2: honest text-token counts (ingest/accounting.py); 3: block spans and line boxes

Stage = Literal["parse", "section", "render", "store", "index", "done"]
StageCallback = Callable[[Path, Stage], None]


@dataclass
class IngestResult:
    path: Path
    status: Literal["ingested", "unchanged", "failed"]
    doc_id: str | None = None
    title: str | None = None
    sections: int = 0
    images: int = 0
    pages: int | None = None
    text_tokens: int = 0
    visual_tokens: int = 0
    tokenizer: str = ""
    error: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


@dataclass
class RenderedPart:
    section: Section
    image: Image.Image
    png: bytes
    content: str = ""  # the part's content text, counted for compression (ingest/accounting.py)
    lines: str = ""  # kb.spans.encode_lines of the image's drawn lines


def render_fingerprint(config: RenderConfig, token_counter: str) -> str:
    raw = f"{PIPELINE_VERSION}|{config.model_dump_json()}|{token_counter}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files given directly are yielded as-is (unsupported ones fail later with a reason);
    folders are walked recursively for supported files, hidden entries skipped."""
    exts = set(supported_extensions())
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if f.is_file() and not any(s.startswith(".") for s in rel) and f.suffix.lower() in exts:
                    yield f
        else:
            yield p


def render_document(
    path: Path, settings: Settings, renderer: GlyphRenderer, *, on_stage: StageCallback | None = None
) -> tuple[str, str, int | None, bool, list[str], list[RenderedPart]]:
    """Parse, section and render one file; returns (doc_id, title, pages, ocr_used, warnings, parts)."""
    doc_id = doc_id_for(path)
    if on_stage:
        on_stage(path, "parse")
    parsed = parse_file(path, settings)
    if on_stage:
        on_stage(path, "section")
    sections = build_sections(doc_id, parsed)
    if on_stage:
        on_stage(path, "render")
    parts: list[RenderedPart] = []
    content = ContentText(parsed.blocks)
    for sec in sections:
        for part in renderer.paginate(sec, parsed.title):
            img, drawn = renderer.render_lines(part, parsed.title)
            lines = encode_lines(line_spans(part, drawn))
            parts.append(RenderedPart(part, img, png_bytes(img), content.of(part), lines))
    return doc_id, parsed.title, parsed.pages, parsed.ocr_used, list(parsed.warnings), parts


@dataclass
class PreparedDoc:
    """A document parsed, rendered and embedded, its images stored, not yet visible to readers."""

    path: Path
    rec: DocumentRecord
    points: list[IndexPoint] = field(default_factory=list)  # embedded points (ids assigned), when indexing
    indexed: bool = False


# Where the slow stage runs (`Ingestor.prepare` here, or a worker pool), and the lock around a commit.
PrepareFn = Callable[[Path, str, int, DocumentRecord | None, list[str]], PreparedDoc]
LockFactory = Callable[[], AbstractContextManager[object]]


class MissingImagesError(KbError):
    """Images a prepared document names were removed before it was committed (a concurrent cleanup)."""


class Ingestor:
    """Runs the pipeline for many files against one data dir; holds the lazily loaded helpers.

    Each file goes through `prepare` (parse, render, store images, embed: the slow part, safe to run in
    worker processes and in parallel) and `commit` (index write, manifest switch, cleanup: short, and
    serialised by the caller's writer lock)."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog | None,
        images: ImageStore,
        indexer: DocumentIndexer | None = None,
        *,
        embedders: Embedders | None = None,
    ) -> None:
        self.settings = settings
        self._catalog = catalog
        self.images = images
        self.indexer = indexer
        self.embedders = embedders or (indexer.embedders if indexer else None)
        self.renderer = GlyphRenderer(settings.render)
        self.counter = TokenCounter.load(settings.token_counter)
        self.fingerprint = render_fingerprint(settings.render, settings.token_counter)

    @property
    def catalog(self) -> Catalog:
        assert self._catalog is not None, "this Ingestor only prepares (a worker process)"
        return self._catalog

    def ingest_file(
        self,
        path: Path,
        *,
        on_stage: StageCallback | None = None,
        tags: list[str] | None = None,
        prepare: PrepareFn | None = None,
        commit_lock: LockFactory | None = None,
    ) -> IngestResult:
        """`prepare`: where the slow stage runs (default: here); `commit_lock`: held around the commit."""
        t0 = time.perf_counter()
        try:
            result = self._ingest(path, on_stage, tags or [], prepare, commit_lock or contextlib.nullcontext)
        except KbError as exc:
            log.info("ingest failed for %s: %s", path, exc)
            result = IngestResult(path=path, status="failed", error=str(exc))
        result.seconds = time.perf_counter() - t0
        return result

    def _ingest(
        self,
        path: Path,
        on_stage: StageCallback | None,
        tags: list[str],
        prepare: PrepareFn | None,
        commit_lock: LockFactory,
    ) -> IngestResult:
        data = _read_checked(path, self.settings)
        sha = hashlib.sha256(data).hexdigest()
        old = self.catalog.get(doc_id_for(path))
        if (
            old
            and old.file_sha256 == sha
            and old.render_fingerprint == self.fingerprint
            and all(self.images.exists(k) for k in old.image_keys)
        ):
            if self.indexer and self.indexer.missing(old):
                # The index lost points (e.g. a new collection): re-embed from the stored images.
                if on_stage:
                    on_stage(path, "index")
                with commit_lock():
                    self.indexer.upsert(old, self._load_images(old.image_keys))
                    self.catalog.put(old)
                return _result(path, "ingested", old)
            return _result(path, "unchanged", old)

        if prepare is not None:
            if on_stage:
                on_stage(path, "render")
            prepared = prepare(path, sha, len(data), old, tags)
        else:
            prepared = self.prepare(path, sha, len(data), old, tags, on_stage=on_stage)
        try:
            with commit_lock():
                return self.commit(prepared, on_stage=on_stage)
        except MissingImagesError:  # rare: redo the document here, where nothing else runs meanwhile
            with commit_lock():
                return self.commit(self.prepare(path, sha, len(data), old, tags, on_stage=on_stage), on_stage=on_stage)

    def prepare(
        self,
        path: Path,
        sha: str,
        nbytes: int,
        old: DocumentRecord | None,
        tags: list[str],
        *,
        on_stage: StageCallback | None = None,
    ) -> PreparedDoc:
        """Parse, render, store the images and embed the new sections. Touches neither the catalog nor
        the index, so it may run in a worker process."""
        doc_id, title, pages, ocr_used, warnings, parts = render_document(
            path, self.settings, self.renderer, on_stage=on_stage
        )
        if on_stage:
            on_stage(path, "store")
        texts = [p.content for p in parts]
        tokens = self.counter.count_many(texts) if texts else []
        sections: list[SectionRecord] = []
        for part, n_tok in zip(parts, tokens, strict=True):
            key = self.images.put(part.png)
            w, h = part.image.size
            sec = part.section
            sections.append(
                SectionRecord(
                    section_id=sec.section_id,
                    ordinal=len(sections),
                    part=sec.part,
                    parts=sec.parts,
                    heading_path=list(sec.heading_path),
                    headings=list(sec.headings),
                    page_start=sec.page_start,
                    page_end=sec.page_end,
                    kinds=list(sec.kinds),
                    text=sec.text,
                    content_hash=sec.content_hash,
                    text_tokens=n_tok,
                    images=[
                        ImageRecord(
                            key=key,
                            width=w,
                            height=h,
                            visual_tokens=visual_tokens(w, h, self.settings.render.patch),
                            lines=part.lines,
                        )
                    ],
                    blocks=encode_blocks(sec),
                )
            )
        rec = DocumentRecord(
            doc_id=doc_id,
            title=title,
            source_name=path.name,
            source_path=str(path.resolve()),
            format=path.suffix.lower().lstrip("."),
            file_sha256=sha,
            file_bytes=nbytes,
            pages=pages,
            ocr_used=ocr_used,
            render_fingerprint=self.fingerprint,
            tokenizer=self.counter.name,
            render_profile=self.settings.render_profile,
            ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
            tags=sorted(set(tags) | set(old.tags if old else [])),
            warnings=warnings,
            sections=sections,
        )
        if self.embedders is None:
            return PreparedDoc(path, rec)
        if on_stage:
            on_stage(path, "index")
        assign_point_ids(rec)
        known = {s.point_id for s in old.sections if s.point_id} if old else set()  # live, so indexed
        images = {s.images[0].key: p.image for s, p in zip(sections, parts, strict=True)}
        points = embed_points(self.embedders, self.settings.tenant, rec, images, skip=known)
        return PreparedDoc(path, rec, points, indexed=True)

    def commit(self, prepared: PreparedDoc, *, on_stage: StageCallback | None = None) -> IngestResult:
        """Make a prepared document the current version: index write, manifest switch, cleanup."""
        rec, path = prepared.rec, prepared.path
        if not all(self.images.exists(k) for k in rec.image_keys):
            raise MissingImagesError(f"images of {path.name} were removed before it was committed", "ingest it again")
        if self.indexer and prepared.indexed:
            if on_stage:
                on_stage(path, "index")
            self.indexer.write(rec, prepared.points, self._load_images)
        old = self.catalog.get(rec.doc_id)  # now, under the writer lock: the version being replaced
        self.catalog.put(rec)  # the switch: from here on readers see the new version
        if self.indexer and prepared.indexed:
            self.indexer.finalize(rec)
        if old:
            self.images.remove(set(old.image_keys) - self.catalog.referenced_images())
        if on_stage:
            on_stage(path, "done")
        return _result(path, "ingested", rec)

    def _load_images(self, keys: Sequence[str]) -> dict[str, Image.Image]:
        return {k: self.images.open_rgb(k) for k in keys}


def _read_checked(path: Path, settings: Settings) -> bytes:
    """Size-check before reading, so an oversized upload costs nothing."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorruptDocumentError(f"cannot read {path}: {exc.strerror}", "check the path and permissions") from exc
    if size > mb_bytes(settings.max_file_mb):
        raise FileTooLargeError(
            f"{path.name} is {size / 1e6:.1f} MB, over the {settings.max_file_mb:g} MB limit",
            "split the file or raise KB_MAX_FILE_MB",
        )
    return path.read_bytes()


def _result(path: Path, status: Literal["ingested", "unchanged"], rec: DocumentRecord) -> IngestResult:
    return IngestResult(
        path=path,
        status=status,
        doc_id=rec.doc_id,
        title=rec.title,
        sections=len(rec.sections),
        images=len(rec.image_keys),
        pages=rec.pages,
        text_tokens=rec.text_tokens,
        visual_tokens=rec.visual_tokens,
        tokenizer=rec.tokenizer,
        warnings=list(rec.warnings),
    )
