"""The composition root: the one place that wires settings, stores and the ingest pipeline."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kb.catalog import Catalog, DocumentRecord
from kb.fsutil import writer_lock
from kb.images import ImageStore
from kb.settings import Settings

if TYPE_CHECKING:
    from ingest.pipeline import IngestResult

log = logging.getLogger(__name__)


@dataclass
class CorpusStats:
    documents: int
    sections: int
    images: int
    pages: int
    text_tokens: int
    visual_tokens: int
    image_bytes: int

    @property
    def compression(self) -> float:
        return self.text_tokens / self.visual_tokens if self.visual_tokens else 0.0


class KnowledgeBase:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog = Catalog(settings.docs_dir)
        self.images = ImageStore(settings.images_dir)

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        tags: list[str] | None = None,
        on_file: Callable[[Path, int, int], None] | None = None,
        on_stage: Callable[[Path, str], None] | None = None,
    ) -> list[IngestResult]:
        """Ingest files and folders; one failure never stops the others."""
        from ingest.pipeline import Ingestor, iter_files

        files = list(iter_files(paths))
        results: list[IngestResult] = []
        with writer_lock(self.settings.data_dir):
            ingestor = Ingestor(self.settings, self.catalog, self.images)
            for i, f in enumerate(files):
                if on_file:
                    on_file(f, i, len(files))
                results.append(ingestor.ingest_file(f, on_stage=on_stage, tags=tags))
        return results

    def render_file(self, path: Path, out_dir: Path) -> list[Path]:
        """Render one file's glyph images into out_dir (nothing is stored in the KB)."""
        from ingest.pipeline import render_document
        from ingest.render import GlyphRenderer

        doc_id, _, _, _, _, parts = render_document(path, self.settings, GlyphRenderer(self.settings.render))
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for i, part in enumerate(parts):
            p = out_dir / f"{doc_id}.{i:03d}.png"
            p.write_bytes(part.png)
            written.append(p)
        return written

    def documents(self) -> list[DocumentRecord]:
        return list(self.catalog)

    def get(self, doc_id: str) -> DocumentRecord:
        return self.catalog.require(doc_id)

    def delete(self, doc_id: str) -> DocumentRecord:
        """Remove a document and every image no other document uses."""
        with writer_lock(self.settings.data_dir):
            rec = self.catalog.delete(doc_id)
            self.images.remove(set(rec.image_keys) - self.catalog.referenced_images())
        return rec

    def gc(self) -> int:
        """Drop images that no manifest references (left by a crash mid-ingest)."""
        with writer_lock(self.settings.data_dir):
            live = self.catalog.referenced_images()
            return self.images.remove([k for k in self.images.keys() if k not in live])

    def stats(self) -> CorpusStats:
        docs = self.documents()
        return CorpusStats(
            documents=len(docs),
            sections=sum(len(d.sections) for d in docs),
            images=len({k for d in docs for k in d.image_keys}),
            pages=sum(d.pages or 0 for d in docs),
            text_tokens=sum(d.text_tokens for d in docs),
            visual_tokens=sum(d.visual_tokens for d in docs),
            image_bytes=self.images.size_bytes(),
        )

