"""The image store seam: one contract for the local directory, fsspec's in-memory store and a real S3
protocol server (moto, on 127.0.0.1), then the whole product (ingest, search, ask, the API's image
route, delete, gc, readiness) on the S3 store with no shared filesystem."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kb.errors import ImageStoreError, KbError
from kb.images import FsspecImageStore, ImageStore, LocalImageStore, open_image_store
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.tiny_models import settings_fields

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


def png(colour: str, size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """An S3 endpoint on loopback; yields the fsspec options that reach it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    opts = {"key": "testing", "secret": "testing", "endpoint_url": endpoint, "client_kwargs": {"region_name": "us-east-1"}}
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).create_bucket(Bucket="glyph-kb")
    yield {"options": opts, "server": server}
    server.stop()


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ImageStore:
    if request.param == "local":
        return LocalImageStore(tmp_path / "images")
    if request.param == "memory":
        return FsspecImageStore(f"memory://kb-{uuid.uuid4().hex}/images")
    s3 = request.getfixturevalue("s3")
    return FsspecImageStore(f"s3://glyph-kb/t-{uuid.uuid4().hex}/images", s3["options"], cache_bytes=1 << 20)


def test_contract(store: ImageStore) -> None:
    red, blue = png("red"), png("blue")
    assert list(store.all_keys()) == [] and store.size_bytes() == 0
    store.check()
    k = store.put(red)
    assert k == ImageStore.key_for(red) and store.put(red) == k  # content-addressed, idempotent
    kb_ = store.put(blue)
    assert store.exists(k) and store.read(k) == red and store.read(kb_) == blue
    assert sorted(store.all_keys()) == sorted([k, kb_])
    assert store.size_bytes() == len(red) + len(blue)
    assert store.open_rgb(k).getpixel((0, 0)) == (255, 0, 0)
    assert k in store.location(k) and store.location(k).endswith(".png")
    assert store.remove([k, "f" * 64]) == 1  # counts only what existed
    assert not store.exists(k) and list(store.all_keys()) == [kb_]
    with pytest.raises(FileNotFoundError):
        store.read(k)  # not served from the read cache after a delete
    with pytest.raises(ValueError):
        store.read("../../etc/passwd")
    with pytest.raises(ValueError):
        store.exists("A" * 64)


def test_remote_store_sees_other_replicas(s3: dict[str, Any]) -> None:
    """Two stores on one prefix stand for two hosts: each sees what the other writes and deletes."""
    url = f"s3://glyph-kb/t-{uuid.uuid4().hex}/images"
    a = FsspecImageStore(url, s3["options"])
    b = FsspecImageStore(url, {**s3["options"], "skip_instance_cache": True})  # its own client and caches
    assert a.fs is not b.fs
    k = a.put(png("green"))
    assert list(b.all_keys()) == [k] and b.read(k) == png("green")
    k2 = a.put(png("olive"))  # after b listed the prefix: b's listing must not hide it
    assert b.exists(k2) and sorted(b.all_keys()) == sorted([k, k2])
    assert a.remove([k, k2]) == 2
    assert not b.exists(k) and list(b.all_keys()) == []
    assert b.put(png("green")) == k and a.exists(k)  # written again after another host's gc


def test_open_image_store_choices(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert isinstance(open_image_store(s), LocalImageStore)
    local = open_image_store(Settings(data_dir=tmp_path, image_store_url=f"file://{tmp_path / 'elsewhere'}"))
    assert isinstance(local, LocalImageStore) and local.root == tmp_path / "elsewhere"
    assert isinstance(open_image_store(Settings(data_dir=tmp_path, image_store_url="memory://x")), FsspecImageStore)
    with pytest.raises(KbError, match="nosuchproto"):
        open_image_store(Settings(data_dir=tmp_path, image_store_url="nosuchproto://bucket/x"))


DEAD_S3 = {"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:9", "config_kwargs": {"retries": {"max_attempts": 1}}}


def test_unreachable_remote_store_fails_clearly() -> None:
    store = FsspecImageStore("s3://glyph-kb/images", DEAD_S3)
    for call in (store.check, lambda: store.put(png("red")), lambda: store.read("a" * 64), lambda: list(store.all_keys())):
        with pytest.raises(ImageStoreError, match=r"image store s3://glyph-kb/images: .* failed") as err:
            call()
        assert "KB_IMAGE_STORE_URL" in err.value.hint


def test_ingest_with_store_down_fails_and_writes_nothing(
    tmp_path: Path, model_env: dict[str, str], shared_embedders: Any
) -> None:
    from fastapi.testclient import TestClient

    from kb.api import create_app

    s = Settings(
        data_dir=tmp_path / "data",
        image_store_url="s3://glyph-kb/images",
        image_store_options=DEAD_S3,
        **settings_fields(model_env),
    )
    with KnowledgeBase(s, embedders=shared_embedders) as kb:  # type: ignore[arg-type]
        [r] = kb.ingest([EXAMPLES / "incident-response-sop.md"])
        assert r.status == "failed" and r.error and "image store" in r.error, r
        assert kb.documents() == [] and kb.index.count() == 0
        with TestClient(create_app(kb)) as c:
            ready = c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["images"] == "unreachable"


# -- the product on an S3 image store -------------------------------------------------------------------
def test_product_on_s3_store(
    tmp_path: Path, s3: dict[str, Any], model_env: dict[str, str], shared_embedders: Any
) -> None:
    from fastapi.testclient import TestClient

    from kb.api import create_app
    from kb.retrieve import SearchOptions
    from tests.test_answer_openai import MODEL, FakeVlm
    from tests.test_api import KEYS, h, upload, wait_job

    url = f"s3://glyph-kb/t-{uuid.uuid4().hex}/images"
    vlm = FakeVlm()
    settings = Settings(
        data_dir=tmp_path / "data",
        image_store_url=url,
        image_store_options=s3["options"],
        vlm_backend="openai",
        vlm_base_url=vlm.url,
        vlm_model=MODEL,
        vlm_retries=0,
        api_keys=[{"key": k, "role": r, "tenants": t} for k, r, t in KEYS.values()],
        **settings_fields(model_env),
    )
    kb = KnowledgeBase(settings, embedders=shared_embedders)
    try:
        with TestClient(create_app(kb)) as c:
            files = [(p.name, p.read_bytes()) for p in sorted(EXAMPLES.iterdir())]
            r = upload(c, "admin_a", files)
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json(), "admin_a")  # prepared in a worker process, which writes to S3 itself
            assert job["status"] == "done", job
            assert not (settings.data_dir / "images").exists(), "images must go to the bucket, not the data dir"

            keys = {k for d in kb.documents() for k in d.image_keys}
            assert keys and set(kb.images.all_keys()) == keys

            hits = kb.search("p99 latency of POST /payments", SearchOptions(k=3))
            assert hits and all(i.startswith(url + "/") for h_ in hits for i in h_.images)

            key = hits[0].image_keys[0]
            img = c.get(f"/v1/images/{key}", headers=h("reader_a"))
            assert img.status_code == 200 and img.headers["content-type"] == "image/png"
            assert img.content == kb.images.read(key)
            assert c.get(f"/v1/images/{key}", headers=h("reader_b")).status_code == 404  # tenant isolation holds

            r = c.post("/v1/ask", headers=h("reader_a"), json={"question": "What is the p99 latency of POST /payments?"})
            assert r.status_code == 200, r.text
            sent = [p for m in vlm.requests[-1]["messages"] for p in (m["content"] if isinstance(m["content"], list) else [])]
            pngs = [p["image_url"]["url"] for p in sent if p.get("type") == "image_url"]
            assert pngs and all(u.startswith("data:image/png;base64,") for u in pngs)

            assert c.get("/readyz").json()["images"] == "ok"

            # the bucket goes down: ask and images fail as 503 without naming the store; search goes on
            real_cat, other = kb.images.fs.cat_file, hits[1].image_keys[0] if len(hits) > 1 else key
            kb.images._cache.clear()  # type: ignore[attr-defined]

            def down(*a: Any, **k: Any) -> bytes:
                raise ConnectionError("bucket unreachable")

            kb.images.fs.cat_file = down  # type: ignore[attr-defined]
            try:
                q = {"question": "What is the p99 latency of POST /payments?"}
                r = c.post("/v1/ask", headers=h("reader_a"), json=q)
                assert r.status_code == 503 and r.json()["error"]["message"] == "the image store is unavailable"
                assert "glyph-kb" not in r.text and "127.0.0.1" not in r.text
                assert c.get(f"/v1/images/{other}", headers=h("reader_a")).status_code == 503
                assert c.post("/v1/search", headers=h("reader_a"), json={"query": "refunds"}).status_code == 200
            finally:
                kb.images.fs.cat_file = real_cat  # type: ignore[attr-defined]

            # delete while the bucket is down: the document goes (200, with a warning), so does its staged
            # upload; its images stay until the store is back (issue 10 #8: it answered 503 and kept the upload)
            first = kb.documents()[0]
            real_rm = kb.images.fs.rm_file  # type: ignore[attr-defined]
            kb.images.fs.rm_file = down  # type: ignore[attr-defined]
            try:
                r = c.delete(f"/v1/documents/{first.doc_id}", headers=h("admin_a"))
            finally:
                kb.images.fs.rm_file = real_rm  # type: ignore[attr-defined]
            assert r.status_code == 200 and "warning" in r.json() and "glyph-kb" not in r.text, r.text
            assert kb.catalog.get(first.doc_id) is None and not Path(first.source_path).exists()

            doc = kb.documents()[0]
            only_there = set(doc.image_keys) - {k for d in kb.documents()[1:] for k in d.image_keys}
            assert c.delete(f"/v1/documents/{doc.doc_id}", headers=h("admin_a")).status_code in (200, 204)
            assert only_there and not any(kb.images.exists(k) for k in only_there)

        orphan = kb.images.put(png("purple"))  # as a crash between image write and commit leaves it
        assert kb.gc() >= 1 and not kb.images.exists(orphan)
        assert set(kb.images.all_keys()) == {k for d in kb.documents() for k in d.image_keys}
    finally:
        kb.close()
        vlm.close()
