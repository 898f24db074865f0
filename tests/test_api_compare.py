"""POST /v1/diff and POST /v1/crosscheck on a real app (TestClient), tenant-scoped; and `kb crosscheck`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb.api.app import create_app
from kb.cli import app
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.test_answer_openai import EXAMPLES
from tests.tiny_models import settings_fields

KEYS = {
    "reader": "reader-key-aaaaaaaaaaaa",
    "other": "reader-key-bbbbbbbbbbbb",
    "admin": "admin-key-cccccccccccc",
    "other_admin": "admin-key-dddddddddddd",
}


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str], shared_embedders: Any
) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("apic") / "data",
        api_keys=[
            {"key": KEYS["reader"], "role": "reader", "tenants": ["default"]},
            {"key": KEYS["other"], "role": "reader", "tenants": ["other"]},
            {"key": KEYS["admin"], "role": "admin", "tenants": ["default"]},
            {"key": KEYS["other_admin"], "role": "admin", "tenants": ["other"]},
        ],
        **settings_fields(model_env),
    )
    kb = KnowledgeBase(settings, embedders=shared_embedders)
    assert all(r.status == "ingested" for r in kb.ingest([EXAMPLES], index=False))
    with TestClient(create_app(kb)) as c:
        yield c
    kb.close()


def h(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def test_diff_endpoint(client: TestClient) -> None:
    body = {"a": "payments-api-spec-v1.html", "b": "payments-api-spec-v2.txt"}
    r = client.post("/v1/diff", headers=h("reader"), json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) == {"a", "b", "changes", "only_in_a", "only_in_b"}
    summaries = {c["summary"] for c in d["changes"]}
    assert "7 years → 10 years" in summaries and any("MUST → SHOULD" in s for s in summaries)
    assert any("Deletion" in s["section"] for s in d["only_in_a"])
    # another tenant's key sees no such documents: the same 404 as a missing one
    r = client.post("/v1/diff", headers=h("other"), json=body)
    assert r.status_code == 404
    assert client.post("/v1/diff", headers=h("reader"), json={"a": "nope", "b": body["b"]}).status_code == 404
    assert client.post("/v1/diff", json=body).status_code == 401


def test_crosscheck_endpoint(client: TestClient) -> None:
    docs = ["payments-api-spec-v1.html", "payments-api-spec-v2.txt", "incident-response-sop.md"]
    r = client.post("/v1/crosscheck", headers=h("reader"), json={"docs": docs})
    assert r.status_code == 200, r.text
    d = r.json()
    reasons = [c["reason"] for c in d["conflicts"]]
    assert "200 ms vs 500 ms; MUST vs SHOULD" in reasons and "7 years vs 10 years" in reasons
    c = d["conflicts"][0]
    assert {"doc", "title", "section", "page", "text"} <= set(c["a"]) and c["a"]["doc"] != c["b"]["doc"]
    assert any(a["reason"] == "same value" for a in d["agreements"])
    r = client.post("/v1/crosscheck", headers=h("reader"), json={"docs": docs, "topic": "retained"})
    assert [c["reason"] for c in r.json()["conflicts"]] == ["7 years vs 10 years"]
    assert client.post("/v1/crosscheck", headers=h("other"), json={"docs": docs}).status_code == 404
    assert client.post("/v1/crosscheck", headers=h("reader"), json={"docs": docs[:1]}).status_code == 422


def test_cli_crosscheck_without_a_vlm(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = Path(client.app.state.api.kb.settings.data_dir)  # type: ignore[attr-defined]
    monkeypatch.setenv("KB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("KB_VLM_BACKEND", "none")
    runner = CliRunner()
    v1, v2 = "payments-api-spec-v1.html", "payments-api-spec-v2.txt"
    res = runner.invoke(app, ["crosscheck", v1, v2, "--no-embed", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["vlm"] is None and len(d["conflicts"]) == 2
    res = runner.invoke(app, ["crosscheck", v1, v2, "--no-embed"])
    assert res.exit_code == 0 and "No VLM configured" in res.output and "7 years vs 10 years" in res.output
    res = runner.invoke(app, ["crosscheck", v1])
    assert res.exit_code == 2 and "two or more documents" in res.output


def test_revises_field(client: TestClient) -> None:
    v1, v2 = "payments-api-spec-v1.html", "payments-api-spec-v2.txt"
    url = f"/v1/documents/{v2}/revises"
    assert client.put(url, headers=h("reader"), json={"revises": v1}).status_code == 403
    assert client.put(url, headers=h("other_admin"), json={"revises": v1}).status_code == 404
    assert client.put(url, headers=h("admin"), json={"revises": "nope"}).status_code == 404
    r = client.put(url, headers=h("admin"), json={"revises": v1})
    assert r.status_code == 200 and r.json()["revises"] == v1
    docs = {d["id"]: d for d in client.get("/v1/documents", headers=h("reader")).json()["documents"]}
    assert docs[v2]["revises"] == v1
    r = client.put(url, headers=h("admin"), json={"revises": None})
    assert r.status_code == 200 and r.json()["revises"] is None
