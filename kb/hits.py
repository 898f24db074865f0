"""The search hit: one retrieved section part with its images and per-signal scores.

Also what every front end shows about hits: unique labels ("where is this source?") and the merging of
neighbouring parts of one section into one source."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kb.labels import clean_label, page_label


@dataclass
class Hit:
    doc: str
    title: str
    heading_path: list[str]
    pages: tuple[int, int] | None
    text: str
    score: float
    scores: dict[str, float]
    image_keys: list[str]
    images: list[str]  # where each image lives: a path, or a URL for a remote store
    section_id: str
    point_id: str
    source_name: str = ""
    format: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    part: int = 1  # this hit covers parts part..part_end of a section cut into `parts` images
    parts: int = 1
    part_end: int = 0  # 0 = same as part (a merged hit covers several neighbouring parts)
    version: str = ""  # the document's version, when it has one

    @property
    def section(self) -> str:
        return " › ".join(self.heading_path)

    @property
    def own_path(self) -> list[str]:
        """The heading path without a leading heading that only repeats the document title."""
        path = list(self.heading_path)
        if path and _same(path[0], self.title):
            path = path[1:]
        return path

    @property
    def part_span(self) -> tuple[int, int]:
        return self.part, self.part_end or self.part

    def where(self) -> str:
        """`title (version) › own heading path, p. X`: which document and where in it."""
        # titles and headings come from documents: cleaned, so a label cannot fake another one
        title = clean_label(self.title or self.source_name or self.doc)
        if self.version and not _mentions(title, self.version):
            title += f" ({clean_label(self.version, 40)})"
        path = [clean_label(h) for h in self.own_path]
        out = title + (f" › {' › '.join(path)}" if path else "")
        if self.pages:
            out += f", {page_label(self.pages)}"
        return out

    def label(self, n: int) -> str:
        """`[n] title › heading path, p. X` — the label a VLM sees next to the image."""
        return f"[{n}] {self.where()}"

    def to_json(self) -> dict[str, Any]:
        """The stable `kb search --json` shape."""
        return {
            "doc": self.doc,
            "title": self.title,
            "section": self.section,
            "pages": list(self.pages) if self.pages else None,
            "text": self.text,
            "score": self.score,
            "scores": self.scores,
            "images": list(self.images),
        }


def _fold(s: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", s).casefold().split())


def _same(a: str, b: str) -> bool:
    return _fold(a) == _fold(b)


def _mentions(title: str, version: str) -> bool:
    v = _fold(version).lstrip("v")
    return bool(v) and re.search(rf"\bv?(ersion\s*)?{re.escape(v)}\b", _fold(title)) is not None


def unique_labels(hits: Sequence[Hit]) -> list[str]:
    """One `[n] where` label per hit (n from 1), every one different: where two hits would read the same,
    the part of the section is added, then the section's opening words."""
    wheres = [h.where() for h in hits]
    for clash in _clashes(wheres):
        for i in clash:
            a, b = hits[i].part_span
            if hits[i].parts > 1:
                span = f"part {a}" if a == b else f"parts {a}–{b}"
                wheres[i] += f" ({span} of {hits[i].parts})"
    for clash in _clashes(wheres):
        for i in clash:
            wheres[i] += f" — “{clean_label(_opening(hits[i].text, hits[i].heading_path), 80)}”"
    for clash in _clashes(wheres):  # the same text twice (e.g. a repeated boilerplate section): number them
        for j, i in enumerate(clash[1:], 2):
            wheres[i] += f" ({j})"
    return [f"[{n}] {w}" for n, w in enumerate(wheres, 1)]


def _clashes(labels: Sequence[str]) -> list[list[int]]:
    at: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        at.setdefault(_fold(label), []).append(i)
    return [ix for ix in at.values() if len(ix) > 1]


def _opening(text: str, headings: Sequence[str], words: int = 6) -> str:
    """The first words of a section's own text (its heading lines skipped)."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not any(_same(ln, h) for h in headings)]
    ws = " ".join(lines).split()
    return " ".join(ws[:words]) + ("…" if len(ws) > words else "")


# -- focused sources -----------------------------------------------------------------------------------


def relevance(hits: Sequence[Hit], weights: Mapping[str, float] | None = None) -> list[float]:
    """Each hit's relevance in [0, 1]: per signal its raw score over the best raw score of that signal among
    the hits, averaged with the signal weights (a hit a signal did not return counts 0 there). Fused RRF
    scores only say the rank; the raw scores say how far below the best a hit really is."""
    signals = sorted({s for h in hits for s, v in h.scores.items() if v > 0})
    best = {s: max(h.scores.get(s, 0.0) for h in hits) for s in signals}
    w = {s: (weights or {}).get(s, 1.0) for s in signals}
    total = sum(w.values())
    if not signals or total <= 0:
        return [1.0] * len(hits)
    return [sum(w[s] * max(0.0, h.scores.get(s, 0.0)) / best[s] for s in signals) / total for h in hits]


def relevant(hits: Sequence[Hit], cutoff: float, weights: Mapping[str, float] | None = None) -> list[Hit]:
    """The hits whose relevance is at least `cutoff` (rank order kept; the first hit always stays)."""
    if not hits or cutoff <= 0:
        return list(hits)
    rel = relevance(hits, weights)
    return [h for i, (h, r) in enumerate(zip(hits, rel, strict=True)) if i == 0 or r >= cutoff]


def merge_neighbours(hits: Sequence[Hit]) -> list[Hit]:
    """Neighbouring parts of one section (consecutive part numbers, same document and heading path) become
    one source at the rank of its best part: the model reads the section's images in order as one source."""
    groups: dict[tuple[str, tuple[str, ...], int], list[Hit]] = {}
    order: list[tuple[str, tuple[str, ...], int]] = []
    for h in hits:
        key = (h.doc, tuple(h.heading_path), h.parts)
        if h.parts <= 1:
            key = (h.doc, (h.point_id,), 0)  # a whole section: nothing to merge with
        if key not in groups:
            order.append(key)
        groups.setdefault(key, []).append(h)
    out: list[tuple[int, Hit]] = []
    rank = {id(h): i for i, h in enumerate(hits)}
    for key in order:
        runs: list[list[Hit]] = []
        for h in sorted(groups[key], key=lambda h: h.part):
            if runs and h.part <= runs[-1][-1].part_span[1] + 1:
                runs[-1].append(h)
            else:
                runs.append([h])
        for run in runs:
            out.append((min(rank[id(h)] for h in run), _merged(run)))
    return [h for _, h in sorted(out, key=lambda x: x[0])]


def _merged(run: Sequence[Hit]) -> Hit:
    if len(run) == 1:
        return run[0]
    best = max(run, key=lambda h: h.score)
    pages = [p for h in run if h.pages for p in h.pages]
    return replace(
        best,
        text="\n".join(h.text for h in run),
        image_keys=[k for h in run for k in h.image_keys],
        images=[i for h in run for i in h.images],
        pages=(min(pages), max(pages)) if pages else None,
        part=run[0].part,
        part_end=run[-1].part_span[1],
        extra={**best.extra, "merged_points": [h.point_id for h in run]},
    )


def focus(hits: Sequence[Hit], cutoff: float, weights: Mapping[str, float] | None = None) -> list[Hit]:
    """The sources worth sending to a model: the relevant hits, neighbouring parts of a section merged."""
    return merge_neighbours(relevant(hits, cutoff, weights))
