"""End-to-end ingest against a real data dir: manifests, content-addressed images, no-op re-ingest,
failures that leave nothing behind, delete, and the CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.catalog import doc_id_for
from kb.cli import app
from kb.errors import DocumentNotFoundError
from kb.service import KnowledgeBase
from kb.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


@pytest.fixture()
def kb(kb_settings: Settings, shared_embedders: object) -> Iterator[KnowledgeBase]:
    with KnowledgeBase(kb_settings, embedders=shared_embedders) as k:  # type: ignore[arg-type]
        yield k


def _files_under(p: Path) -> set[Path]:
    return {f for f in p.rglob("*") if f.is_file() and not f.name.endswith(".lock")}


def test_ingest_folder_then_reingest_is_noop(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    results = kb.ingest([docs])
    assert [r.status for r in results] == ["ingested"] * 3, [r.error for r in results]
    for r in results:
        assert r.sections >= 1 and r.images >= r.sections and r.text_tokens > 0 and r.visual_tokens > 0
    recs = kb.documents()
    assert {d.doc_id for d in recs} == {
        "incident-response-sop.md",
        "payments-api-spec-v1.html",
        "payments-api-spec-v2.txt",
    }
    for d in recs:
        for key in d.image_keys:
            assert kb.images.exists(key)
    sop = kb.get("incident-response-sop.md")
    # small subsections merge within their chapter (build_sections MIN_CHARS): the heading is in the path or text
    assert any("Severity levels" in " › ".join(s.heading_path) or "Severity levels" in s.text for s in sop.sections)
    assert any("table" in s.kinds for s in sop.sections) and any("code" in s.kinds for s in sop.sections)

    before = {f: f.stat().st_mtime_ns for f in _files_under(kb.settings.data_dir)}
    again = kb.ingest([docs])
    assert [r.status for r in again] == ["unchanged"] * 3
    after = {f: f.stat().st_mtime_ns for f in _files_under(kb.settings.data_dir)}
    assert before == after, "an unchanged re-ingest must not write anything"


def test_changed_document_replaces_sections_and_drops_stale_images(kb: KnowledgeBase, tmp_path: Path) -> None:
    f = tmp_path / "policy.md"
    f.write_text(
        "# Policy\n\nBackups run nightly at 02:00 and are kept for 30 days.\n\n## Scope\n\nAll production databases.\n"
    )
    kb.ingest([f])
    old = kb.get("policy.md")
    f.write_text("# Policy\n\nBackups run hourly and are kept for 90 days.\n\n## Scope\n\nAll production databases.\n")
    (r,) = kb.ingest([f])
    assert r.status == "ingested"
    new = kb.get("policy.md")
    assert "hourly" in " ".join(s.text for s in new.sections)
    stale = set(old.image_keys) - set(new.image_keys)
    assert stale and not any(kb.images.exists(k) for k in stale)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "empty"),
        ("blank.txt", b"   \n\n  ", "empty"),
        ("fake.pdf", b"\x00\x01binary junk, not a pdf" * 20, "pdf"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "docx"),
        ("notes.xyz", b"hello", "supported"),
    ],
)
def test_bad_files_fail_clearly_and_write_nothing(
    kb: KnowledgeBase, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    (r,) = kb.ingest([f])
    assert r.status == "failed"
    assert r.error and reason in r.error.lower()
    assert kb.documents() == []
    assert not any(kb.images.all_keys())


def test_failure_does_not_stop_other_files_or_touch_previous_version(kb: KnowledgeBase, tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_text("# Good\n\nThe quick brown fox jumps over the lazy dog, twice a day, every day.\n")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf at all")
    results = kb.ingest([bad, good])
    assert [r.status for r in results] == ["failed", "ingested"]
    previous = kb.get("good.md")
    good.write_bytes(b"")  # a broken new version must leave the old one intact
    (r,) = kb.ingest([good])
    assert r.status == "failed"
    assert kb.get("good.md") == previous


def test_oversized_file_is_refused_before_reading(
    kb_settings: Settings, shared_embedders: object, tmp_path: Path
) -> None:
    kb = KnowledgeBase(kb_settings.model_copy(update={"max_file_mb": 0.001}), embedders=shared_embedders)  # type: ignore[arg-type]
    f = tmp_path / "big.txt"
    f.write_text("word " * 2000)
    (r,) = kb.ingest([f])
    assert r.status == "failed" and "limit" in (r.error or "")


def test_delete_removes_document_and_images(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.ingest([EXAMPLES / "incident-response-sop.md"])
    rec = kb.get("incident-response-sop.md")
    kb.delete(rec.doc_id)
    assert kb.documents() == []
    assert not any(kb.images.exists(k) for k in rec.image_keys)
    with pytest.raises(DocumentNotFoundError):
        kb.delete(rec.doc_id)


def test_gc_collects_orphans_of_an_interrupted_ingest(kb: KnowledgeBase) -> None:
    kb.ingest([EXAMPLES / "payments-api-spec-v2.txt"])
    orphan = kb.images.put(b"\x89PNG orphan left by a crash")
    assert kb.gc() == 1
    assert not kb.images.exists(orphan)
    assert all(kb.images.exists(k) for k in kb.get("payments-api-spec-v2.txt").image_keys)


def test_doc_ids_are_safe_and_unique() -> None:
    assert doc_id_for(Path("a/b/Spec v1.pdf")) != doc_id_for(Path("Spec-v1.pdf"))
    assert doc_id_for(Path("../../etc/passwd")) == "passwd"
    assert doc_id_for(Path("仕様書.md")) == "仕様書.md"  # Unicode letters are kept (issue 10)
    assert doc_id_for(Path("仕様 書.md")).startswith("仕様-書~")  # a changed name gets a hash


def test_cli_ingest_docs_render_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_env: dict[str, str]
) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    for k, v in model_env.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(EXAMPLES)])
    assert res.exit_code == 0, res.output
    assert "documents: 3" in res.output and "failures: 0" in res.output
    res = runner.invoke(app, ["docs", "--json"])
    rows = json.loads(res.stdout)
    assert {r["doc"] for r in rows} >= {"incident-response-sop.md"} and all(r["images"] >= 1 for r in rows)
    res = runner.invoke(app, ["render", str(EXAMPLES / "payments-api-spec-v1.html"), "--out", str(tmp_path / "png")])
    assert res.exit_code == 0, res.output
    assert list((tmp_path / "png").glob("*.png"))
    res = runner.invoke(app, ["delete", "nope"])
    assert res.exit_code == 2 and "kb docs" in res.output
    bad = tmp_path / "x.pdf"
    bad.write_bytes(b"garbage")
    res = runner.invoke(app, ["ingest", str(bad)])
    assert res.exit_code == 1 and "failures: 1" in res.output
