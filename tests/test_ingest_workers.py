"""Ingest workers (ingest/workers.py, kb/ingest_prepare.py): the slow stage in other processes gives the same documents
as in-process ingest, reports errors with their hints, and survives a worker that dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kb.ingest_prepare import PreparePool
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.tiny_models import settings_fields

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


def snapshot(kb: KnowledgeBase) -> dict[str, Any]:
    return {
        d.doc_id: [(s.section_id, s.point_id, [i.key for i in s.images], s.text) for s in d.sections]
        for d in kb.documents()
    }


@pytest.fixture(scope="module")
def pool_settings(tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str]) -> Settings:
    data = tmp_path_factory.mktemp("pooled") / "data"
    return Settings(data_dir=data, **settings_fields(model_env))


def test_pooled_ingest_matches_in_process_ingest(
    pool_settings: Settings, kb_settings: Settings, shared_embedders: Any
) -> None:
    with KnowledgeBase(kb_settings, embedders=shared_embedders) as here:
        ref = here.ingest([EXAMPLES])
        ref_docs = snapshot(here)
        ref_points = here.index.count()
    pool = PreparePool(pool_settings, workers=2)
    try:
        with KnowledgeBase(pool_settings, embedders=shared_embedders) as kb:
            res = kb.ingest([EXAMPLES], pool=pool)
            assert [r.status for r in res] == [r.status for r in ref] == ["ingested"] * len(ref)
            assert snapshot(kb) == ref_docs  # same sections, point ids, image keys
            assert kb.index.count() == ref_points and kb.catalog.live_point_ids() == {
                p for d in ref_docs.values() for _, p, _, _ in d
            }
            hits = kb.search("who is paged for a sev1 incident")
            assert hits and hits[0].doc == "incident-response-sop.md"
            # unchanged files are recognised before any worker is asked
            assert [r.status for r in kb.ingest([EXAMPLES], pool=pool)] == ["unchanged"] * len(ref)
    finally:
        pool.close()


def test_worker_errors_keep_their_type_and_hint(pool_settings: Settings, tmp_path: Path, shared_embedders: Any) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"this is not a pdf")
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    pool = PreparePool(pool_settings, workers=1)
    try:
        with KnowledgeBase(pool_settings, embedders=shared_embedders) as kb:
            before = snapshot(kb)
            r1, r2 = kb.ingest([bad, empty], pool=pool)
            assert r1.status == r2.status == "failed"
            assert r1.error and "not a PDF" in r1.error and "(" in r1.error  # the hint came back too
            assert r2.error and "empty" in r2.error.lower()
            assert snapshot(kb) == before  # nothing half-ingested
    finally:
        pool.close()


def big_markdown(n: int) -> str:
    return "# Big\n\n" + "\n\n".join(
        f"## Part {i}\n\n" + " ".join(f"word{i}x{j}" for j in range(200)) for i in range(n)
    )


def test_a_dead_worker_fails_one_file_clearly_and_the_next_one_works(
    pool_settings: Settings, tmp_path: Path, shared_embedders: Any
) -> None:
    big = tmp_path / "big.md"
    big.write_text(big_markdown(300))
    small = tmp_path / "small.md"
    small.write_text("# Small\n\nA small note about refunds.\n")
    pool = PreparePool(pool_settings, workers=1)
    try:
        with KnowledgeBase(pool_settings, embedders=shared_embedders) as kb:
            before = snapshot(kb)
            # Start the worker and let it load, so the kill lands mid-prepare.
            assert kb.ingest([small], pool=pool)[0].status == "ingested"
            procs = list(pool._executor()._processes.values())
            assert len(procs) == 1 and procs[0].pid != os.getpid()
            killer = threading.Timer(1.0, lambda: os.kill(procs[0].pid, signal.SIGKILL))  # type: ignore[arg-type]
            killer.start()
            t0 = time.monotonic()
            (res,) = kb.ingest([big], pool=pool)
            killer.join()
            assert res.status == "failed" and res.error and "worker died" in res.error, res
            assert time.monotonic() - t0 < 60
            assert "big.md" not in snapshot(kb) and set(snapshot(kb)) == set(before) | {"small.md"}
            small.write_text("# Small\n\nA small note about refunds, edited.\n")
            assert kb.ingest([small], pool=pool)[0].status == "ingested"  # a fresh worker took over
    finally:
        pool.close()
