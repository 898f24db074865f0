"""Contradictions between different documents: normative claims grouped by subject, then compared.

A claim is a sentence, list item or table row that states a requirement level (MUST/SHALL/SHOULD/MAY,
cannot, is required), a numeric limit with its unit, a default or a named value. Claims of different
documents are about the same subject when they share enough key terms (words other than values,
modal verbs and stop words), confirmed by the text embedding when one is configured. Two claims on one
subject conflict when their values (per unit) or their requirement levels differ, and agree otherwise.

With a VLM configured, each candidate conflict goes to the model with both sections' glyph images and
both sentences, for a verdict (conflict / no conflict / unclear) and a one-line reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kb.catalog import DocumentRecord
from kb.compare.classify import MODAL_WORDS, levels
from kb.compare.text import tokens
from kb.compare.units import DocView, doc_view

if TYPE_CHECKING:
    from kb.answer.backend import AnswerBackend
    from kb.service import KnowledgeBase

_NUMBER_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:[.,]\d+)*)\s*(%|[a-zA-Zµ]{1,12}\b)?",
)
_CLAIM_WORDS = re.compile(
    r"\b(default|defaults|maximum|minimum|max|min|limit|limits|at most|at least|up to|no more than|"
    r"no less than|must|shall|should|may|cannot|required|recommended|set to|is \d)",
    re.IGNORECASE,
)
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
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "with",
        "by",
        "from",
        "as",
        "at",
        "than",
        "then",
        "there",
        "which",
        "who",
        "what",
        "when",
        "where",
        "how",
        "can",
        "will",
        "would",
        "not",
        "no",
        "any",
        "all",
        "each",
        "every",
        "one",
        "two",
        "some",
        "more",
        "less",
        "most",
        "least",
        "up",
        "into",
        "over",
        "under",
        "per",
        "also",
        "only",
        "such",
        "other",
        "same",
        "if",
        "so",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
        "was",
        "were",
        "their",
        "they",
        "them",
        "you",
        "your",
        "we",
        "our",
        "us",
    ]
)
SAME_SUBJECT = 0.5  # key-term overlap (Jaccard) for two claims to be about one subject
SAME_SUBJECT_EMBEDDED = 0.3  # ... when the text embedding also says so
EMBED_MIN = 0.75
MAX_VERDICTS = 20


@dataclass
class Claim:
    doc: str
    title: str
    section: str
    page: int | None
    text: str
    levels: list[str]
    values: list[tuple[str, str]]  # (number, unit)
    terms: frozenset[str]
    record: int  # manifest section (image) holding it

    def cite(self) -> dict[str, Any]:
        return {"doc": self.doc, "title": self.title, "section": self.section, "page": self.page, "text": self.text}


@dataclass
class Finding:
    kind: str  # "conflict" | "agreement"
    subject: str
    a: Claim
    b: Claim
    reason: str
    verdict: str | None = None  # the VLM's: conflict | no conflict | unclear
    verdict_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "reason": self.reason,
            "a": self.a.cite(),
            "b": self.b.cite(),
            "verdict": self.verdict,
            "verdict_reason": self.verdict_reason,
        }


@dataclass
class CrosscheckResult:
    docs: list[str]
    topic: str | None
    conflicts: list[Finding]
    agreements: list[Finding]
    claims: int
    vlm: str | None  # the model that gave verdicts, or None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "docs": self.docs,
            "topic": self.topic,
            "claims": self.claims,
            "conflicts": [f.to_json() for f in self.conflicts],
            "agreements": [f.to_json() for f in self.agreements],
            "vlm": self.vlm,
            "notes": self.notes,
        }


def _values(text: str) -> list[tuple[str, str]]:
    out = []
    for m in _NUMBER_UNIT.finditer(text):
        unit = (m.group(2) or "").casefold()
        if unit in _STOP or unit in MODAL_WORDS:
            unit = ""
        out.append((m.group(1).replace(",", ""), unit))
    return out


def claims_of(view: DocView, rec: DocumentRecord, topic_terms: frozenset[str] = frozenset()) -> list[Claim]:
    out = []
    for u in view.units:
        if u.kind == "heading" or (not _CLAIM_WORDS.search(u.text) and not re.search(r"\d", u.text)):
            continue
        lv = levels(u.text)
        vals = _values(u.text)
        if not lv and not vals:
            continue
        terms = frozenset(
            t.norm for t in u.toks if t.norm not in _STOP and t.norm not in MODAL_WORDS and not t.norm[0].isdigit()
        )
        if len(terms) < 2 or (topic_terms and not topic_terms & terms):
            continue
        sec = view.sections[u.section]
        out.append(Claim(rec.doc_id, rec.title, sec.label, u.page, u.text, lv, vals, terms, u.spans[0].record))
    return out


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _compare(a: Claim, b: Claim) -> tuple[str, str] | None:
    """("conflict" | "agreement", why) for two claims on one subject; None when they say nothing comparable."""
    units_a = {u: v for v, u in a.values if u}
    units_b = {u: v for v, u in b.values if u}
    shared_units = set(units_a) & set(units_b)
    diffs = [f"{units_a[u]} {u} vs {units_b[u]} {u}" for u in sorted(shared_units) if units_a[u] != units_b[u]]
    if not shared_units and a.values and b.values and not units_a and not units_b:
        na = sorted(v for v, _ in a.values)
        nb = sorted(v for v, _ in b.values)
        if na != nb:
            diffs.append(f"{', '.join(na)} vs {', '.join(nb)}")
    la, lb = a.levels[:1], b.levels[:1]
    if la and lb and la != lb:
        diffs.append(f"{la[0]} vs {lb[0]}")
    if diffs:
        return "conflict", "; ".join(diffs)
    if (shared_units and all(units_a[u] == units_b[u] for u in shared_units)) or (la and la == lb):
        return "agreement", "same " + ("value" if shared_units else "requirement level")
    return None


def crosscheck(
    recs: Sequence[DocumentRecord],
    *,
    topic: str | None = None,
    embed: Callable[[list[str]], list[list[float]]] | None = None,
) -> CrosscheckResult:
    topic_terms = frozenset(t.norm for t in tokens(topic or "") if t.norm not in _STOP)
    per_doc = [claims_of(doc_view(r), r, topic_terms) for r in recs]
    all_claims = [c for cs in per_doc for c in cs]
    vectors: dict[int, list[float]] = {}
    if embed is not None and all_claims:
        for c, v in zip(all_claims, embed([c.text for c in all_claims]), strict=True):
            vectors[id(c)] = v
    conflicts: list[Finding] = []
    agreements: list[Finding] = []
    for i in range(len(per_doc)):
        for j in range(i + 1, len(per_doc)):
            for a in per_doc[i]:
                best: tuple[float, Claim] | None = None
                for b in per_doc[j]:
                    if len(a.terms & b.terms) < 2:
                        continue
                    sim = _jaccard(a.terms, b.terms)
                    if vectors:
                        cos = _cos(vectors[id(a)], vectors[id(b)])
                        ok = sim >= SAME_SUBJECT or (sim >= SAME_SUBJECT_EMBEDDED and cos >= EMBED_MIN)
                    else:
                        ok = sim >= SAME_SUBJECT
                    if ok and (best is None or sim > best[0]):
                        best = (sim, b)
                if best is None:
                    continue
                b = best[1]
                res = _compare(a, b)
                if res is None:
                    continue
                subject = " ".join(sorted(a.terms & b.terms)[:8])
                (conflicts if res[0] == "conflict" else agreements).append(Finding(res[0], subject, a, b, res[1]))
    return CrosscheckResult([r.doc_id for r in recs], topic, conflicts, agreements, len(all_claims), None)


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    num = sum(x * y for x, y in zip(a, b, strict=False))
    da = sum(x * x for x in a) ** 0.5
    db = sum(y * y for y in b) ** 0.5
    return num / (da * db) if da and db else 0.0


_VERDICT = re.compile(r"\b(no conflict|conflict|unclear)\b", re.IGNORECASE)


def add_verdicts(kb: KnowledgeBase, res: CrosscheckResult, answerer: AnswerBackend) -> None:
    """Each candidate conflict to the model with both glyph images and both sentences."""
    from kb.answer.prompt import build_prompt
    from kb.compare.answering import record_hit

    for f in res.conflicts[:MAX_VERDICTS]:
        ra, rb = kb.catalog.require(f.a.doc), kb.catalog.require(f.b.doc)
        hits = [record_hit(kb, ra, f.a.record), record_hit(kb, rb, f.b.record)]
        question = (
            "Do these two statements from different documents conflict?\n"
            f'A ({f.a.title}, source [1]): "{f.a.text}"\nB ({f.b.title}, source [2]): "{f.b.text}"\n'
            "Reply on one line: 'conflict', 'no conflict' or 'unclear', then ' - ' and a one-line reason."
        )
        prompt = build_prompt(question, hits, kb.settings, kb.images)
        text = answerer.generate(prompt).strip()
        m = _VERDICT.search(text)
        f.verdict = m.group(1).lower() if m else "unclear"
        f.verdict_reason = text.split("\n")[0][:300]
    res.vlm = answerer.model
    if len(res.conflicts) > MAX_VERDICTS:
        res.notes.append(f"the model judged the first {MAX_VERDICTS} of {len(res.conflicts)} candidate conflicts")


def markdown(res: CrosscheckResult) -> str:
    lines = [f"# Cross-check of {', '.join(res.docs)}" + (f" on {res.topic!r}" if res.topic else ""), ""]
    lines.append(
        f"{res.claims} normative claims; {len(res.conflicts)} conflict(s), {len(res.agreements)} agreement(s)."
    )
    lines.append(
        f"Verdicts by {res.vlm}." if res.vlm else "No VLM configured: the deterministic findings below stand alone."
    )
    lines += [f"- {n}" for n in res.notes]
    for name, fs in (("Conflicts", res.conflicts), ("Agreements", res.agreements)):
        lines += ["", f"## {name}", ""]
        if not fs:
            lines.append("none")
        for k, f in enumerate(fs, 1):
            verdict = f" — model: **{f.verdict}** ({f.verdict_reason})" if f.verdict else ""
            lines.append(f"{k}. **{f.reason}** (subject: {f.subject}){verdict}")
            for c in (f.a, f.b):
                page = f", p. {c.page}" if c.page else ""
                lines.append(f"   - {c.title} ({c.doc}) › {c.section}{page}: “{c.text}”")
    return "\n".join(lines) + "\n"
