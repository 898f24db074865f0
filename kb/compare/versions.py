"""Versions of a document: families linked by `revises` (set at ingest, in the admin page or the API),
or grouped by title with the version marker removed ("Payments API Specification v1" and "... v2").

Within a family, versions are ordered oldest to newest: along the `revises` links where they exist,
then by the version number in the title or file name, then by ingest time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kb.catalog import DocumentRecord
from kb.compare.text import clean, tokens

_VERSION = re.compile(
    r"\b(?:v|ver\.?|version|rev\.?|revision|release|draft|edition)\s*(\d+(?:\.\d+)*)\b|\bv(\d+(?:\.\d+)*)\b"
    r"|(?<![\w.])(\d+\.\d+(?:\.\d+)*)(?![\w.])|\b(draft|final|latest|new|old|updated)\b",
    re.IGNORECASE,
)


def family_key(title: str) -> str:
    """The title without its version marker, normalised ("" when nothing is left)."""
    return " ".join(t.norm for t in tokens(_VERSION.sub(" ", clean(title))))


def version_number(rec: DocumentRecord) -> tuple[int, ...]:
    for text in (rec.title, rec.source_name):
        for m in _VERSION.finditer(text):
            num = m.group(1) or m.group(2) or m.group(3)
            if num:
                return tuple(int(x) for x in num.split("."))
    return ()


@dataclass
class Family:
    """Versions of one document, oldest first."""

    docs: list[str]

    @property
    def latest(self) -> str:
        return self.docs[-1]

    def previous(self, doc_id: str) -> str | None:
        i = self.docs.index(doc_id)
        return self.docs[i - 1] if i > 0 else None

    def rank(self, doc_id: str) -> int:
        return self.docs.index(doc_id)


def families(records: Iterable[DocumentRecord]) -> dict[str, Family]:
    """Each document's family, for documents that have more than one version."""
    recs = {r.doc_id: r for r in records}
    parent = {d: d for d in recs}

    def find(d: str) -> str:
        while parent[d] != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for r in recs.values():
        if r.revises and r.revises in recs:
            union(r.doc_id, r.revises)
    by_title: dict[str, list[str]] = {}
    for r in recs.values():
        key = family_key(r.title)
        if len(key) >= 3:
            by_title.setdefault(key, []).append(r.doc_id)
    for ids in by_title.values():
        for d in ids[1:]:
            union(d, ids[0])
    groups: dict[str, list[str]] = {}
    for d in recs:
        groups.setdefault(find(d), []).append(d)
    out: dict[str, Family] = {}
    for ids in groups.values():
        if len(ids) < 2:
            continue
        fam = Family(_order([recs[d] for d in ids]))
        for d in ids:
            out[d] = fam
    return out


def _order(recs: list[DocumentRecord]) -> list[str]:
    """Oldest first: a document comes after the one it revises; otherwise by version number, then ingest time."""
    base = sorted(recs, key=lambda r: (version_number(r), r.ingested_at, r.doc_id))
    ids = {r.doc_id for r in recs}
    depth: dict[str, int] = {}

    def chain(r: DocumentRecord, seen: frozenset[str] = frozenset()) -> int:
        if r.doc_id in depth:
            return depth[r.doc_id]
        prev = r.revises if r.revises in ids and r.revises not in seen else None
        d = 0 if prev is None else 1 + chain(next(x for x in recs if x.doc_id == prev), seen | {r.doc_id})
        depth[r.doc_id] = d
        return d

    linked = any(r.revises in ids for r in recs)
    if not linked:
        return [r.doc_id for r in base]
    pos = {r.doc_id: i for i, r in enumerate(base)}
    return [r.doc_id for r in sorted(recs, key=lambda r: (chain(r), pos[r.doc_id]))]
