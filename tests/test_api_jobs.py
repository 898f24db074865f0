"""Durable ingest jobs: records in a store dir, flock ownership, recovery of orphans (real files, no mocks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kb.api import jobs as jobs_mod
from kb.api.jobs import INTERRUPTED, MAX_ATTEMPTS, Job, JobRunner

ROOT = Path(__file__).resolve().parents[1]


def ok_work(name: str = "a.md") -> Callable[[Job], None]:
    def work(job: Job) -> None:
        job.results.append({"file": name, "status": "indexed", "document": "d1"})

    return work


@pytest.fixture
def runners() -> Iterator[list[JobRunner]]:
    """Runners made by a test; shut down at the end (a stuck one would hang the session)."""
    made: list[JobRunner] = []
    yield made
    for r in made:
        r.shutdown()


def runner(made: list[JobRunner], store: Path | None) -> JobRunner:
    r = JobRunner(store)
    made.append(r)
    return r


def orphan(store: Path, status: str = "running", attempts: int = 1, **extra: Any) -> str:
    """A record left by a dead owner: active, and nobody holds its lock."""
    job = Job(os.urandom(16).hex(), "acme", "ingest", ["a.md"], params={"files": ["/srv/up/a.md"]}, attempts=attempts)
    rec = {**job.to_record(), "status": status, "results": [{"file": "a.md", "status": "indexed"}], **extra}
    (store / f"{job.id}.json").write_text(json.dumps(rec))
    return job.id


def record(store: Path, job_id: str) -> dict[str, Any]:
    return dict(json.loads((store / f"{job_id}.json").read_text()))


def test_without_a_store_jobs_stay_in_memory(tmp_path: Path, runners: list[JobRunner]) -> None:
    r = runner(runners, None)
    job = r.submit("acme", "ingest", ["a.md"], ok_work(), params={"x": 1})
    assert r.wait_idle(60)
    got = r.get("acme", job.id)
    assert got is not None and got.status == "done" and got.attempts == 1
    assert r.get("other", job.id) is None
    assert r.recover(lambda j: ok_work()) == []
    assert list(tmp_path.iterdir()) == []


def test_round_trip_through_the_store(tmp_path: Path, runners: list[JobRunner]) -> None:
    store = tmp_path / "jobs"
    a = runner(runners, store)
    job = a.submit("acme", "ingest", ["a.md"], ok_work(), params={"files": ["/srv/uploads/a.md"], "tags": ["t"]})
    assert set(job.to_json()) == {"id", "kind", "status", "files", "created", "finished", "results", "error"}
    assert a.wait_idle(60)
    a.shutdown()
    assert sorted(p.name for p in store.iterdir()) == [f"{job.id}.json"]  # the lock is gone

    b = runner(runners, store)  # a restarted server, or another replica
    got = b.get("acme", job.id)
    assert got is not None
    assert got.status == "done" and got.finished and got.attempts == 1
    assert got.results == [{"file": "a.md", "status": "indexed", "document": "d1"}]
    assert got.params == {"files": ["/srv/uploads/a.md"], "tags": ["t"]}
    assert got.to_json() == {**job.to_json(), "status": "done"} | {"finished": got.finished}
    assert "params" not in got.to_json() and "/srv" not in json.dumps(got.to_json())
    assert b.get("globex", job.id) is None  # another tenant's job is missing
    assert Job.from_record(got.to_record()) == got


def test_bad_ids_are_missing_and_never_touch_the_filesystem(tmp_path: Path, runners: list[JobRunner]) -> None:
    store = tmp_path / "jobs"
    r = runner(runners, store)
    outside = Job("0" * 32, "acme", "ingest", ["a.md"], status="done")
    (tmp_path / "evil.json").write_text(json.dumps(outside.to_record()))
    (tmp_path / f"{'0' * 32}.json").write_text(json.dumps(outside.to_record()))
    for bad in ["../evil", "..", "", "/etc/passwd", f"../{'0' * 32}", "A" * 32, "0" * 31, "0" * 33, "0" * 32 + "\n"]:
        assert r.get("acme", bad) is None, bad
    assert r.get("acme", "0" * 32) is None  # well formed, unknown
    assert list(store.iterdir()) == []


def test_progress_is_visible_to_another_runner(tmp_path: Path, runners: list[JobRunner]) -> None:
    store = tmp_path / "jobs"
    go = threading.Event()

    def work(job: Job) -> None:
        job.results.append({"file": "a.md", "status": "indexed"})
        assert go.wait(5)
        job.results.append({"file": "b.md", "status": "indexed"})

    a, b = runner(runners, store), runner(runners, store)
    job = a.submit("acme", "ingest", ["a.md", "b.md"], work)
    deadline = time.monotonic() + 60  # generous: a loaded CI box is slow, and it returns as soon as it holds
    while (seen := b.get("acme", job.id)) is None or len(seen.results) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert seen.status == "running" and (store / f"{job.id}.lock").exists()
    assert b.recover(lambda j: pytest.fail("a live runner owns this job")) == []
    go.set()
    assert a.wait_idle(60)
    final = b.get("acme", job.id)
    assert final is not None and final.status == "done" and len(final.results) == 2
    assert not (store / f"{job.id}.lock").exists()


CHILD = """
import importlib.util, sys, threading, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("kb_jobs_child", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
sys.modules["kb_jobs_child"] = mod
spec.loader.exec_module(mod)

def work(job):
    job.results.append({"file": "a.md", "status": "indexed"})
    threading.Event().wait()

r = mod.JobRunner(Path(sys.argv[2]))
job = r.submit("acme", "ingest", ["a.md", "b.md"], work, params={"files": ["/srv/up/a.md", "/srv/up/b.md"]})
print(job.id, flush=True)
time.sleep(60)
"""


def test_a_job_of_a_killed_server_is_recovered(tmp_path: Path, runners: list[JobRunner]) -> None:
    store = tmp_path / "jobs"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ROOT / "kb/api/jobs.py"), str(store)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        job_id = proc.stdout.readline().strip()
        r = runner(runners, store)
        deadline = time.monotonic() + 60  # generous: a loaded CI box is slow, and it returns as soon as it holds
        while (seen := r.get("acme", job_id)) is None or not seen.results:
            assert time.monotonic() < deadline, "the child's job did not start"
            time.sleep(0.01)
        assert seen.status == "running"
        # the owner is alive (in another process): hands off
        assert r.recover(lambda j: pytest.fail("a live runner owns this job")) == []
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert record(store, job_id)["status"] == "running"  # what the dead owner left

    seen_params: list[dict[str, Any]] = []

    def make_work(job: Job) -> Callable[[Job], None]:
        seen_params.append(job.params)
        assert job.status == "running" and len(job.results) == 1  # as the dead owner left it
        return ok_work("b.md")

    assert r.recover(make_work) == [job_id]
    assert seen_params == [{"files": ["/srv/up/a.md", "/srv/up/b.md"]}]
    assert r.wait_idle(60)
    job = r.get("acme", job_id)
    assert job is not None and job.status == "done" and job.attempts == 2 and job.error is None
    assert job.results == [{"file": "b.md", "status": "indexed", "document": "d1"}]  # the crashed run's are dropped
    assert record(store, job_id)["status"] == "done"
    assert not (store / f"{job_id}.lock").exists()
    assert r.recover(lambda j: pytest.fail("nothing left to recover")) == []


def test_orphans_are_requeued_or_failed(tmp_path: Path, runners: list[JobRunner]) -> None:
    store = tmp_path / "jobs"
    store.mkdir()
    queued = orphan(store, "queued", attempts=0)  # never started: no attempt is used up
    running = orphan(store, "running", attempts=1)
    no_work = orphan(store, "running", attempts=1, tenant="globex")
    broken = orphan(store, "running", attempts=1, tenant="initech")
    spent = orphan(store, "running", attempts=MAX_ATTEMPTS)
    last = orphan(store, "running", attempts=MAX_ATTEMPTS - 1)
    finished = orphan(store, "done", attempts=1)
    called: list[str] = []

    def make_work(job: Job) -> Callable[[Job], None] | None:
        called.append(job.id)
        if job.tenant == "initech":
            raise RuntimeError("bug in make_work")
        return None if job.tenant == "globex" else ok_work()

    r = runner(runners, store)
    assert sorted(r.recover(make_work)) == sorted([queued, running, last])
    assert spent not in called and finished not in called
    assert r.wait_idle(60)
    for job_id, attempts in [(queued, 1), (running, 2), (last, MAX_ATTEMPTS)]:
        rec = record(store, job_id)
        assert rec["status"] == "done" and rec["attempts"] == attempts and len(rec["results"]) == 1
    for job_id in (no_work, broken, spent):
        rec = record(store, job_id)
        assert rec["status"] == "failed" and rec["error"] == INTERRUPTED and rec["finished"]
    assert record(store, finished)["status"] == "done" and "finished" not in called
    assert not list(store.glob("*.lock"))
    failed = r.get("acme", spent)
    assert failed is not None and failed.to_json()["error"] == INTERRUPTED


def test_two_runners_recovering_at_once_share_the_orphans(tmp_path: Path, runners: list[JobRunner]) -> None:
    store = tmp_path / "jobs"
    store.mkdir()
    ids = {orphan(store) for _ in range(30)}
    ran: list[str] = []
    got: list[list[str]] = [[], []]

    def make_work(job: Job) -> Callable[[Job], None]:
        def work(j: Job) -> None:
            ran.append(j.id)
            j.results.append({"file": "a.md", "status": "indexed"})

        return work

    rs = [runner(runners, store), runner(runners, store)]
    threads = [threading.Thread(target=lambda i=i: got[i].extend(rs[i].recover(make_work))) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(r.wait_idle(60) for r in rs)
    assert not set(got[0]) & set(got[1]) and set(got[0]) | set(got[1]) == ids
    assert sorted(ran) == sorted(ids)  # each orphan ran exactly once
    assert all(record(store, i)["status"] == "done" for i in ids)
    assert not list(store.glob("*.lock"))


def test_concurrent_submit_and_get(tmp_path: Path, runners: list[JobRunner]) -> None:
    store = tmp_path / "jobs"
    a, b = runner(runners, store), runner(runners, store)
    ids: list[str] = []
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            for _ in range(5):
                job = a.submit(f"t{n}", "ingest", ["a.md"], ok_work(), params={"n": n})
                ids.append(job.id)
                assert a.get(f"t{n}", job.id) is not None
                assert b.get(f"t{n}", job.id) is not None  # the record exists once submit returns
                assert b.get("nobody", job.id) is None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors and len(set(ids)) == 40
    assert a.wait_idle(60)
    assert all(record(store, i)["status"] == "done" for i in ids)


def test_old_finished_records_are_pruned(
    tmp_path: Path, runners: list[JobRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs_mod, "MAX_KEPT", 3)
    store = tmp_path / "jobs"
    store.mkdir()
    active = orphan(store, "queued", attempts=0)  # oldest, but not finished: kept
    os.utime(store / f"{active}.json", (1, 1))
    r = runner(runners, store)
    ids = []
    for _ in range(6):
        ids.append(r.submit("acme", "ingest", ["a.md"], ok_work()).id)
        assert r.wait_idle(60)
    kept = {p.stem for p in store.glob("*.json")}
    assert kept == {active, *ids[-2:]}
    assert r.get("acme", ids[0]) is None  # memory keeps MAX_KEPT too
    assert r.get("acme", ids[3]) is not None  # still in memory here, gone from the disk
    assert runner(runners, store).get("acme", ids[3]) is None


def test_stopping_finishes_the_running_job_and_leaves_the_queue_for_the_next_start(
    tmp_path: Path, runners: list[JobRunner]
) -> None:
    store = tmp_path / "jobs"
    r = JobRunner(store)
    gate = threading.Event()

    def slow(job: Job) -> None:
        gate.wait(5)
        job.results.append({"file": "a.md", "status": "ingested"})

    first = r.submit("acme", "ingest", ["a.md"], slow, params={"n": 0})
    queued = [r.submit("acme", "ingest", ["b.md"], ok_work("b.md"), params={"n": i}) for i in (1, 2)]
    stopper = threading.Thread(target=r.shutdown)
    stopper.start()
    time.sleep(0.2)
    gate.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert record(store, first.id)["status"] == "done"
    assert [record(store, j.id)["status"] for j in queued] == ["queued", "queued"]
    nxt = runner(runners, store)
    assert sorted(nxt.recover(lambda job: ok_work("b.md"))) == sorted(j.id for j in queued)
    assert nxt.wait_idle(60)
    assert [record(store, j.id)["status"] for j in queued] == ["done", "done"]
