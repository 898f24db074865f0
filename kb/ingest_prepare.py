"""The slow half of ingest, in this process or in worker processes: render (ingest's preparer), store the
images, count tokens, build the manifest record, embed the new sections. Touches neither the catalog nor
the index: `kb/ingest_commit.py` makes the result the current version."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ingest.pipeline import RenderedDocument, StageCallback, render_document, render_fingerprint
from ingest.render import GlyphRenderer
from ingest.workers import WORKER_NICE, WorkerLostError, WorkerPool
from kb.catalog import DocumentRecord, ImageRecord, SectionRecord
from kb.images import ImageStore
from kb.index import IndexPoint
from kb.indexer import assign_point_ids, embed_points
from kb.settings import Settings
from kb.signals.configured import Embedders
from kb.spans import encode_blocks
from kb.tokens import TokenCounter, visual_tokens


@dataclass
class PreparedDoc:
    """A document parsed, rendered and embedded, its images stored, not yet visible to readers."""

    path: Path
    rec: DocumentRecord
    points: list[IndexPoint] = field(default_factory=list)  # embedded points (ids assigned), when indexing
    indexed: bool = False


class Preparer:
    """Holds what preparing needs (renderer, token counter, image store, embedders), loaded once."""

    def __init__(self, settings: Settings, images: ImageStore, embedders: Embedders | None = None) -> None:
        self.settings = settings
        self.images = images
        self.embedders = embedders
        self.renderer = GlyphRenderer(settings.render)
        self.counter = TokenCounter.load(settings.token_counter)
        self.fingerprint = render_fingerprint(settings.render, settings.token_counter)
        # Where each image key is noted before it is stored: if this process is killed mid-way, the
        # parent removes what it had stored (see PreparePool).
        self.journal: Path | None = None

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
        """Render, store the images, count, and embed the sections `old` does not already have indexed."""
        doc = render_document(path, self.settings, self.renderer, on_stage=on_stage)
        if on_stage:
            on_stage(path, "store")
        rec = self.record(doc, sha, nbytes, old, tags)
        if self.embedders is None:
            return PreparedDoc(path, rec)
        if on_stage:
            on_stage(path, "index")
        assign_point_ids(rec)
        known = {s.point_id for s in old.sections if s.point_id} if old else set()  # live, so indexed
        images = {s.images[0].key: p.image for s, p in zip(rec.sections, doc.parts, strict=True)}
        points = embed_points(self.embedders, self.settings.tenant, rec, images, skip=known)
        return PreparedDoc(path, rec, points, indexed=True)

    def record(
        self, doc: RenderedDocument, sha: str, nbytes: int, old: DocumentRecord | None, tags: list[str]
    ) -> DocumentRecord:
        """Store the images and build the manifest record (one section record per rendered part)."""
        texts = [p.content for p in doc.parts]
        tokens = self.counter.count_many(texts) if texts else []
        sections: list[SectionRecord] = []
        for part, n_tok in zip(doc.parts, tokens, strict=True):
            if self.journal is not None:
                with self.journal.open("a") as f:
                    f.write(ImageStore.key_for(part.png) + "\n")
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
                    role=sec.role,
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
        path = doc.path
        return DocumentRecord(
            doc_id=doc.doc_id,
            title=doc.title,
            source_name=path.name,
            source_path=str(path.resolve()),
            format=path.suffix.lower().lstrip("."),
            file_sha256=sha,
            file_bytes=nbytes,
            pages=doc.pages,
            ocr_used=doc.ocr_used,
            render_fingerprint=self.fingerprint,
            tokenizer=self.counter.name,
            render_profile=self.settings.render_profile,
            ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
            tags=sorted(set(tags) | set(old.tags if old else [])),
            revises=old.revises if old else None,
            warnings=list(doc.warnings),
            sections=sections,
        )


# -- in worker processes ----------------------------------------------------------------------------
_preparer: Preparer | None = None


def _worker_setup(settings: Settings, index: bool) -> None:
    global _preparer
    from kb.images import open_image_store

    embedders = None
    if index:
        from kb.signals.configured import build_embedders

        embedders = build_embedders(settings)
    _preparer = Preparer(settings, open_image_store(settings), embedders)


def _worker_prepare(
    path: str, sha: str, nbytes: int, old: str | None, tags: list[str], journal: str | None = None
) -> PreparedDoc:
    assert _preparer is not None, "_worker_setup runs first in every worker"
    rec = DocumentRecord.model_validate_json(old) if old else None
    _preparer.journal = Path(journal) if journal else None
    try:
        return _preparer.prepare(Path(path), sha, nbytes, rec, tags)
    finally:
        _preparer.journal = None


class PrepareLostError(WorkerLostError):
    """A preparation whose worker died or was killed; `written` names the images it may have stored,
    which the committer removes unless a committed document uses them."""

    def __init__(self, message: str, hint: str, written: frozenset[str]) -> None:
        super().__init__(message, hint)
        self.written = written


class PreparePool(WorkerPool):
    """`prepare(path, sha, nbytes, old, tags)` for `Ingestor.ingest_file`, run in worker processes."""

    def __init__(self, settings: Settings, *, workers: int = 1, index: bool = True, nice: int = WORKER_NICE) -> None:
        super().__init__(_worker_setup, (settings, index), workers=workers, nice=nice)
        self.settings = settings
        self.index = index

    def __call__(self, path: Path, sha: str, nbytes: int, old: DocumentRecord | None, tags: list[str]) -> PreparedDoc:
        """Prepare in a worker, within the per-file time and memory budgets."""
        old_json = old.model_dump_json() if old else None
        with tempfile.TemporaryDirectory(prefix="kb-prepare-") as tmp:
            journal = Path(tmp) / "images"
            try:
                return self.run(
                    _worker_prepare,
                    str(path),
                    sha,
                    nbytes,
                    old_json,
                    tags,
                    str(journal),
                    what=path.name,
                    seconds=self.settings.ingest_job_seconds,
                    memory_mb=self.settings.ingest_job_memory_mb,
                )
            except WorkerLostError as exc:
                written = frozenset(journal.read_text().split()) if journal.exists() else frozenset()
                raise PrepareLostError(exc.message, exc.hint, written) from None
