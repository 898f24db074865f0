"""End to end: `kb ui` serves the real app on 127.0.0.1; headless Chromium (Playwright) asks a question and sees
the streamed answer and a source's glyph image. Skips when Playwright or the system Chromium is missing.

Needs: pip `playwright` (the Python package only; no `playwright install`) and Debian `chromium`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.test_answer_openai import MODEL, FakeVlm
from tests.tiny_models import settings_fields
from tests.ui_server import running_ui

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "docs"
CHROMIUM = Path(os.environ.get("KB_TEST_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER = "POST /payments must answer within 200 ms at p99 in v1 [1], relaxed to 500 ms in v2 [2]."

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture()
def server(
    tmp_path: Path, model_env: dict[str, str], shared_embedders: object, vlm: FakeVlm
) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    s = Settings(data_dir=data, **settings_fields(model_env))
    with KnowledgeBase(s, embedders=shared_embedders) as kb:  # type: ignore[arg-type]
        kb.ingest([EXAMPLES])
    env = {
        **model_env,
        "KB_DATA_DIR": str(data),
        "KB_VLM_BACKEND": "openai",
        "KB_VLM_BASE_URL": vlm.url,
        "KB_VLM_MODEL": MODEL,
        "KB_VLM_RETRIES": "0",
        "KB_TOP_K": "4",
        # tiny random-weight models score arbitrarily: keep every hit so the page shows several sources
        "KB_ANSWER_MIN_RELEVANCE": "0",
    }
    with running_ui(env, tmp_path, start_s=60) as url:
        yield url, tmp_path


@pytest.fixture()
def vlm() -> Iterator[FakeVlm]:
    f = FakeVlm()
    f.reply = f.answer_with(ANSWER)
    yield f
    f.close()


def test_chat_in_a_browser(server: tuple[str, Path], vlm: FakeVlm) -> None:
    url, tmp = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(url, timeout=60_000)
            box = page.get_by_placeholder("Ask a question about your documents")
            box.wait_for(timeout=60_000)
            box.fill("How fast must POST /payments answer at p99?")
            box.press("Enter")
            page.get_by_text("relaxed to 500 ms in v2").first.wait_for(timeout=90_000)
            expanders = page.locator('[data-testid="stExpander"]')
            expanders.first.wait_for(timeout=30_000)
            expanders.nth(1).wait_for(timeout=30_000)  # the sources appear one by one: wait for the second
            assert expanders.count() >= 2
            expanders.first.locator("summary").click()
            img = expanders.first.locator('[data-testid="stImage"] img, img').first
            img.wait_for(state="visible", timeout=30_000)
            assert page.evaluate("(el) => el.naturalWidth > 0", img.element_handle())
            shot = tmp / "chat.png"
            page.screenshot(path=str(shot), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0
            # the Admin page is one click away and renders (its own tests cover what it does)
            page.get_by_role("link", name="Admin").click()
            page.wait_for_url("**/admin", timeout=30_000)
            page.get_by_role("heading", name="Admin").first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp / "admin.png"), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert vlm.requests and vlm.requests[0]["model"] == MODEL
    docs_png = ROOT / "docs" / "chat.png"
    if os.environ.get("KB_UPDATE_SCREENSHOTS") or not docs_png.exists():
        docs_png.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, docs_png)
