"""The composition root: the one place that wires settings, stores and the ingest pipeline."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kb.catalog import Catalog, DocumentRecord
from kb.errors import KbError
from kb.fsutil import writer_lock
from kb.images import ImageStore, open_image_store
from kb.labels import clean_tags
from kb.settings import Settings

if TYPE_CHECKING:
    from kb.hits import Hit
    from kb.index import QdrantIndex
    from kb.indexer import DocumentIndexer
    from kb.ingest_commit import Committer, IngestResult, LockFactory
    from kb.ingest_prepare import PreparePool
    from kb.modelhub import Profile
    from kb.retrieve import Retriever, SearchOptions
    from kb.signals.configured import Embedders

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
    tokenizers: tuple[str, ...] = ()  # what counted the text tokens (one, unless manifests predate a change)

    @property
    def compression(self) -> float:
        return self.text_tokens / self.visual_tokens if self.visual_tokens else 0.0


class KnowledgeBase:
    """Owns the data dir, the index and the models; everything heavy opens on first use."""

    def __init__(
        self, settings: Settings, *, qdrant_location: str | None = None, embedders: Embedders | None = None
    ) -> None:
        self.settings = settings
        self.catalog = Catalog(settings.docs_dir)
        self.images: ImageStore = open_image_store(settings)
        self._qdrant_location = qdrant_location
        self._index: QdrantIndex | None = None
        self._embedders: Embedders | None = embedders
        self._retriever: Retriever | None = None
        self._profile: Profile | None = None
        self._open_lock = threading.RLock()  # request threads may open the parts at once; open them once

    # -- lazily opened parts ---------------------------------------------------------------------
    @property
    def index(self) -> QdrantIndex:
        if self._index is None:
            from kb.index import QdrantIndex, open_client

            with self._open_lock:
                if self._index is None:
                    self._index = QdrantIndex(
                        open_client(self.settings, location=self._qdrant_location), self.settings.collection
                    )
        return self._index

    def resolve_models(self, announce: Callable[[str], None] | None = None) -> Profile:
        """Decide once which models this machine can load (see kb.modelhub); `announce` gets the one-line
        note when the bundled profile stands in for unavailable defaults (default: a log warning)."""
        from kb.modelhub import Profile, resolve_profile

        with self._open_lock:
            if self._profile is None:
                if self._embedders is not None:  # given by the caller: nothing to decide
                    self._profile = Profile(self.settings)
                    return self._profile
                self._profile = resolve_profile(self.settings)
                self.settings = self._profile.settings
                if self._profile.note:
                    (announce or log.warning)(self._profile.note)
        return self._profile

    @property
    def models_loaded(self) -> bool:
        """Whether the embedding models are in memory (the first ingest or search loads them)."""
        return self._embedders is not None

    @property
    def embedders(self) -> Embedders:
        if self._embedders is None:
            from kb.signals.configured import build_embedders

            self.resolve_models()
            with self._open_lock:
                if self._embedders is None:
                    self._embedders = build_embedders(self.settings)
        return self._embedders

    def indexer(self) -> DocumentIndexer:
        from kb.indexer import DocumentIndexer

        return DocumentIndexer(self.index, self.embedders, self.settings.tenant)

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            from kb.retrieve import Retriever

            with self._open_lock:
                if self._retriever is not None:
                    return self._retriever
                self.indexer().ensure()  # checks the collection matches the configured models
                self._retriever = Retriever(
                    self.index,
                    self.embedders,
                    self.images,
                    per_signal_limit=self.settings.per_signal_limit,
                    weights=self.settings.signal_weights,
                    rrf_k=self.settings.rrf_k,
                    live_ids=self.catalog.live_point_ids,
                )
        return self._retriever

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
            self._retriever = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- search ------------------------------------------------------------------------------------
    def search(self, question: str, opts: SearchOptions | None = None) -> list[Hit]:
        from kb.errors import KbError
        from kb.retrieve import SearchOptions

        opts = opts or SearchOptions(k=self.settings.top_k)
        self.check_query(question, opts)
        if opts.tenant is None:
            opts.tenant = self.settings.tenant
        if opts.doc_ids:
            known = self.catalog.summaries()
            unknown = [d for d in opts.doc_ids if d not in known]
            if unknown:
                raise KbError(f"unknown document(s): {', '.join(unknown)}", "see `kb docs` for ids")
        if not self.catalog.live_point_ids():
            raise KbError("the knowledge base has no indexed documents", "add some with `kb ingest PATH`")
        return self.retriever.search(question, opts)

    def check_query(self, question: str, opts: SearchOptions) -> None:
        """Refuse what would silently return something else: a blank question, k < 1, a signal that is off."""
        from kb.errors import QueryError

        if not question.strip():
            raise QueryError("the question is empty", 'ask something, e.g. kb search "p99 latency of POST /payments"')
        if opts.k < 1:
            raise QueryError(f"k must be at least 1 (got {opts.k})", "pass --k 1 or more (default 8)")
        if opts.signals:
            from kb.signals.registry import entries

            why = {e.name: e.enabled_by for e in entries()}
            known = list(why)
            unknown = [s for s in opts.signals if s not in known]
            if unknown:
                raise QueryError(f"unknown signal(s): {', '.join(unknown)}", f"use one of: {', '.join(known)}")
            self.resolve_models()
            on = self.embedders.signals
            off = [s for s in opts.signals if s not in on]
            if off:
                bundled = (
                    " (the bundled profile switched it off: no model for it on this machine)"
                    if (self._profile and self._profile.note)
                    else ""
                )
                raise QueryError(
                    f"the {' and '.join(off)} signal is disabled{bundled}",
                    f"use --signal {' or --signal '.join(on)}, or enable it ({', '.join(why[s] for s in off)}; "
                    "`kb models` lists what this machine has) and run `kb reindex`",
                )

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        tags: list[str] | None = None,
        on_file: Callable[[Path, int, int], None] | None = None,
        on_stage: Callable[[Path, str], None] | None = None,
        index: bool = True,
        pool: PreparePool | None = None,
        commit_lock: LockFactory | None = None,
    ) -> list[IngestResult]:
        """Ingest files and folders; one failure never stops the others.

        With `index=False` documents are rendered and catalogued but not embedded (render-only).
        Files are prepared (parse, render, embed) here, or with a `pool` in its worker processes,
        `pool.workers` at a time; only each file's commit holds the data dir's writer lock (waiting for
        it), inside `commit_lock` if given."""
        from ingest.pipeline import iter_files

        files = list(iter_files(paths))
        if not files:
            return []
        committer = self._committer(index)
        outer = commit_lock or contextlib.nullcontext

        @contextlib.contextmanager
        def locked() -> Iterator[None]:
            with outer(), writer_lock(self.settings.data_dir):
                yield

        done = 0
        progress = threading.Lock()

        def one(f: Path) -> IngestResult:
            nonlocal done
            if pool is None and on_file:
                on_file(f, done, len(files))
            r = committer.ingest_file(f, on_stage=on_stage, tags=tags, prepare=pool, commit_lock=locked)
            with progress:
                done += 1
                if pool is not None and on_file:
                    on_file(f, done, len(files))
            return r

        if pool is None or pool.workers == 1 or len(files) == 1:
            return [one(f) for f in files]
        with ThreadPoolExecutor(max_workers=pool.workers, thread_name_prefix="kb-ingest") as ex:
            return list(ex.map(one, files))

    def _committer(self, index: bool) -> Committer:
        from kb.ingest_commit import Committer

        indexer = None
        if index:
            indexer = self.indexer()
            indexer.ensure()  # load models and check the collection once, before any file
        return Committer(self.settings, self.catalog, self.images, indexer)

    def render_file(self, path: Path, out_dir: Path) -> list[Path]:
        """Render one file's glyph images into out_dir (nothing is stored in the KB)."""
        from ingest.pipeline import render_document
        from ingest.render import GlyphRenderer

        doc = render_document(path, self.settings, GlyphRenderer(self.settings.render))
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for i, part in enumerate(doc.parts):
            p = out_dir / f"{doc.doc_id}.{i:03d}.png"
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
            rec = self.catalog.delete(doc_id)  # readers stop seeing it here
            if any(s.point_id for s in rec.sections):
                self.index.delete_doc(doc_id)
            self.images.remove(set(rec.image_keys) - self.catalog.referenced_images())
        return rec

    def set_tags(self, doc_id: str, tags: Sequence[str]) -> DocumentRecord:
        """Replace a document's tags, on its manifest and its indexed points (for tag filters)."""
        clean = clean_tags(tags)
        with writer_lock(self.settings.data_dir):
            rec = self.catalog.require(doc_id)
            rec.tags = clean
            if any(s.point_id for s in rec.sections):
                self.indexer().set_tags(rec)
            self.catalog.put(rec)
        return rec

    def set_revises(self, doc_id: str, previous: str | None) -> DocumentRecord:
        """Record that `doc_id` is a new version of `previous` (None: of nothing)."""
        with writer_lock(self.settings.data_dir):
            rec = self.catalog.require(doc_id)
            if previous is not None:
                if previous == doc_id:
                    raise KbError(f"{doc_id!r} cannot revise itself", "name the previous version's id")
                self.catalog.require(previous)
            rec.revises = previous
            self.catalog.put(rec)
        return rec

    def reindex(self, *, on_file: Callable[[str, int, int], None] | None = None) -> int:
        """Rebuild the collection with the configured models from the stored images and texts."""
        with writer_lock(self.settings.data_dir):
            self.index.drop()
            self._retriever = None
            indexer = self.indexer()
            indexer.ensure()
            docs = self.documents()
            n = 0
            for i, rec in enumerate(docs):
                if on_file:
                    on_file(rec.doc_id, i, len(docs))
                imgs = {k: self.images.open_rgb(k) for k in rec.image_keys}
                n += indexer.upsert(rec, imgs)
                self.catalog.put(rec)
            return n

    def stale_renders(self) -> list[DocumentRecord]:
        """Documents rendered with another render configuration or profile than the current one."""
        from ingest.pipeline import render_fingerprint

        now = render_fingerprint(self.settings.render, self.settings.token_counter)
        return [d for d in self.documents() if d.render_fingerprint != now]

    def rerender(
        self, *, on_file: Callable[[Path, int, int], None] | None = None
    ) -> tuple[list[IngestResult], list[str]]:
        """Re-render (and re-index) every stale document from its source file, the way a model change is
        followed by a reindex. Returns the results and the ids of stale documents whose source is gone."""
        stale = self.stale_renders()
        paths = [Path(d.source_path) for d in stale if Path(d.source_path).is_file()]
        gone = [d.doc_id for d in stale if not Path(d.source_path).is_file()]
        return (self.ingest(paths, on_file=on_file) if paths else []), gone

    def gc(self) -> int:
        """Drop images that no manifest references (left by a crash mid-ingest)."""
        with writer_lock(self.settings.data_dir):
            live = self.catalog.referenced_images()
            n = self.images.remove([k for k in self.images.all_keys() if k not in live])
            if self.settings.qdrant_url or self.settings.qdrant_path.exists():
                n += self.index.delete_not_in(self.catalog.live_point_ids())
            return n

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
            tokenizers=tuple(sorted({d.tokenizer for d in docs if d.tokenizer})),
        )
