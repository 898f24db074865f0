"""The render search (`ingest.render_tuning.tune`) is bounded in time: it starts no judgement that the time
left cannot fit, keeps the best found by then, and says it stopped on time. A fake judge and clock keep
these fast (no OCR)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from ingest.render_score import SampleDoc
from ingest.render_tuning import TuneResult, tune
from kb.settings import RenderConfig
from kb.tokens import TokenCounter
from kb.types import Block, Section

TEXT = (
    "The archive keeps every report that the team writes during the year, grouped by month and team. "
    "Old reports move to the cold store after a while, where anyone with access can still read them."
)


def _docs() -> list[SampleDoc]:
    blocks = (Block("paragraph", TEXT),)
    sec = Section("d", 0, ("Guide",), blocks)
    return [SampleDoc("guide", "Guide", blocks, (sec,), frozenset({0}))]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(deadline: float | None, *, budget: int, legible: bool = True) -> tuple[TuneResult, list[str], int]:
    clock = FakeClock()
    calls = 0

    def judge(image: Image.Image, source: str) -> str:
        nonlocal calls
        calls += 1
        clock.now += 10.0  # each transcription takes 10 "seconds"
        return source if legible else ""

    said: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        res = tune(
            _docs(), RenderConfig(), TokenCounter.load("auto"), pool, budget=budget, judge=judge,
            progress=said.append, deadline=deadline, clock=clock,
        )
    return res, said, calls


def test_a_tight_time_limit_stops_early_and_keeps_the_best_found() -> None:
    res, said, _ = _run(deadline=25.0, budget=50)
    # start judged at t=10, one neighbour at t=20; another (10 s) would end at 30 > 25
    assert len(res.judged) == 2 and res.stopped == "time"
    assert any(m.startswith("stopping on time") for m in said)
    best = res.best
    assert best is not None and best is res.judged[-1]
    assert best.compression > res.start.compression


def test_the_start_is_always_judged_even_past_the_deadline() -> None:
    res, _, _ = _run(deadline=0.0, budget=50, legible=False)
    assert len(res.judged) == 1 and res.stopped == "time" and res.best is None
    assert res.front()


def test_without_a_deadline_the_budget_bounds_it() -> None:
    res, _, _ = _run(deadline=None, budget=2)
    assert len(res.judged) == 2 and res.stopped == "budget"
