"""Version-aware answering, used by `prepare_answer`.

- A question whose hits come from several versions of one document is answered from the newest:
  its sections go first; an older version's section stays only where the diff says it differs, and the
  prompt tells the model so, to cite both.
- "What changed" about a versioned pair is answered from the diff itself: both sides' section images
  per change (sections only in one version too), and the change list in the prompt; nothing else.
- A cross-document question searches the documents it names (and their versions) only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kb.catalog import DocumentRecord
from kb.compare.diff import Change
from kb.compare.report import Comparison, compare
from kb.compare.text import tokens
from kb.compare.versions import Family, families, family_key, version_number
from kb.hits import Hit

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

WHAT_CHANGED = re.compile(
    r"\bwhat(?:'s| has| have| is)?\s+(?:changed|new|different)\b|\bwhat changes\b|\bchanges?\s+(?:between|from|in|since)\b"
    r"|\bdiff(?:erences?|ers?)?\s+(?:between|from)\b|\bchange\s?log\b|\bhow\s+(?:does|did|do)\b.*\bdiffer\b"
    r"|\bcompared? (?:to|with)\b.*\b(?:version|v\d)|変更|差分|何が変わ",
    re.IGNORECASE,
)
MAX_CHANGES = 12  # changes sent with images (each: up to two sections); the rest are listed as text


@dataclass
class VersionPlan:
    hits: list[Hit]
    instructions: str
    cross_document: bool
    notes: list[str] = field(default_factory=list)
    what_changed: bool = False  # answered from the diff of two versions


_CACHE_LOCK = threading.Lock()
_FAMILIES: tuple[int, dict[str, Family]] | None = None
_DIFFS: dict[tuple[str, str, str, str], Comparison] = {}


def doc_families(kb: KnowledgeBase) -> dict[str, Family]:
    """Families of the current catalog (rebuilt when a manifest changes)."""
    global _FAMILIES
    summaries = kb.catalog.summaries()
    with _CACHE_LOCK:
        if _FAMILIES is not None and _FAMILIES[0] == id(summaries):
            return _FAMILIES[1]
    fams = families(kb.catalog)
    with _CACHE_LOCK:
        _FAMILIES = (id(summaries), fams)
    return fams


def cached_compare(a: DocumentRecord, b: DocumentRecord) -> Comparison:
    key = (a.doc_id, a.file_sha256 + a.render_fingerprint, b.doc_id, b.file_sha256 + b.render_fingerprint)
    with _CACHE_LOCK:
        hit = _DIFFS.get(key)
    if hit is None:
        hit = compare(a, b)
        with _CACHE_LOCK:
            if len(_DIFFS) > 32:
                _DIFFS.clear()
            _DIFFS[key] = hit
    return hit


_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "or",
        "in",
        "on",
        "for",
        "to",
        "is",
        "are",
        "be",
        "what",
        "how",
        "does",
        "do",
        "did",
        "with",
        "from",
        "by",
        "this",
        "that",
    ]
)


def named_documents(kb: KnowledgeBase, question: str, within: Sequence[str] | None) -> list[str]:
    """Documents the question names by title (most of the title's words, version marker aside) or id,
    with every version of each; empty when it names none."""
    q = {t.norm for t in tokens(question)}
    ql = question.casefold()
    allowed = set(within) if within is not None else None
    fams = doc_families(kb)
    out: list[str] = []
    for rec in kb.catalog:
        if allowed is not None and rec.doc_id not in allowed:
            continue
        words = [w for w in family_key(rec.title).split() if w not in _STOP]
        hit = len(words) >= 1 and sum(w in q for w in words) >= max(1, round(0.6 * len(words)))
        if hit or rec.doc_id.casefold() in ql:
            out.append(rec.doc_id)
            fam = fams.get(rec.doc_id)
            if fam:
                out += [d for d in fam.docs if allowed is None or d in allowed]
    return list(dict.fromkeys(out))


def record_hit(kb: KnowledgeBase, rec: DocumentRecord, index: int) -> Hit:
    s = rec.sections[index]
    keys = [i.key for i in s.images]
    pages = (s.page_start, s.page_end or s.page_start) if s.page_start is not None else None
    return Hit(
        doc=rec.doc_id,
        title=rec.title,
        heading_path=list(s.heading_path),
        pages=pages,
        text=s.text,
        score=0.0,
        scores={},
        image_keys=keys,
        images=[kb.images.location(k) for k in keys],
        section_id=s.section_id,
        point_id=s.point_id or "",
        source_name=rec.source_name,
        format=rec.format,
    )


def _records(cmp: Comparison, units: list[int], side: str) -> list[int]:
    view = cmp.view_a if side == "a" else cmp.view_b
    return list(dict.fromkeys(sp.record for u in units for sp in view.units[u].spans))


def _pick_pair(
    question: str, fam: Family, recs: Mapping[str, DocumentRecord], chosen: Sequence[str]
) -> tuple[str, str]:
    """(older, newer): the two chosen versions, or the versions the question names ("v1 and v2"), or the
    newest and the one before it."""
    in_fam = [d for d in chosen if d in fam.docs]
    if len(in_fam) == 2:
        a, b = sorted(in_fam, key=fam.rank)
        return a, b
    named = [int(m) for m in re.findall(r"\bv(?:ersion)?\s*(\d+)\b", question, re.IGNORECASE)]
    if len(named) >= 2:
        by_num = {version_number(recs[d])[:1]: d for d in fam.docs if version_number(recs[d])}
        picked = [by_num.get((n,)) for n in named[:2]]
        if all(picked) and picked[0] != picked[1]:
            a, b = sorted((p for p in picked if p), key=fam.rank)
            return a, b
    prev = fam.previous(fam.latest)
    assert prev is not None
    return prev, fam.latest


def _fmt_change(c: Change, na: list[int], nb: list[int]) -> str:
    cite = "".join(f"[{n}]" for n in [*na, *nb])
    quote_a = f' older: "{c.text_a[:300]}"' if c.text_a else ""
    quote_b = f' newer: "{c.text_b[:300]}"' if c.text_b else ""
    return f"- {c.kind} ({c.category}): {c.summary}.{quote_a}{quote_b} {cite}".rstrip()


def what_changed_plan(kb: KnowledgeBase, question: str, fam: Family, chosen: Sequence[str]) -> VersionPlan:
    recs = {d: kb.catalog.require(d) for d in fam.docs}
    old, new = _pick_pair(question, fam, recs, chosen)
    cmp = cached_compare(recs[old], recs[new])
    r = cmp.result
    hits: list[Hit] = []
    number: dict[tuple[str, int], int] = {}

    def add(side: str, rec_index: int) -> int:
        rec = cmp.rec_a if side == "a" else cmp.rec_b
        key = (side, rec_index)
        if key not in number:
            hits.append(record_hit(kb, rec, rec_index))
            number[key] = len(hits)
        return number[key]

    lines: list[str] = []
    for c in r.changes[:MAX_CHANGES]:
        ctx_a = [c.context_a] if c.context_a is not None else []
        ctx_b = [c.context_b] if c.context_b is not None else []
        na = [add("a", i) for i in _records(cmp, c.units_a or ctx_a, "a")[:1]]
        nb = [add("b", i) for i in _records(cmp, c.units_b or ctx_b, "b")[:1]]
        lines.append(_fmt_change(c, na, nb))
    lines += [_fmt_change(c, [], []) for c in r.changes[MAX_CHANGES:]]
    for side, refs, word in (("a", r.only_in_a, "only in the older"), ("b", r.only_in_b, "only in the newer")):
        view = cmp.view_a if side == "a" else cmp.view_b
        by_label = {s.label: s for s in view.sections}
        for ref in refs:
            sec = by_label.get(ref.section)
            nums = [add(side, i) for i in _records(cmp, sec.units, side)[:1]] if sec and sec.units else []
            lines.append(f"- section {word} version: {ref.section} " + "".join(f"[{n}]" for n in nums))
    title_a, title_b = cmp.rec_a.title, cmp.rec_b.title
    head = (
        f'\n\nThe question asks what changed between two versions of one document: the older "{title_a}" '
        f'({old}) and the newer "{title_b}" ({new}). A deterministic comparison of the two versions found '
        f"{len(r.changes)} change(s) and {len(r.only_in_a) + len(r.only_in_b)} section(s) present in one version "
        "only, listed below with the sources showing each side. Answer with these changes (older → newer), each "
        "cited to the sources on both sides; check them against the sources and do not add changes they do not "
        "show."
    )
    body = "\n".join(lines) if lines else "- no differences were found"
    notes = [f"answered from the comparison of {old} and {new} (kb diff {old} {new})"]
    return VersionPlan(hits, f"{head}\n{body}", False, notes, what_changed=True)


def version_plan(kb: KnowledgeBase, question: str, hits: list[Hit], chosen: Sequence[str] | None) -> VersionPlan | None:
    """How versions change what the model is sent, or None when no versioned document is involved."""
    fams = doc_families(kb)
    if not fams:
        return None
    chosen = list(chosen or [])
    fam = next((fams[d] for d in chosen if d in fams), None) or next((fams[h.doc] for h in hits if h.doc in fams), None)
    if fam is None:
        return None
    if WHAT_CHANGED.search(question):
        return what_changed_plan(kb, question, fam, chosen)
    in_fam = [h for h in hits if h.doc in fam.docs]
    if len({h.doc for h in in_fam}) < 2 and not (in_fam and in_fam[0].doc != fam.latest):
        return None
    if any(d in fam.docs and d != fam.latest for d in chosen) and fam.latest not in chosen:
        return None  # the asker chose an older version on purpose
    return _newest_first(kb, hits, fam, explicit=len(chosen) > 1)


def _newest_first(kb: KnowledgeBase, hits: list[Hit], fam: Family, *, explicit: bool) -> VersionPlan:
    """`explicit`: the asker chose several documents (the versions among them): keep the per-document answer."""
    latest = kb.catalog.require(fam.latest)
    newest = [h for h in hits if h.doc == fam.latest]
    others = [h for h in hits if h.doc not in fam.docs]
    older: list[Hit] = []
    differ: list[tuple[Hit, list[Change]]] = []
    for h in hits:
        if h.doc in fam.docs and h.doc != fam.latest:
            cmp = cached_compare(kb.catalog.require(h.doc), latest)
            idx = next((i for i, s in enumerate(cmp.rec_a.sections) if s.section_id == h.section_id), None)
            touching = [c for c in cmp.result.changes if idx is not None and idx in _records(cmp, c.units_a or [], "a")]
            only = idx is not None and any(
                idx in _records(cmp, s.units, "a")
                for s in cmp.view_a.sections
                if s.label in {ref.section for ref in cmp.result.only_in_a}
            )
            if touching or only:
                older.append(h)
                differ.append((h, touching))
                for c in touching:  # the newer side of the change, when retrieval missed it
                    for i in _records(cmp, c.units_b, "b")[:1]:
                        if not any(n.section_id == latest.sections[i].section_id for n in newest):
                            newest.append(record_hit(kb, latest, i))
    ordered = newest + older + others
    pos = {id(h): n for n, h in enumerate(ordered, 1)}
    lines = []
    for h, changes in differ:
        what = "; ".join(f'{c.summary} (older: "{c.text_a[:200]}"; newer: "{c.text_b[:200]}")' for c in changes[:3])
        lines.append(
            f"- source [{pos[id(h)]}] ({h.doc}, older version) differs from the newest: "
            f"{what or 'this section is not in the newest version'}"
        )
    chain = " → ".join(fam.docs)
    text = (
        f'\n\nVersions: "{latest.title}" ({fam.latest}) is the newest version of this document (oldest to newest: '
        f"{chain}). Answer from the newest version. "
    )
    if lines:
        text += (
            "An older version says something different on this question; say so, naming the version and citing "
            "the sources of both versions:\n" + "\n".join(lines)
        )
    notes = [
        f"answered from the newest version {fam.latest}" + (f"; {len(lines)} older source(s) differ" if lines else "")
    ]
    return VersionPlan(ordered, text, bool(others) or explicit, notes)
