"""Ingest + index + search through the service, on real Qdrant local mode with the tiny CLIP and real MiniLM."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app
from kb.errors import ConfigError, KbError
from kb.retrieve import SearchOptions
from kb.service import KnowledgeBase
from kb.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


@pytest.fixture()
def kb(kb_settings: Settings, shared_embedders: object, tmp_path: Path) -> Iterator[KnowledgeBase]:
    shutil.copytree(EXAMPLES, tmp_path / "docs")
    with KnowledgeBase(kb_settings, embedders=shared_embedders) as k:  # type: ignore[arg-type]
        res = k.ingest([tmp_path / "docs"])
        assert all(r.status == "ingested" for r in res), [r.error for r in res]
        yield k


def test_search_returns_stable_json_hits_with_signal_scores(kb: KnowledgeBase) -> None:
    hits = kb.search("How fast must POST /payments answer at p99?", SearchOptions(k=3))
    assert hits and hits[0].doc.startswith("payments-api-spec")
    js = hits[0].to_json()
    assert list(js) == ["doc", "title", "section", "pages", "text", "score", "scores", "images"]
    assert set(js["scores"]) <= {"image", "text", "bm25"} and "text" in js["scores"]
    assert all(Path(p).is_file() for p in js["images"])


def test_each_signal_alone(kb: KnowledgeBase) -> None:
    for sig in ("image", "text", "bm25"):
        hits = kb.search("rollback deploy", SearchOptions(k=2, signals=[sig]))
        assert hits and all(set(h.scores) == {sig} for h in hits)
    bm = kb.search("deployctl rollback", SearchOptions(k=1, signals=["bm25"]))
    assert bm[0].doc == "incident-response-sop.md"


def test_cross_document_question_spans_documents(kb: KnowledgeBase) -> None:
    hits = kb.search("Do the v1 and v2 payments specs agree on latency?", SearchOptions(k=4))
    assert {h.doc for h in hits} >= {"payments-api-spec-v1.html", "payments-api-spec-v2.txt"}
    only = kb.search("latency", SearchOptions(k=4, doc_ids=["payments-api-spec-v2.txt"]))
    assert {h.doc for h in only} == {"payments-api-spec-v2.txt"}
    with pytest.raises(KbError, match="unknown document"):
        kb.search("x", SearchOptions(doc_ids=["nope.md"]))


def test_changed_document_never_missing_or_doubled_and_crash_keeps_old(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "docs" / "payments-api-spec-v2.txt"
    q = SearchOptions(k=20, doc_ids=["payments-api-spec-v2.txt"])
    before = kb.search("retention years", q)
    assert any("10 years" in h.text for h in before)
    f.write_text(f.read_text().replace("10 years", "12 years"))

    def crash(*a: object, **k: object) -> None:
        raise RuntimeError("power cut after the upsert, before the manifest")

    monkeypatch.setattr(kb.catalog, "put", crash)
    with pytest.raises(RuntimeError):
        kb.ingest([f])
    monkeypatch.undo()
    mid = kb.search("retention years", q)  # new points exist in Qdrant, but the old version is live
    assert [h.point_id for h in mid] == [h.point_id for h in before]
    (r,) = kb.ingest([f])
    assert r.status == "ingested"
    after = kb.search("retention years", q)
    texts = " ".join(h.text for h in after)
    assert "12 years" in texts and "10 years" not in texts
    assert len({h.section_id for h in after}) == len(after)
    assert kb.index.count("payments-api-spec-v2.txt") == len(kb.get("payments-api-spec-v2.txt").sections)


def test_reingest_noop_and_delete_removes_points(kb: KnowledgeBase, tmp_path: Path) -> None:
    n = kb.index.count()
    assert all(r.status == "unchanged" for r in kb.ingest([tmp_path / "docs"]))
    assert kb.index.count() == n
    kb.delete("incident-response-sop.md")
    assert kb.index.count("incident-response-sop.md") == 0
    assert all(h.doc != "incident-response-sop.md" for h in kb.search("rollback", SearchOptions(k=10)))


def test_other_models_on_same_collection_is_a_clear_error(kb: KnowledgeBase, kb_settings: Settings) -> None:
    kb.close()
    other = KnowledgeBase(kb_settings.model_copy(update={"bm25": False}))
    with pytest.raises(ConfigError, match="re-index"):
        other.search("anything")
    other.close()


def test_empty_kb_says_what_to_do(kb_settings: Settings, shared_embedders: object) -> None:
    with KnowledgeBase(kb_settings, embedders=shared_embedders) as k, pytest.raises(KbError, match="kb ingest"):  # type: ignore[arg-type]
        k.search("hello")


def test_cli_search_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_env: dict[str, str]) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    for k, v in model_env.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(EXAMPLES)]).exit_code == 0
    res = runner.invoke(app, ["search", "severity levels first response", "--k", "2", "--json"])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)
    assert len(hits) == 2 and hits[0]["doc"] == "incident-response-sop.md"
    res = runner.invoke(app, ["search", "x", "--doc", "missing.md"])
    assert res.exit_code == 2 and "unknown document" in res.output
