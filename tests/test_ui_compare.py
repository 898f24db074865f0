"""The Compare page: AppTest on a real render-only store of the example docs (v2 revises v1), and the
page in headless Chromium (Playwright), whose screenshot is the README's."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.test_answer_openai import EXAMPLES
from tests.ui_server import running_ui

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("KB_TEST_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("compare") / "data"
    with KnowledgeBase(Settings(data_dir=data, clip_model="", text_model="")) as kb:
        assert all(r.status == "ingested" for r in kb.ingest([EXAMPLES], index=False))
        kb.set_revises("payments-api-spec-v2.txt", "payments-api-spec-v1.html")
    return data


def _page(data_dir: str) -> None:  # runs as a script
    from kb.service import KnowledgeBase
    from kb.settings import Settings
    from ui.compare import render_compare

    render_compare(KnowledgeBase(Settings(data_dir=data_dir, clip_model="", text_model="")))


def test_compare_page(store: Path) -> None:
    at = AppTest.from_function(_page, args=(str(store),), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="cmp_a").value == "payments-api-spec-v1.html"  # a document and its previous version
    assert at.selectbox(key="cmp_b").value == "payments-api-spec-v2.txt"
    table = at.dataframe[0].value
    assert "7 years → 10 years" in set(table["summary"])
    assert len(at.get("imgs")) == 1 or at.get("image")  # the opened change's two images
    at.multiselect(key="cmp_cats").set_value(["normative"]).run()
    assert set(at.dataframe[0].value["category"]) == {"normative"}
    at.multiselect(key="xc_docs").set_value(["payments-api-spec-v1.html", "payments-api-spec-v2.txt"]).run()
    assert not at.exception, at.exception
    assert any("7 years vs 10 years" in m.value for m in at.markdown)


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="no Chromium (apt-get install chromium)")
def test_compare_in_a_browser(store: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from tests.test_ui_e2e import FLAGS

    env = {"KB_DATA_DIR": str(store), "KB_CLIP_MODEL": "", "KB_TEXT_MODEL": "minilm-bundled"}
    shot = tmp_path / "compare.png"
    with running_ui(env, tmp_path) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{url}/compare", timeout=60_000)
            page.get_by_role("heading", name="Compare").first.wait_for(timeout=90_000)
            page.get_by_text("changed lines marked").first.wait_for(timeout=90_000)
            page.locator('[data-testid="stImage"] img').first.wait_for(state="visible", timeout=30_000)
            time.sleep(1.0)
            page.screenshot(path=str(shot), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    docs_png = ROOT / "docs" / "compare.png"
    if os.environ.get("KB_UPDATE_SCREENSHOTS") or not docs_png.exists():
        docs_png.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, docs_png)


def test_admin_sets_the_previous_version(kb_settings: Settings, shared_embedders: object, tmp_path: Path) -> None:
    from pydantic import SecretStr

    from tests.test_ui_admin import TOKEN, _signed_in

    settings = kb_settings.model_copy(update={"ui_admin_token": SecretStr(TOKEN)})
    with KnowledgeBase(settings, embedders=shared_embedders) as kb:  # type: ignore[arg-type]
        for name in ("payments-api-spec-v1.html", "incident-response-sop.md"):
            shutil.copy(EXAMPLES / name, tmp_path / name)
        assert all(r.status == "ingested" for r in kb.ingest([tmp_path], index=False))
        at = _signed_in(kb)
        at.session_state["admin_doc"] = "incident-response-sop.md"
        at.run()
        at.selectbox(key="admin_revises_incident-response-sop.md").set_value("payments-api-spec-v1.html").run()
        assert not at.exception, at.exception
        assert kb.get("incident-response-sop.md").revises == "payments-api-spec-v1.html"
        at.selectbox(key="admin_revises_incident-response-sop.md").set_value("").run()
        assert kb.get("incident-response-sop.md").revises is None
