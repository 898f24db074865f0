"""The Streamlit admin page: token gate, uploads (corrupt, oversized, hostile names), documents table,
re-ingest no-op, tag edit, delete, preview and stats — driven with AppTest, plus `handle_uploads` directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from kb.retrieve import SearchOptions
from kb.service import KnowledgeBase
from kb.settings import Settings
from kb.uploads import clean_name, uploads_root
from ui.admin import handle_uploads

TOKEN = "s3cret-admin"
GOOD_MD = b"# Backup policy\n\nBackups run nightly at 02:00 and are kept for 30 days.\n\n## Scope\n\nAll databases.\n"


@pytest.fixture()
def kb(kb_settings: Settings, shared_embedders: object) -> Iterator[KnowledgeBase]:
    settings = kb_settings.model_copy(update={"ui_admin_token": SecretStr(TOKEN)})
    with KnowledgeBase(settings, embedders=shared_embedders) as k:  # type: ignore[arg-type]
        yield k


def _admin_script(kb) -> None:  # type: ignore[no-untyped-def]  # runs as a script: no annotations from here
    from ui.admin import render_admin

    render_admin(kb)


def _app(kb: KnowledgeBase) -> AppTest:
    at = AppTest.from_function(_admin_script, args=(kb,), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _signed_in(kb: KnowledgeBase) -> AppTest:
    at = _app(kb)
    at.text_input(key="admin_token_input").input(TOKEN)
    at.button(key="admin_sign_in").click().run()
    assert not at.exception, at.exception
    return at


def _texts(elements: object) -> str:
    return "\n".join(e.value for e in elements)  # type: ignore[attr-defined]


def test_disabled_without_a_token(kb_settings: Settings) -> None:
    with KnowledgeBase(kb_settings) as k:
        at = _app(k)
    assert "KB_UI_ADMIN_TOKEN" in _texts(at.warning)
    assert not at.file_uploader and not at.text_input


def test_wrong_token_refused_right_token_accepted(kb: KnowledgeBase) -> None:
    at = _app(kb)
    assert not at.file_uploader
    at.text_input(key="admin_token_input").input("wrong")
    at.button(key="admin_sign_in").click().run()
    assert "Wrong admin token" in _texts(at.error)
    assert not at.file_uploader and not at.metric

    at.text_input(key="admin_token_input").input(TOKEN)
    at.button(key="admin_sign_in").click().run()
    assert not at.error
    assert at.file_uploader and at.file_uploader[0].accept_multiple_files
    assert {"pdf", "docx", "md", "html", "txt"} <= {t.lstrip(".") for t in at.file_uploader[0].allowed_type}
    assert [m.label for m in at.metric] == ["Documents", "Sections", "Images", "Store size", "Compression"]
    assert "No documents yet" in _texts(at.info)

    at.button(key="admin_sign_out").click().run()
    assert not at.file_uploader


def test_upload_table_reingest_tags_preview_delete(kb: KnowledgeBase) -> None:
    at = _signed_in(kb)
    at.file_uploader[0].set_value(
        [("policy.md", GOOD_MD, "text/markdown"), ("broken.pdf", b"%PDF-1.4 this is not a pdf", "application/pdf")]
    )
    at.text_input(key="admin_upload_tags").input("ops, backup")
    at.run()
    at.button(key="admin_ingest").click().run()
    assert not at.exception, at.exception
    ok, bad = _texts(at.success), _texts(at.error)
    assert "policy.md" in ok and "ingested: 1 section, 1 image" in ok, ok
    assert "broken.pdf" in bad and "failed" in bad, bad
    assert not at.file_uploader[0].value  # a fresh uploader: clicking again cannot re-send the batch
    assert [d.doc_id for d in kb.documents()] == ["policy.md"]  # nothing half-ingested for the broken file
    rec = kb.get("policy.md")
    assert rec.tags == ["backup", "ops"]
    assert Path(rec.source_path).is_relative_to(uploads_root(kb.settings).resolve())
    assert not list(uploads_root(kb.settings).rglob("broken.pdf"))  # failed uploads are not kept

    df = at.dataframe[0].value
    assert list(df.columns) == ["title", "file", "format", "pages", "sections", "images", "ingested", "tags"]
    assert list(df["file"]) == ["policy.md"] and list(df["tags"]) == ["backup, ops"]
    assert at.metric[0].value == "1"
    assert list(df["pages"]) == ["–"]  # Markdown has no pages
    assert not at.image and "Select a row" in _texts(at.caption)  # nothing open until a row is picked
    at.session_state["admin_doc"] = "policy.md"  # what selecting its row stores
    at.run()
    assert "uploads" not in _texts(at.caption) and "/" not in _texts(at.caption)  # no server paths
    (img,) = at.image  # the glyph preview of the selected document, captioned with its heading path
    assert "Backup policy" in img.captions[0] and img.captions[0].startswith("1/")

    at.button(key="admin_reingest").click().run()
    assert "unchanged" in _texts(at.info)

    at.text_input(key="admin_tags_policy.md").input("ops, critical").run()
    at.button(key="admin_save_tags").click().run()
    assert kb.get("policy.md").tags == ["critical", "ops"]
    assert list(at.dataframe[0].value["tags"]) == ["critical, ops"]
    # the new tags reach the index too, so tag-filtered search sees them
    assert {h.doc for h in kb.search("backups", SearchOptions(k=3, tags=["critical"]))} == {"policy.md"}
    assert kb.search("backups", SearchOptions(k=3, tags=["backup"])) == []

    assert at.button(key="admin_delete").disabled  # needs the confirmation first
    at.checkbox(key="admin_confirm_delete_policy.md").check().run()
    at.button(key="admin_delete").click().run()
    assert not at.exception, at.exception
    assert "Deleted" in _texts(at.success)
    assert kb.documents() == []
    assert not Path(rec.source_path).exists()  # the kept upload goes with its document
    assert "No documents yet" in _texts(at.info)
    assert at.metric[0].value == "0"


def test_preview_pages_and_reingest_without_source(kb: KnowledgeBase, tmp_path: Path) -> None:
    src = tmp_path / "notes.md"
    paras = "\n\n".join(f"Paragraph {i}: " + "the retention schedule applies to every system " * 12 for i in range(60))
    src.write_text(f"# Notes\n\n{paras}\n")
    (r,) = kb.ingest([src])
    assert r.status == "ingested" and r.images >= 2, r
    src.unlink()
    at = _signed_in(kb)
    at.session_state["admin_doc"] = "notes.md"
    at.run()
    (img,) = at.image
    assert img.captions[0].startswith(f"1/{r.images} ")
    at.slider(key="admin_preview_notes.md").set_value(2).run()
    (img2,) = at.image
    assert img2.captions[0].startswith(f"2/{r.images} ") and img2.value != img.value
    at.button(key="admin_reingest").click().run()
    assert "no longer kept" in _texts(at.warning) and str(tmp_path) not in _texts(at.warning)
    assert kb.get("notes.md")


def test_unchanged_upload_takes_new_tags_and_results_survive_a_reload(kb: KnowledgeBase) -> None:
    at = _signed_in(kb)
    at.file_uploader[0].set_value([("policy.md", GOOD_MD, "text/markdown")])
    at.run()
    at.button(key="admin_ingest").click().run()
    assert kb.get("policy.md").tags == []
    at.file_uploader[0].set_value([("policy.md", GOOD_MD, "text/markdown")])
    at.text_input(key="admin_upload_tags").input("legal")
    at.run()
    at.button(key="admin_ingest").click().run()
    assert not at.exception, at.exception
    assert "unchanged" in _texts(at.info) and "tags now: legal" in _texts(at.info)
    assert kb.get("policy.md").tags == ["legal"]
    assert {h.doc for h in kb.search("backups", SearchOptions(k=3, tags=["legal"]))} == {"policy.md"}
    # a reload (a new session) still shows the last batch's results
    again = _signed_in(kb)
    assert "tags now: legal" in _texts(again.info) and "Last upload" in _texts(again.caption)


def test_handle_uploads_oversized_and_hostile_names(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.settings = kb.settings.model_copy(update={"max_file_mb": 0.001})  # ~1 KB
    stages: list[tuple[str, str]] = []
    results = handle_uploads(
        kb,
        [("big.md", b"# Big\n\n" + b"word " * 2000), ("../../../evil.md", GOOD_MD), ("ok.txt", b"plain text here")],
        ["t1"],
        on_stage=lambda name, stage: stages.append((name, stage)),
    )
    big, evil, ok = results
    assert big.status == "failed" and "over the 0.001 MB limit" in (big.error or "")
    assert evil.status == "ingested" and ok.status == "ingested", [r.error for r in results]
    assert ("evil.md", "done") in stages and not any(n == "big.md" for n, _ in stages)
    root = uploads_root(kb.settings).resolve()
    rec = kb.get("evil.md")
    assert Path(rec.source_path).parent.parent == root and rec.tags == ["t1"]
    assert not (kb.settings.data_dir.parent / "evil.md").exists() and not (tmp_path.parent / "evil.md").exists()
    assert not list(root.rglob("big.md"))  # refused before anything was written

    # the same file again: unchanged, and the new copy is not kept
    (again,) = handle_uploads(kb, [("evil.md", GOOD_MD)])
    assert again.status == "unchanged"
    assert len(list(root.rglob("evil.md"))) == 1
    # a new version: the document now points at the new copy and the old copy goes
    (changed,) = handle_uploads(kb, [("evil.md", GOOD_MD.replace(b"30 days", b"90 days"))])
    assert changed.status == "ingested"
    (kept,) = root.rglob("evil.md")
    assert str(kept) == kb.get("evil.md").source_path and kept.parent.name != Path(rec.source_path).parent.name


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd.md", "passwd.md"),
        ("..\\..\\win.txt", "win.txt"),
        ("/abs/path/a.pdf", "a.pdf"),
        ("..", "upload~"),
        (".hidden.md", "hidden~"),
        ("na\x00me.md", "name~"),
        ("Résumé 2024.docx", "Résumé-2024~"),
        ("報告.md", "報告.md"),
    ],
)
def test_clean_name(raw: str, safe: str) -> None:
    # the admin page and the API share one rule (kb.names): canonical names kept, others hashed
    name = clean_name(raw)
    assert name == safe if not safe.endswith("~") else name.startswith(safe)
