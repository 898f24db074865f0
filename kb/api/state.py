"""What the app shares between requests: the KnowledgeBase, one lock around it, the ingest jobs."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from kb.answer.prompt import build_prompt
from kb.answer.run import AskOptions, Prepared
from kb.api import tenancy
from kb.api.jobs import Job, JobRunner
from kb.catalog import doc_id_for
from kb.errors import KbError
from kb.hits import Hit
from kb.retrieve import SearchOptions, is_cross_document
from kb.service import KnowledgeBase

log = logging.getLogger(__name__)


class ApiState:
    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        # The embedded store and the lazily loaded models are not safe for concurrent use; one lock
        # serialises retrieval and ingest (a Qdrant server lets several api replicas run side by side).
        self.lock = threading.RLock()
        self.jobs = JobRunner()

    @property
    def uploads_dir(self) -> Path:
        return self.kb.settings.data_dir / "uploads"

    # -- tenant-scoped retrieval -----------------------------------------------------------------
    def _scope(self, tenant: str, doc_ids: list[str] | None) -> list[str]:
        """The document ids a query may touch: the tenant's own, narrowed to `doc_ids` if given."""
        if doc_ids:
            return [tenancy.require(self.kb, tenant, d).doc_id for d in doc_ids]
        own = [r.doc_id for r in tenancy.documents(self.kb, tenant) if any(s.point_id for s in r.sections)]
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
        with self.lock:
            scope = self._scope(tenant, doc_ids)
            diversify = is_cross_document(query, doc_ids) if diverse is None else diverse
            opts = SearchOptions(
                k=k or self.kb.settings.top_k, doc_ids=scope, tags=tags, signals=signals, diversify=diversify
            )
            hits = self.kb.search(query, opts)
        allowed = set(scope)
        return [h for h in hits if h.doc in allowed]  # belt and braces: the filter ran in the store too

    def prepare(self, tenant: str, question: str, opts: AskOptions, retrieval_query: str | None = None) -> Prepared:
        """Like kb.answer.run.prepare, scoped to the tenant; retrieval may run on another text than the
        question the VLM sees (chat: the recent user turns)."""
        query = retrieval_query or question
        doc_ids = list(opts.doc_ids) if opts.doc_ids else None
        cross = is_cross_document(query, doc_ids) if opts.cross_document is None else opts.cross_document
        t0 = time.perf_counter()
        hits = self.search(tenant, query, k=opts.k, doc_ids=doc_ids, tags=list(opts.tags or []) or None, diverse=cross)
        t1 = time.perf_counter()
        cross = cross and len({h.doc for h in hits}) > 1
        prompt = build_prompt(question, hits, self.kb.settings, self.kb.images, cross_document=cross, mode=opts.mode)
        return Prepared(question, hits, prompt, {"retrieve": t1 - t0, "prompt": time.perf_counter() - t1})

    # -- ingest ------------------------------------------------------------------------------------
    def ingest_job(self, job: Job, files: list[Path], tags: list[str], staged_root: Path | None) -> None:
        """Ingest staged files (each in its own folder); keep the new copy on success, drop it on failure."""
        for path in files:
            old = self.kb.catalog.get(doc_id_for(path))
            try:
                with self.lock:
                    (res,) = self.kb.ingest([path], tags=[*tags, tenancy.tenant_tag(job.tenant)])
            except KbError as exc:
                job.results.append({"file": path.name, "status": "failed", "error": _scrub(exc.message, path)})
                if staged_root:
                    drop_upload_dir(path.parent, self.uploads_dir)
                continue
            entry: dict[str, Any] = {"file": path.name, "status": res.status, "document": res.doc_id}
            if res.status == "failed":
                entry["error"] = _scrub(res.error or "ingest failed", path)
                if staged_root:
                    drop_upload_dir(path.parent, self.uploads_dir)
            else:
                want = sorted({*tags, tenancy.tenant_tag(job.tenant)})
                if res.doc_id:  # an upload's tags replace the document's (ingest alone merges them)
                    with self.lock:
                        cur = self.kb.catalog.get(res.doc_id)
                        if cur is not None and sorted(cur.tags) != want:
                            self.kb.set_tags(res.doc_id, want)
                entry.update(sections=res.sections, images=res.images, pages=res.pages)
                if res.warnings:
                    entry["warnings"] = [_scrub(w, path) for w in res.warnings]
                if staged_root:  # keep exactly the copy the manifest now names; drop the other one
                    cur = self.kb.catalog.get(res.doc_id) if res.doc_id else None
                    keep = Path(cur.source_path).parent if cur is not None else None
                    candidates = {path.parent} | ({Path(old.source_path).parent} if old is not None else set())
                    for folder in candidates - {keep}:
                        drop_upload_dir(folder, self.uploads_dir)
            job.results.append(entry)


def _scrub(message: str, path: Path) -> str:
    """An error for the client: the file's name instead of any server path."""
    for p in (str(path), str(path.parent), str(path.resolve()), str(path.resolve().parent)):
        message = message.replace(p, path.name if p.endswith(path.name) else "")
    return message


def drop_upload_dir(folder: Path, root: Path) -> None:
    """Remove an upload folder, only ever one inside the uploads root."""
    try:
        folder.resolve().relative_to(root.resolve())
    except ValueError:
        return
    if folder.resolve() != root.resolve():
        shutil.rmtree(folder, ignore_errors=True)
