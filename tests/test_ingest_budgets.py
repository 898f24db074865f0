"""Bounded work per ingest job (issue 10): a fair queue across tenants, and per-file wall-time and memory
budgets in the worker that prepares a file, past which the file fails clearly and leaves nothing behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kb.api.jobs import Job, JobRunner
from kb.ingest_prepare import PreparePool
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.tiny_models import settings_fields

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


# -- fairness ---------------------------------------------------------------------------------------
def test_another_tenants_single_file_runs_between_the_files_of_a_batch(tmp_path: Path) -> None:
    runner = JobRunner(tmp_path / "jobs")
    order: list[str] = []
    started = threading.Event()
    gate = threading.Event()

    def batch(job: Job) -> None:  # shaped like AppState.ingest_job: yield_turn between files
        for i in range(4):
            if i:
                runner.yield_turn(job)
            if i == 0:
                started.set()
                gate.wait(10)
            order.append(f"A{i}")
            time.sleep(0.05)  # a slow file
            job.results.append({"file": f"a{i}.md", "status": "ingested"})

    def single(name: str) -> Callable[[Job], None]:
        def work(job: Job) -> None:
            order.append(name)
            job.results.append({"file": f"{name}.md", "status": "ingested"})

        return work

    try:
        a = runner.submit("a", "ingest", [f"a{i}.md" for i in range(4)], batch)
        assert started.wait(10)
        a_more = runner.submit("a", "ingest", ["A5.md"], single("A5"))  # A's next batch waits its turn too
        b = runner.submit("b", "ingest", ["B.md"], single("B"))
        c = runner.submit("c", "ingest", ["C.md"], single("C"))
        gate.set()
        assert runner.wait_idle(30)
        # round-robin: one file of A, then B's job, one file of A, C's job, the rest of A, then A's next job
        assert order == ["A0", "B", "A1", "C", "A2", "A3", "A5"]
        assert all(runner.get(t, j.id).status == "done" for t, j in (("a", a), ("a", a_more), ("b", b), ("c", c)))  # type: ignore[union-attr]
    finally:
        runner.shutdown()


def test_separate_jobs_of_two_tenants_alternate(tmp_path: Path) -> None:
    runner = JobRunner(None)
    order: list[str] = []
    gate = threading.Event()

    def work(name: str, wait: bool = False) -> Callable[[Job], None]:
        def run(job: Job) -> None:
            if wait:
                gate.wait(10)
            order.append(name)

        return run

    try:
        runner.submit("a", "ingest", ["a0"], work("a0", wait=True))
        for i in (1, 2, 3):
            runner.submit("a", "ingest", [f"a{i}"], work(f"a{i}"))
        runner.submit("b", "ingest", ["b0"], work("b0"))
        gate.set()
        assert runner.wait_idle(30)
        assert order == ["a0", "a1", "b0", "a2", "a3"]  # b waited for one of a's queued jobs, not three
    finally:
        runner.shutdown()


# -- budgets ----------------------------------------------------------------------------------------
def snapshot(kb: KnowledgeBase) -> dict[str, Any]:
    return {d.doc_id: [(s.section_id, s.point_id, [i.key for i in s.images]) for s in d.sections] for d in kb.documents()}


def image_files(settings: Settings) -> set[str]:
    return {p.name for p in (settings.data_dir / "images").rglob("*.png")}


def big_markdown(n: int) -> str:
    return "# Big\n\n" + "\n\n".join(
        f"## Part {i}\n\n" + " ".join(f"word{i}x{j}" for j in range(200)) for i in range(n)
    )


@pytest.fixture
def data_settings(tmp_path: Path, model_env: dict[str, str]) -> Settings:
    return Settings(data_dir=tmp_path / "data", **settings_fields(model_env))


def ingest_with(settings: Settings, kb: KnowledgeBase, path: Path, **budget: float) -> Any:
    pool = PreparePool(settings.model_copy(update=budget), workers=1)
    try:
        (res,) = kb.ingest([path], pool=pool)
        return res
    finally:
        pool.close()


def test_a_file_past_the_time_budget_fails_clearly_and_the_old_version_stays(
    data_settings: Settings, tmp_path: Path, shared_embedders: Any
) -> None:
    doc = tmp_path / "big.md"
    doc.write_text(big_markdown(3))  # version 1: small; its first sections recur in version 2
    with KnowledgeBase(data_settings, embedders=shared_embedders) as kb:
        assert ingest_with(data_settings, kb, doc).status == "ingested"
        before, points, images = snapshot(kb), kb.index.count(), image_files(data_settings)
        doc.write_text(big_markdown(400))
        t0 = time.monotonic()
        res = ingest_with(data_settings, kb, doc, ingest_job_seconds=0.5)
        assert time.monotonic() - t0 < 60
        assert res.status == "failed" and res.error
        assert "big.md took longer than 0.5 s" in res.error, res.error
        assert str(tmp_path) not in res.error and "/" not in res.error
        assert snapshot(kb) == before and kb.index.count() == points  # version 1 is still the current one
        assert image_files(data_settings) == images  # nothing of version 2 left, all of version 1 there
        assert kb.search("word1x5")  # and it still answers


def test_a_file_past_the_memory_budget_fails_clearly_and_the_old_version_stays(
    data_settings: Settings, tmp_path: Path, shared_embedders: Any
) -> None:
    doc = tmp_path / "incident-response-sop.md"
    doc.write_text((EXAMPLES / "incident-response-sop.md").read_text())
    with KnowledgeBase(data_settings, embedders=shared_embedders) as kb:
        assert ingest_with(data_settings, kb, doc).status == "ingested"
        before, points, images = snapshot(kb), kb.index.count(), image_files(data_settings)
        doc.write_text(doc.read_text() + "\n\n## Appendix\n\nA new paragraph about on-call rotas.\n")
        # a worker with its models loaded is far above 40 MB: the real document trips the budget
        res = ingest_with(data_settings, kb, doc, ingest_job_memory_mb=40)
        assert res.status == "failed" and res.error
        assert "incident-response-sop.md needed more than 40 MB of memory" in res.error, res.error
        assert "/" not in res.error
        assert snapshot(kb) == before and kb.index.count() == points
        assert image_files(data_settings) == images
        # the same file within the default budget goes in
        assert ingest_with(data_settings, kb, doc).status == "ingested"
