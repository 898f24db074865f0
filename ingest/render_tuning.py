"""Searching render configurations: maximise compression subject to the legibility bar.

Compression needs only rendering (cheap); legibility needs a judge (OCR: slow). So each round renders
every neighbour of the current best (one parameter changed), ranks them by compression, and judges them
from the most compressed down, stopping at the first that clears the bar; the budget counts judged
configurations. Before any configuration clears the bar, the one closest to it is followed instead.

A `deadline` bounds the search in time: no judgement (nor round of neighbour renders) is started unless
the time left fits one, estimated as the slowest seen so far; the best found by then is the result.
"""

from __future__ import annotations

import time
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
    "id_font": ("", "DejaVuSansMono", "NotoSans"),
    "id_kinds": ("all", "paths"),
    "id_scale": (1.0, 1.12),
    "id_tracking": (0.0, 0.04, 0.08),
    "id_bold": (False, True),
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
    stopped: str = ""  # why the search ended: "budget", "time", "no neighbours left" or "no better neighbour"

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
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TuneResult:
    """Hill-climb from `start` over SPACE; `budget` = how many configurations are judged (start included).
    `deadline` (a `clock()` time): start no judgement that the time left cannot fit (the start is always
    judged, so there is a result); `result.stopped` says why the search ended."""
    t = targets or Targets()
    cache: dict[str, str] = {}
    took: list[float] = []  # seconds per judgement so far
    render_took: list[float] = []  # seconds per round of neighbour renders

    def time_left_for(kind: str) -> bool:
        """Whether the time left fits one more judgement (or one more round of renders)."""
        if deadline is None:
            return True
        seen = took if kind == "judgement" else render_took
        need = max(seen) if seen else (max(took) if took else 0.0)
        if clock() + need <= deadline:
            return True
        if not result.stopped:
            result.stopped = "time"
            progress(
                f"stopping on time: {max(0.0, deadline - clock()):.0f} s left, one {kind} takes about {need:.0f} s"
            )
        return False

    def judged(name: str, cfg: RenderConfig) -> Score:
        t0 = clock()
        s = score(name, cfg, docs, counter, pool=pool, judge=judge, sampled_only=True, cache=cache)
        took.append(clock() - t0)
        fails = s.failures(t)
        progress(
            f"[{len(result.judged) + 1}/{budget}] {name}: {s.compression:.2f}x recall {s.recall:.3f} "
            f"identifiers {s.identifier_recall:.3f} order {s.order:.3f} ({took[-1]:.0f} s)"
            + ("  clears the bar" if not fails else "  (" + "; ".join(fails) + ")")
        )
        result.judged.append(s)
        return s

    def may_judge() -> bool:
        if len(result.judged) >= budget:
            result.stopped = result.stopped or "budget"
            return False
        return time_left_for("judgement")

    result = TuneResult(start=Score("start", start, counter.name, []), best=None)
    result.start = first = judged("start", start)
    current = first
    if first.meets(t):
        result.best = first
    seen = {start.model_dump_json()}
    while may_judge():
        cands = [(n, c) for n, c in neighbours(current.config) if c.model_dump_json() not in seen]
        if not cands:
            result.stopped = "no neighbours left"
            break
        if not time_left_for("round of renders"):
            break
        progress(f"rendering {len(cands)} neighbours of {label(current.config, start)} for their compression")
        t0 = clock()
        ranked = []
        for _name, cfg in cands:
            seen.add(cfg.model_dump_json())
            ranked.append(score(label(cfg, start), cfg, docs, counter, pool=None, sampled_only=True))
        render_took.append(clock() - t0)
        ranked.sort(key=lambda s: -s.compression)
        moved = False
        if result.best is not None:
            # Only more compression is worth judging; the first that clears the bar is the next best.
            for r in ranked:
                if r.compression <= result.best.compression or not may_judge():
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
                if not may_judge():
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
            result.stopped = result.stopped or "no better neighbour"
            break
    return result
