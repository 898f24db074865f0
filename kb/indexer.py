"""Turns a document's rendered sections into Qdrant points and keeps the index in step with the catalog.

Order per document: upsert the new points (only those not already there), write the manifest
(elsewhere), then drop the old points. Readers keep only hits whose point is in a current
manifest, so a document is never seen missing or doubled, and a crash leaves the old version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence

from PIL import Image

from kb.catalog import DocumentRecord, SectionRecord
from kb.index import QdrantIndex
from kb.points import IndexPoint, point_id
from kb.signals import Passage
from kb.signals.configured import Embedders

log = logging.getLogger(__name__)


def passage_text(title: str, sec: SectionRecord) -> str:
    """What the text signals see: provenance first, so headings help matching."""
    head = " › ".join([title, *sec.heading_path])
    if sec.role == "toc":
        # a contents/index listing names every section: matched on its heading only, it cannot crowd them out
        return head
    return f"{head}\n{sec.text}"


class DocumentIndexer:
    def __init__(self, index: QdrantIndex, embedders: Embedders, tenant: str) -> None:
        self.index = index
        self.embedders = embedders
        self.tenant = tenant
        self._ready = False

    def ensure(self) -> None:
        if not self._ready:
            self.index.ensure(self.embedders.specs())
            self._ready = True

    def assign_ids(self, rec: DocumentRecord) -> None:
        assign_point_ids(rec)

    def missing(self, rec: DocumentRecord) -> bool:
        """True when some section of `rec` has no point in the index."""
        self.ensure()
        self.assign_ids(rec)
        ids = [s.point_id for s in rec.sections if s.point_id]
        return len(self.index.existing_ids(ids)) < len(ids)

    def upsert(self, rec: DocumentRecord, images: Mapping[str, Image.Image]) -> int:
        """Embed and write the points of `rec` not yet in the index; returns how many were written."""
        self.ensure()
        self.assign_ids(rec)
        have = self.index.existing_ids([s.point_id for s in rec.sections if s.point_id])
        points = embed_points(self.embedders, self.tenant, rec, images, skip=have)
        if points:
            self.index.upsert(points)
        return len(points)

    def write(
        self,
        rec: DocumentRecord,
        points: Sequence[IndexPoint],
        load_images: Callable[[Sequence[str]], Mapping[str, Image.Image]],
    ) -> int:
        """Write points embedded elsewhere (an ingest worker) that the index lacks; sections whose points
        are neither given nor in the index (deleted since) are embedded here from the stored images."""
        self.ensure()
        self.assign_ids(rec)
        ids = [s.point_id for s in rec.sections if s.point_id]
        have = self.index.existing_ids(ids)
        new = [p for p in points if p.id not in have]
        covered = have | {p.id for p in points}
        if any(i not in covered for i in ids):
            keys = [s.images[0].key for s in rec.sections if s.point_id not in covered]
            new += embed_points(self.embedders, self.tenant, rec, load_images(keys), skip=covered)
        if new:
            self.index.upsert(new)
        return len(new)

    def finalize(self, rec: DocumentRecord) -> None:
        """After the manifest switched: drop points of older versions."""
        self.index.delete_doc(rec.doc_id, keep=[s.point_id for s in rec.sections if s.point_id])

    def remove(self, doc_id: str) -> None:
        if self.index.client.collection_exists(self.index.collection):
            self.index.delete_doc(doc_id)

    def set_tags(self, rec: DocumentRecord) -> None:
        ids: Sequence[str] = [s.point_id for s in rec.sections if s.point_id]
        if ids:
            self.index.set_payload(ids, {"tags": rec.tags})

    def payload(self, rec: DocumentRecord, s: SectionRecord) -> dict[str, object]:
        return point_payload(rec, s, self.tenant)


def embed_points(
    embedders: Embedders,
    tenant: str,
    rec: DocumentRecord,
    images: Mapping[str, Image.Image],
    *,
    skip: Collection[str] = (),
) -> list[IndexPoint]:
    """The points of `rec` (ids assigned) whose id is not in `skip`, embedded by every signal.
    Needs no index, so ingest workers in other processes run it."""
    todo = [s for s in rec.sections if s.point_id and s.point_id not in skip]
    if not todo:
        return []
    with_images = any(sig.uses_image for sig in embedders)
    passages = [
        Passage(passage_text(rec.title, s), images[s.images[0].key] if with_images and s.images else None) for s in todo
    ]
    by_signal = {sig.name: sig.embed_passages(passages) for sig in embedders}
    points = []
    for i, s in enumerate(todo):
        assert s.point_id is not None
        vectors = {name: vecs[i] for name, vecs in by_signal.items()}
        points.append(IndexPoint(id=s.point_id, payload=point_payload(rec, s, tenant), vectors=vectors))
    return points


def assign_point_ids(rec: DocumentRecord) -> None:
    for s in rec.sections:
        s.point_id = point_id(s.section_id, [i.key for i in s.images])


def point_payload(rec: DocumentRecord, s: SectionRecord, tenant: str) -> dict[str, object]:
    return {
        "doc_id": rec.doc_id,
        "title": rec.title,
        "source_name": rec.source_name,
        "format": rec.format,
        "section_id": s.section_id,
        "heading_path": s.heading_path,
        "page_start": s.page_start,
        "page_end": s.page_end,
        "text": s.text,
        "image_keys": [i.key for i in s.images],
        "content_hash": s.content_hash,
        "ingested_at": rec.ingested_at,
        "tags": rec.tags,
        "tenant": tenant,
        "part": s.part,
        "parts": s.parts,
        "ordinal": s.ordinal,
    }


__all__ = ["DocumentIndexer", "assign_point_ids", "embed_points", "passage_text"]
