"""Fault: kill -9 `kb serve` in the middle of a large upload's ingest, restart it, check the store.

Either the old version of the document is intact or the new one is complete; after `kb gc` there
are no orphan images and no orphan Qdrant points.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.test_api import free_port
from tests.tiny_models import settings_fields

KEY = "fault-admin-key-aaaaaaaaaaaa"
H = {"Authorization": f"Bearer {KEY}"}
DOC = "acme--big.md"
OLD_WORD = "quokkaoldversion"
NEW_WORD = "narwhalnewversion"


def big_markdown(sections: int) -> bytes:
    body = "\n\n".join(
        f"## Part {i}\n\n{NEW_WORD} section {i}: "
        + " ".join(f"term{i}x{j} latency budget replica shard" for j in range(12))
        + f"\n\n| a | b |\n|---|---|\n| {i} | {i * 2} |"
        for i in range(sections)
    )
    return f"# Big\n\n{body}\n".encode()


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Server:
    def __init__(self, data: Path, env_extra: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            **env_extra,
            "KB_DATA_DIR": str(data),
            "KB_API_KEYS": json.dumps([{"key": KEY, "role": "admin", "tenants": ["acme"]}]),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kb.cli", "serve", "--port", str(self.port)],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 180  # a loaded CI box starts kb serve slowly
        while True:
            assert self.proc.poll() is None, "kb serve exited"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "kb serve did not start"
            time.sleep(0.1)
        self.c = httpx.Client(base_url=self.url, headers=H, timeout=30)

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.c.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def upload(self, name: str, data: bytes) -> str:
        r = self.c.post("/v1/documents", files=[("files", (name, data, "text/markdown"))])
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def wait(self, job_id: str, until: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            j = self.job(job_id)
            if j["status"] in until:
                return j
            assert time.monotonic() < deadline, j
            time.sleep(0.02)

    def search(self, query: str) -> list[dict[str, Any]]:
        r = self.c.post("/v1/search", json={"query": query, "k": 20, "signals": ["bm25"]})
        assert r.status_code == 200, r.text
        return list(r.json()["hits"])

    def stop(self) -> None:
        self.c.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def test_kill_9_mid_ingest_keeps_old_or_new_and_gc_leaves_no_orphans(
    tmp_path: Path, model_env: dict[str, str], shared_embedders: Any
) -> None:
    data = tmp_path / "data"
    s = Server(data, model_env, tmp_path)
    try:
        done = s.wait(
            s.upload("big.md", f"# Big\n\nThe {OLD_WORD} text, first edition.\n".encode()), ("done", "failed")
        )
        assert done["status"] == "done", done
        old = s.c.get(f"/v1/documents/{DOC}").json()
        assert old["sections"] and OLD_WORD in json.dumps(old)
        old_keys = [i["key"] for sec in old["sections"] for i in sec["images"]]

        job = s.upload("big.md", big_markdown(600))
        j = s.wait(job, ("running", "done", "failed"))
        assert j["status"] == "running", f"ingest finished before the kill: {j}"  # must be killed mid-ingest
        time.sleep(0.3)
        workers = children(s.proc.pid)  # the ingest worker process(es), busy with the big file
        assert workers, "ingest should run in a worker process"
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait(10)
        deadline = time.monotonic() + 60
        while any(alive(p) for p in workers):  # they notice their parent is gone and exit
            assert time.monotonic() < deadline, f"orphaned ingest workers {workers}"
            time.sleep(0.2)
    finally:
        s.stop()

    s = Server(data, model_env, tmp_path)
    try:
        now = s.c.get(f"/v1/documents/{DOC}")
        assert now.status_code == 200, now.text
        doc = now.json()
        print("after restart:", "old version intact" if doc == old else "new version complete")
        if doc == old:  # the old version, intact
            for k in old_keys:
                r = s.c.get(f"/v1/images/{k}")
                assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
            assert any(h["doc"] == DOC for h in s.search(OLD_WORD))
            assert s.search(NEW_WORD) == []
        else:  # the new version, complete
            assert OLD_WORD not in json.dumps(doc)
            assert (
                len([sec for sec in doc["sections"] if NEW_WORD in sec.get("text", "")]) >= 600
                or len(doc["sections"]) >= 600
            )
            assert s.search(OLD_WORD) == []
            assert any(h["doc"] == DOC for h in s.search(NEW_WORD))
        # The restarted server resumed the interrupted job (its record and staged file survived): the
        # upload the client was told was accepted lands without being sent again.
        j = s.wait(job, ("done", "failed"), timeout=300)
        assert j["status"] == "done" and j["results"][0]["status"] == "ingested", j
        doc = s.c.get(f"/v1/documents/{DOC}").json()
        text = json.dumps(doc)
        assert OLD_WORD not in text and all(f"{NEW_WORD} section {i}:" in text for i in range(600))
        assert s.search(OLD_WORD) == [] and any(h["doc"] == DOC for h in s.search(NEW_WORD))
    finally:
        s.stop()

    settings = Settings(data_dir=data, **settings_fields(model_env))
    with KnowledgeBase(settings, embedders=shared_embedders) as kb:
        kb.gc()
        referenced = kb.catalog.referenced_images()
        assert set(kb.images.all_keys()) <= referenced
        assert all(kb.images.path(k).exists() for k in referenced)
        live = kb.catalog.live_point_ids()
        ids: set[str] = set()
        offset: Any = None
        while True:
            pts, offset = kb.index.client.scroll(kb.index.collection, limit=1024, offset=offset, with_payload=False)
            ids |= {str(p.id) for p in pts}
            if offset is None:
                break
        assert ids and ids <= set(live)
        assert set(live) <= ids  # every manifest's points are there too
        assert [d.doc_id for d in kb.documents()] == [DOC]
