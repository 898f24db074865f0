"""What the app shares between requests: the KnowledgeBase, the writer lock, the answerer, the ingest jobs."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kb.answer.backend import AnswerBackend, Readiness, make_answerer
from kb.answer.conversation import Turn
from kb.answer.prepare import PreparedAnswer, Scope, prepare_answer
from kb.api import tenancy
from kb.api.jobs import Job, JobRunner
from kb.catalog import doc_id_for
from kb.errors import KbError
from kb.hits import Hit
from kb.ingest_prepare import PreparePool
from kb.retrieve import SearchOptions, is_cross_document
from kb.service import KnowledgeBase
from kb.settings import Settings
from kb.uploads import discard, inside, uploads_root

log = logging.getLogger(__name__)


class ApiState:
    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        # Serialises this process's writers (ingest jobs, deletes, tag changes). Searches do not take
        # it: the index, catalog and query encoders are safe for concurrent readers.
        self.lock = threading.RLock()
        # Job records live in the data dir: a restarted server (or another replica on the same data
        # dir) answers their status, and resumes the ones a dead server left unfinished.
        self.jobs = JobRunner(kb.settings.data_dir / "jobs")
        self._answerer: AnswerBackend | None = None
        self._answerer_made = False
        self._lazy_lock = threading.Lock()
        self._pool: PreparePool | None = None

    def _backend(self) -> AnswerBackend | None:
        """The configured VLM backend, made once (not loaded); None when answering is off."""
        with self._lazy_lock:
            if not self._answerer_made:
                self._answerer = make_answerer(self.kb.settings)
                self._answerer_made = True
            return self._answerer

    def answerer(self) -> AnswerBackend | None:
        """The configured VLM backend for one request. The backend is made and loaded once and keeps its
        HTTP connections (or its loaded model); each request gets its own copy (`for_request`)."""
        backend = self._backend()
        if backend is None:
            return None
        backend.load()  # in the shared instance, not in a per-request copy; a no-op once loaded
        return backend.for_request()

    def answerer_ready(self) -> Readiness | None:
        """The backend's own readiness check; None when answering is off."""
        backend = self._backend()
        return backend.ready() if backend is not None else None

    def pool(self) -> PreparePool:
        """Worker processes for the slow stage of ingest: uploads then cost searches CPU, not the GIL."""
        with self._lazy_lock:
            if self._pool is None:
                self._pool = PreparePool(self.kb.settings, workers=max(1, self.kb.settings.ingest_workers))
            return self._pool

    def close(self) -> None:
        self.jobs.shutdown()
        if self._pool is not None:
            self._pool.close()
        with self._lazy_lock:
            if self._answerer is not None:
                self._answerer.close()
            self._answerer = None
            self._answerer_made = False

    @property
    def uploads_dir(self) -> Path:
        return uploads_root(self.kb.settings)

    def tenant_uploads(self, tenant: str) -> Path:
        """Where a tenant's uploads are staged; cleanup never reaches above it."""
        return self.uploads_dir / tenant

    # -- tenant-scoped retrieval -----------------------------------------------------------------
    def _scope(self, tenant: str, doc_ids: list[str] | None) -> list[str]:
        """The document ids a query may touch: the tenant's own, narrowed to `doc_ids` if given."""
        if doc_ids:
            return [tenancy.require(self.kb, tenant, d).doc_id for d in doc_ids]
        own = [d.doc_id for d in tenancy.summaries(self.kb, tenant) if d.point_ids]
        if not own:
            raise KbError("this tenant has no indexed documents", "upload some with POST /v1/documents")
        return own

    def search(
        self,
        tenant: str,
        query: str,
        *,
        k: int | None = None,
        doc_ids: list[str] | None = None,
        tags: list[str] | None = None,
        signals: list[str] | None = None,
        diverse: bool | None = None,
    ) -> list[Hit]:
        scope = self._scope(tenant, doc_ids)
        diversify = is_cross_document(query, doc_ids) if diverse is None else diverse
        opts = SearchOptions(
            k=k or self.kb.settings.top_k, doc_ids=scope, tags=tags, signals=signals, diversify=diversify
        )
        hits = self.kb.search(query, opts)
        allowed = set(scope)
        return [h for h in hits if h.doc in allowed]  # belt and braces: the filter ran in the store too

    def prepare(
        self, tenant: str, question: str, scope: Scope | None = None, history: Sequence[Turn] = ()
    ) -> PreparedAnswer:
        """`prepare_answer` within the tenant's documents (the chosen ones must be the tenant's)."""
        scope = scope or Scope()
        chosen = list(scope.doc_ids) if scope.doc_ids else None
        return prepare_answer(self.kb, question, replace(scope, within=self._scope(tenant, chosen)), history)

    # -- ingest ------------------------------------------------------------------------------------
    def submit_upload(self, tenant: str, staged: list[Path], tags: list[str], batch: Path) -> Job:
        params = {"files": [str(p) for p in staged], "tags": tags, "staged_root": str(batch)}
        return self.jobs.submit(
            tenant, "ingest", [p.name for p in staged], lambda job: self.ingest_job(job, staged, tags, batch), params
        )

    def submit_reingest(self, tenant: str, doc_id: str, src: Path, tags: list[str]) -> Job:
        params = {"doc_id": doc_id, "source": str(src), "tags": tags}
        return self.jobs.submit(tenant, "reingest", [src.name], self._reingest_work(doc_id, src, tags), params)

    def _reingest_work(self, doc_id: str, src: Path, tags: list[str]) -> Callable[[Job], None]:
        def work(job: Job) -> None:
            with self.lock:  # re-ingesting unchanged bytes is a no-op, so drop the manifest's hash first
                cur = self.kb.catalog.get(doc_id)
                if cur is not None:
                    self.kb.catalog.put(cur.model_copy(update={"file_sha256": ""}))
            self.ingest_job(job, [src], tags, None)

        return work

    def recover_jobs(self) -> list[str]:
        """At startup: resume the jobs a dead server (kill -9, a crash, a lost host) left unfinished.
        Ingest is idempotent per document, so redoing a file that had finished costs time, not data."""

        def rebuild(job: Job) -> Callable[[Job], None] | None:
            p = job.params
            if job.kind == "ingest":
                files = [Path(f) for f in p.get("files", [])]
                root = Path(p.get("staged_root", ""))
                files = [f for f in files if f.is_file() and inside(f, self.uploads_dir)]
                if not files:
                    return None
                tags = [str(t) for t in p.get("tags", [])]
                return lambda j: self.ingest_job(j, files, tags, root)
            if job.kind == "reingest":
                src, doc_id = Path(p.get("source", "")), str(p.get("doc_id", ""))
                if not src.is_file() or not doc_id:
                    return None
                return self._reingest_work(doc_id, src, [str(t) for t in p.get("tags", [])])
            return None

        resumed = self.jobs.recover(rebuild)
        if resumed:
            log.warning("resumed %d ingest job(s) left unfinished by a previous server: %s", len(resumed), resumed)
        return resumed

    def ingest_job(self, job: Job, files: list[Path], tags: list[str], staged_root: Path | None) -> None:
        """Ingest staged files (each in its own folder); keep the new copy on success, drop it on failure."""
        for i, path in enumerate(files):
            if i:  # other tenants' waiting jobs go between this batch's files
                self.jobs.yield_turn(job)
            old = self.kb.catalog.get(doc_id_for(path))
            if old is not None and not tenancy.owns(old, job.tenant, self.kb.settings.tenant):
                # ids cannot collide between tenants (kb.names), but a CLI-ingested file may carry any
                # name: an upload never replaces a document its tenant does not own
                job.results.append(
                    {"file": path.name, "status": "failed", "error": "this file name is taken; rename the file"}
                )
                if staged_root:
                    discard(path.parent, self.tenant_uploads(job.tenant))
                continue
            try:
                (res,) = self.kb.ingest(
                    [path],
                    tags=[*tags, tenancy.tenant_tag(job.tenant)],
                    pool=self.pool(),
                    commit_lock=lambda: self.lock,
                )
            except KbError as exc:
                job.results.append({"file": path.name, "status": "failed", "error": _scrub(exc.message, path, self.kb.settings)})
                if staged_root:
                    discard(path.parent, self.tenant_uploads(job.tenant))
                continue
            entry: dict[str, Any] = {"file": path.name, "status": res.status, "document": res.doc_id}
            if res.status == "failed":
                entry["error"] = _scrub(res.error or "ingest failed", path, self.kb.settings)
                if staged_root:
                    discard(path.parent, self.tenant_uploads(job.tenant))
            else:
                want = sorted({*tags, tenancy.tenant_tag(job.tenant)})
                if res.doc_id:  # an upload's tags replace the document's (ingest alone merges them)
                    with self.lock:
                        cur = self.kb.catalog.get(res.doc_id)
                        if cur is not None and sorted(cur.tags) != want:
                            self.kb.set_tags(res.doc_id, want)
                entry.update(
                    sections=res.sections,
                    images=res.images,
                    pages=res.pages,
                    text_tokens=res.text_tokens,
                    visual_tokens=res.visual_tokens,
                )
                if res.warnings:
                    entry["warnings"] = [_scrub(w, path, self.kb.settings) for w in res.warnings]
                if staged_root:  # keep exactly the copy the manifest now names; drop the other one
                    cur = self.kb.catalog.get(res.doc_id) if res.doc_id else None
                    keep = Path(cur.source_path).parent if cur is not None else None
                    candidates = {path.parent} | ({Path(old.source_path).parent} if old is not None else set())
                    for folder in candidates - {keep}:
                        discard(folder, self.tenant_uploads(job.tenant))
            job.results.append(entry)


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\")]+")
_ABS_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\":/]+/)+[^\s'\":]*")


def _scrub(message: str, path: Path, settings: Settings | None = None) -> str:
    """An error for the client, like the 503s: the file's name instead of any server path, and never the
    internal stores (bucket, prefix, endpoint URL, data dir): those go to the log only."""
    if "image store" in message:
        log.error("ingest of %s: %s", path.name, message)
        return f"the image store is unavailable, so {path.name} was not ingested; try again later"
    for p in (str(path), str(path.parent), str(path.resolve()), str(path.resolve().parent)):
        message = message.replace(p, path.name if p.endswith(path.name) else "")
    if settings is not None:
        internal = [str(settings.image_store_url or ""), str(settings.qdrant_url or "")]
        internal += [str(settings.data_dir.resolve()), str(settings.data_dir)]
        internal += [str(v) for v in settings.image_store_options.values() if isinstance(v, str)]
        for name in sorted((n for n in internal if len(n) > 3), key=len, reverse=True):
            message = message.replace(name, "(internal)")
    message = _URL.sub("(internal address)", message)
    return _ABS_PATH.sub(lambda m: Path(m.group()).name, message)
