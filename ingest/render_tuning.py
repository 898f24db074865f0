"""Searching render configurations: maximise compression subject to the legibility bar."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ingest.render_score import Score


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
