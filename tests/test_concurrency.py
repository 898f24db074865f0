"""The pieces that let the API serve many requests at once: query batching, the index's
readers-writer lock, the catalog's shared snapshot, the per-request answerer."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kb.catalog import Catalog, DocumentRecord, SectionRecord
from kb.embed.batching import QueryBatcher
from kb.rwlock import RWLock


def test_batcher_gives_each_caller_its_own_result_and_batches_concurrent_calls() -> None:
    gate = threading.Event()
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        gate.wait(5)  # hold the first batch so the others queue up behind it
        return [t.upper() for t in texts]

    b: QueryBatcher[str] = QueryBatcher(encode)
    out: dict[int, str] = {}

    def ask(i: int) -> None:
        out[i] = b(f"q{i}")

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in threads:
        t.join(10)
    assert out == {i: f"Q{i}" for i in range(12)}
    assert sum(len(c) for c in calls) == 12 and len(calls) < 12  # queued queries shared forward passes
    assert b.items == 12 and b.batches == len(calls)


def test_batcher_passes_errors_to_every_waiter_and_keeps_working() -> None:
    fail = {"on": True}

    def encode(texts: list[str]) -> list[np.ndarray]:
        if fail["on"]:
            raise RuntimeError("model will not load")
        return [np.full(3, len(t), np.float32) for t in texts]

    b: QueryBatcher[np.ndarray] = QueryBatcher(encode)
    with pytest.raises(RuntimeError, match="will not load"):
        b("abc")
    fail["on"] = False
    assert b("abcd").tolist() == [4.0, 4.0, 4.0]


def test_batcher_worker_exits_when_idle_and_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    import kb.embed.batching as batching

    monkeypatch.setattr(batching, "IDLE_EXIT_S", 0.05)
    b: QueryBatcher[int] = QueryBatcher(lambda ts: [len(t) for t in ts])
    assert b("ab") == 2
    time.sleep(0.3)
    assert b._worker is None  # idle: no thread left behind
    assert b("abc") == 3


def test_rwlock_readers_share_writers_exclude_and_go_first() -> None:
    lock = RWLock()
    inside: list[str] = []
    active = {"readers": 0, "max_readers": 0, "writer_with_readers": False}
    guard = threading.Lock()

    def reader() -> None:
        with lock.read():
            with guard:
                active["readers"] += 1
                active["max_readers"] = max(active["max_readers"], active["readers"])
            time.sleep(0.05)
            with guard:
                active["readers"] -= 1

    def writer() -> None:
        with lock.write():
            with guard:
                active["writer_with_readers"] |= active["readers"] > 0
            with lock.read():  # a writer may read its own writes
                inside.append("w")

    ts = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer)]
    ts += [threading.Thread(target=reader) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    assert active["max_readers"] > 1 and not active["writer_with_readers"] and inside == ["w"]


def _rec(doc_id: str, pid: str) -> DocumentRecord:
    return DocumentRecord(
        doc_id=doc_id,
        title=doc_id,
        source_name=doc_id,
        source_path=f"/x/{doc_id}",
        format="md",
        file_sha256="0",
        file_bytes=1,
        render_fingerprint="f",
        ingested_at="2026-01-01T00:00:00",
        tags=["t"],
        sections=[
            SectionRecord(
                section_id=f"{doc_id}#0",
                ordinal=0,
                heading_path=[],
                kinds=[],
                text="x",
                content_hash="h",
                text_tokens=1,
                images=[],
                point_id=pid,
            )
        ],
    )


def test_catalog_snapshot_sees_this_process_writes_at_once_and_other_processes_soon(tmp_path: Path) -> None:
    a, b = Catalog(tmp_path), Catalog(tmp_path)
    assert a.live_point_ids() == frozenset() and b.live_point_ids() == frozenset()
    a.put(_rec("d1", "p1"))
    assert a.live_point_ids() == {"p1"} and b.live_point_ids() == {"p1"}  # same process: at once
    a.delete("d1")
    assert b.live_point_ids() == frozenset() and "d1" not in a.summaries()
    # Another process's write (simulated: a manifest appearing behind the catalogs' backs).
    other = Catalog(tmp_path / "elsewhere")
    other.put(_rec("d2", "p2"))
    (tmp_path / "elsewhere" / "d2.json").rename(tmp_path / "d2.json")
    time.sleep(0.3)  # STAMP_TTL_S
    assert a.live_point_ids() == {"p2"} and a.summaries()["d2"].tags == ("t",)


def test_catalog_listing_is_safe_from_many_threads(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    errors: list[BaseException] = []
    stop = time.monotonic() + 1.0

    def write(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            cat.put(_rec(f"w{n}-{i % 5}", f"p{n}-{i}"))
            i += 1

    def read() -> None:
        while time.monotonic() < stop:
            try:
                ids = cat.live_point_ids()
                assert all(isinstance(x, str) for x in ids)
                list(cat)
            except BaseException as exc:
                errors.append(exc)
                return

    ts = [threading.Thread(target=write, args=(n,)) for n in range(2)] + [
        threading.Thread(target=read) for _ in range(4)
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    assert not errors
    assert len(cat.summaries()) == 10 and len(cat.live_point_ids()) == 10


def test_api_answerer_is_made_once_and_copied_per_request(tmp_path: Path) -> None:
    from kb.api.state import ApiState
    from kb.service import KnowledgeBase
    from kb.settings import Settings

    s = Settings(
        data_dir=tmp_path / "d",
        vlm_backend="openai",
        vlm_base_url="http://127.0.0.1:9/v1",
        vlm_model="m",
    )
    api = ApiState(KnowledgeBase(s))
    try:
        a1: Any = api.answerer()
        a2: Any = api.answerer()
        assert a1 is not a2 and a1._client is a2._client  # one connection pool
        a1.last_usage = {"prompt_tokens": 1}
        assert getattr(a2, "last_usage", None) != {"prompt_tokens": 1}  # per-request state stays apart
    finally:
        api.close()


def test_writer_lock_waits_for_a_short_writer_and_times_out_on_a_long_one(tmp_path: Path) -> None:
    from kb.errors import StoreLockedError
    from kb.fsutil import writer_lock

    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with writer_lock(tmp_path):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    with pytest.raises(StoreLockedError, match="writing to"), writer_lock(tmp_path, timeout=0.2):
        pass
    threading.Timer(0.3, release.set).start()
    t0 = time.monotonic()
    with writer_lock(tmp_path, timeout=5):  # waits for the holder's commit to end
        assert time.monotonic() - t0 >= 0.25
    t.join(5)
