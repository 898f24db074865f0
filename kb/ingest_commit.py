"""The committing half of ingest, in the process that owns the index: decide what a file needs (nothing,
a re-index, or a fresh preparation), have it prepared (here, or by a `PreparePool`), then make it the
current version: index write, manifest switch, cleanup of what the old version alone used.

The manifest is written last, so a failure at any stage leaves the previous version (or nothing) in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image

from ingest.pipeline import StageCallback
from kb.catalog import Catalog, DocumentRecord
from kb.errors import CorruptDocumentError, FileTooLargeError, KbError
from kb.images import ImageStore
from kb.indexer import DocumentIndexer
from kb.ingest_prepare import PreparedDoc, PrepareLostError, Preparer
from kb.settings import Settings, mb_bytes
from kb.signals.configured import Embedders
from kb.types import doc_id_for

log = logging.getLogger(__name__)


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


# Where the slow stage runs (`Preparer.prepare` here, or a `PreparePool`), and the lock around a commit.
PrepareFn = Callable[[Path, str, int, DocumentRecord | None, list[str]], PreparedDoc]
LockFactory = Callable[[], AbstractContextManager[object]]


class MissingImagesError(KbError):
    """Images a prepared document names were removed before it was committed (a concurrent cleanup)."""


class Committer:
    """Ingests files into one data dir: checks, prepares (or has a pool prepare), commits.

    `commit` (index write, manifest switch, cleanup) is short and serialised by the caller's writer lock;
    without a pool its own `Preparer` does the slow part here."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        images: ImageStore,
        indexer: DocumentIndexer | None = None,
        *,
        embedders: Embedders | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.images = images
        self.indexer = indexer
        self.preparer = Preparer(settings, images, embedders or (indexer.embedders if indexer else None))

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
            and old.render_fingerprint == self.preparer.fingerprint
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
            try:
                prepared = prepare(path, sha, len(data), old, tags)
            except PrepareLostError as exc:  # killed mid-way: drop the images it stored, unless in use
                try:
                    with commit_lock():
                        self.images.remove(exc.written - self.catalog.referenced_images())
                except Exception:  # e.g. the image store is down: they stay for `kb gc`
                    log.exception("cannot remove the images of an abandoned preparation of %s", path.name)
                raise
        else:
            prepared = self.preparer.prepare(path, sha, len(data), old, tags, on_stage=on_stage)
        try:
            with commit_lock():
                return self.commit(prepared, on_stage=on_stage)
        except MissingImagesError:  # rare: redo the document here, where nothing else runs meanwhile
            with commit_lock():
                again = self.preparer.prepare(path, sha, len(data), old, tags, on_stage=on_stage)
                return self.commit(again, on_stage=on_stage)

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
