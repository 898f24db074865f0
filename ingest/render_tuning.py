"""Searching render configurations: maximise compression subject to the legibility bar.

Compression needs only rendering (cheap); legibility needs a judge (OCR: slow). So each round renders
every neighbour of the current best (one parameter changed), ranks them by compression, and judges them
from the most compressed down, stopping at the first that clears the bar; the budget counts judged
configurations. Before any configuration clears the bar, the one closest to it is followed instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from ingest.legibility import CLASSES
from ingest.render_score import Judge, SampleDoc, Score, Targets, score, tesseract_judge
from kb.settings import RenderConfig
from kb.tokens import TokenCounter

# The parameters searched and the values each may take (fonts installed by install.sh).
SPACE: dict[str, tuple[Any, ...]] = {
    "font": ("DejaVuSansCondensed", "NotoSans", "DejaVuSans"),
    "font_size": (8, 9, 10, 11),
    "line_height": (1.05, 1.1, 1.15, 1.25),
    "word_spacing": (0.05, 0.1, 0.2),
    "letter_spacing": (0.0, 0.02, 0.04),
    "slash_spacing": (0.0, 0.05, 0.08),
    "dash_spacing": (0.0, 0.1, 0.15),
    "id_font": ("", "DejaVuSansMono"),
    "mono_font": ("NotoSansMono", "DejaVuSansMono"),
    "columns": (2, 3),
    "margin": (2, 6),
    "cjk_scale": (1.3, 1.4, 1.6),
}


MIN_KEEP = 0.75  # while nothing clears the bar, neighbours keeping this share of the compression are tried


def pareto_front(scores: Sequence[Score], key: Callable[[Score], float]) -> list[Score]:
    """Scores no other beats on both compression and `key` (legibility), by rising compression."""
    ranked = sorted((s for s in scores if key(s) == key(s)), key=lambda s: (-s.compression, -key(s)))
    front: list[Score] = []
    best = -1.0
    for s in ranked:
        if key(s) > best:
            front.append(s)
            best = key(s)
    return front[::-1]


def deficit(s: Score, t: Targets) -> float:
    """How far a judged score is below the bar (0 when it clears it): the summed shortfalls."""
    d = max(0.0, t.recall - s.recall) + max(0.0, t.order - s.order)
    for c in CLASSES:
        got, n = s.class_counts(c)
        if n >= t.min_items:
            d += max(0.0, t.identifiers - got / n)
    return d


def neighbours(config: RenderConfig) -> list[tuple[str, RenderConfig]]:
    """Configurations that differ from `config` in one searched parameter (the adjacent values)."""
    out = []
    cur = config.model_dump()
    for key, values in SPACE.items():
        here = cur[key]
        if here in values:
            i = values.index(here)
            picks = [values[j] for j in (i - 1, i + 1) if 0 <= j < len(values)]
        else:
            picks = list(values)
        if isinstance(values[0], str):
            picks = [v for v in values if v != here]
        for v in picks:
            out.append((f"{key}={v}", config.model_copy(update={key: v})))
    return out


def label(config: RenderConfig, base: RenderConfig) -> str:
    diff = {k: v for k, v in config.model_dump().items() if base.model_dump().get(k) != v}
    return ",".join(f"{k}={v}" for k, v in diff.items()) or "start"


@dataclass
class TuneResult:
    start: Score
    best: Score | None  # the most compressed configuration that cleared the bar (None: none did)
    judged: list[Score] = field(default_factory=list)

    def front(self) -> list[Score]:
        return pareto_front(self.judged, key=lambda s: min(s.recall, s.identifier_recall, s.order))


def tune(
    docs: Sequence[SampleDoc],
    start: RenderConfig,
    counter: TokenCounter,
    pool: Executor,
    *,
    budget: int = 12,
    targets: Targets | None = None,
    judge: Judge = tesseract_judge,
    progress: Callable[[str], None] = lambda _: None,
) -> TuneResult:
    """Hill-climb from `start` over SPACE; `budget` = how many configurations are judged (start included)."""
    t = targets or Targets()
    cache: dict[str, str] = {}

    def judged(name: str, cfg: RenderConfig) -> Score:
        s = score(name, cfg, docs, counter, pool=pool, judge=judge, sampled_only=True, cache=cache)
        fails = s.failures(t)
        progress(
            f"[{len(result.judged) + 1}/{budget}] {name}: {s.compression:.2f}x recall {s.recall:.3f} "
            f"identifiers {s.identifier_recall:.3f} order {s.order:.3f}"
            + ("  clears the bar" if not fails else "  (" + "; ".join(fails) + ")")
        )
        result.judged.append(s)
        return s

    result = TuneResult(start=Score("start", start, counter.name, []), best=None)
    result.start = first = judged("start", start)
    current = first
    if first.meets(t):
        result.best = first
    seen = {start.model_dump_json()}
    while len(result.judged) < budget:
        cands = [(n, c) for n, c in neighbours(current.config) if c.model_dump_json() not in seen]
        if not cands:
            break
        progress(f"rendering {len(cands)} neighbours of {label(current.config, start)} for their compression")
        ranked = []
        for _name, cfg in cands:
            seen.add(cfg.model_dump_json())
            ranked.append(score(label(cfg, start), cfg, docs, counter, pool=None, sampled_only=True))
        ranked.sort(key=lambda s: -s.compression)
        moved = False
        if result.best is not None:
            # Only more compression is worth judging; the first that clears the bar is the next best.
            for r in ranked:
                if r.compression <= result.best.compression or len(result.judged) >= budget:
                    break
                s = judged(r.name, r.config)
                if s.meets(t):
                    result.best = current = s
                    moved = True
                    break
        else:
            # Nothing clears the bar yet: legibility costs compression, so judge the neighbours that give up
            # the least of it first (down to MIN_KEEP of the current), then follow the one closest to the bar.
            c0 = current.compression
            pick = [r for r in ranked if MIN_KEEP * c0 <= r.compression <= 1.02 * c0] or ranked
            best_try: Score | None = None
            for r in pick:
                if len(result.judged) >= budget:
                    break
                s = judged(r.name, r.config)
                if s.meets(t):
                    result.best = current = s
                    moved = True
                    break
                if best_try is None or deficit(s, t) < deficit(best_try, t):
                    best_try = s
            if not moved and best_try is not None and deficit(best_try, t) < deficit(current, t):
                current, moved = best_try, True
        if not moved:
            break
    return result
