"""The Streamlit chat page driven by AppTest: a real store of the example docs, tiny models, an in-test VLM server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.test_answer_openai import MODEL, FakeVlm, free_port
from tests.tiny_models import settings_fields

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "ui" / "app.py")
EXAMPLES = ROOT / "examples" / "docs"
Q = "How fast must POST /payments answer at p99?"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str], shared_embedders: object) -> Path:
    """A data dir with the example documents ingested (once for the module)."""
    data = tmp_path_factory.mktemp("ui") / "data"
    s = Settings(data_dir=data, **settings_fields(model_env))
    with KnowledgeBase(s, embedders=shared_embedders) as kb:  # type: ignore[arg-type]
        results = kb.ingest([EXAMPLES])
    assert all(r.status != "failed" for r in results), results
    return data


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, model_env: dict[str, str], store: Path) -> Iterator[pytest.MonkeyPatch]:
    from ui import state

    for k, v in model_env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("KB_DATA_DIR", str(store))
    monkeypatch.setenv("KB_VLM_RETRIES", "0")
    monkeypatch.setenv("KB_VLM_TIMEOUT", "10")
    monkeypatch.setenv("KB_ANSWER_MIN_RELEVANCE", "0")  # these tests count sources by k
    monkeypatch.delenv("KB_CONFIG", raising=False)
    monkeypatch.chdir(store.parent)  # no stray ./kb.toml
    yield monkeypatch
    state.reset()


@pytest.fixture()
def vlm() -> Iterator[FakeVlm]:
    f = FakeVlm()
    yield f
    f.close()


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question)
    return at.run(timeout=120)


def started() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def images(at: AppTest) -> list[str]:
    return [u for img in at.get("image") for u in getattr(img, "value", [])]


def test_question_answered_with_sources_and_images(env: pytest.MonkeyPatch, vlm: FakeVlm) -> None:
    env.setenv("KB_VLM_BACKEND", "openai")
    env.setenv("KB_VLM_BASE_URL", vlm.url)
    env.setenv("KB_VLM_MODEL", MODEL)
    at = started()
    side = " ".join(str(c.value) for c in at.sidebar.caption)
    assert MODEL in side and "http" not in side  # the model by name, no server address
    assert len(at.sidebar.multiselect[0].options) == 3

    at.sidebar.slider[0].set_value(3)
    ask(at, Q)
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    body = " ".join(m.value for m in at.chat_message[1].markdown)
    assert "The p99 latency is 300 ms " in body and 'class="kb-cite" href="#kb-src-1-1"' in body  # [1] opens [1]
    assert 'id="kb-src-1-1"' in body and 'id="kb-src-1-3"' in body  # each source's panel
    labels = [e.label for e in at.expander]
    assert len(labels) == 3 and labels[0].startswith("[1] ") and labels[2].startswith("[3] ")
    assert len(set(labels)) == 3 and "not cited" in labels[1]
    assert len(images(at)) >= 3  # the glyph images the model saw
    assert any("payments" in c.value.lower() for c in at.code)  # the section text, copyable
    assert not at.error and not at.warning
    (req,) = vlm.requests
    assert sum(c["type"] == "image_url" for c in req["messages"][1]["content"]) == 3

    # a follow-up: searched with the previous question; the model receives the earlier turns, then the new one
    ask(at, "And what does it return on a duplicate request?")
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"] * 2
    sent = vlm.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"] and sent[1]["content"] == Q
    assert sent[-1]["content"][-1]["text"].endswith("duplicate request?")
    assert any("previous question" in c.value for c in at.chat_message[3].caption)
    assert len(at.expander) == 6  # the first answer's sources are still shown


def test_no_vlm_shows_warning_and_sources(env: pytest.MonkeyPatch) -> None:
    env.setenv("KB_VLM_BACKEND", "none")
    at = started()
    ask(at, Q)
    assert not at.exception, at.exception
    (info,) = at.info
    assert "No assistant is set up" in info.value and "most relevant passages" in info.value
    assert "KB_VLM_BASE_URL" not in info.value and any("KB_VLM_BASE_URL" in c.value for c in at.code)  # details
    assert len(at.expander) >= 3 and len(images(at)) >= 3
    assert not at.error and not at.warning


def test_vlm_down_is_an_error_with_the_sources(env: pytest.MonkeyPatch) -> None:
    env.setenv("KB_VLM_BACKEND", "openai")
    env.setenv("KB_VLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    at = started()
    ask(at, Q)
    assert not at.exception, at.exception
    (error,) = at.error
    assert error.value.startswith("The assistant is not available right now") and "try again" in error.value
    assert "127.0.0.1" not in error.value and "VLM" not in error.value  # written for people
    details = [c.value for c in at.code if "cannot reach the VLM server" in c.value]
    assert details and "Next step" in details[0]  # for the administrator, in an expander
    assert len(at.expander) >= 4 and len(images(at)) >= 3  # details + the passages
    assert any("not available" in m.value for m in at.sidebar.markdown)


def test_empty_knowledge_base(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("KB_DATA_DIR", str(tmp_path / "empty"))
    at = started()
    assert any("knowledge base is empty" in i.value and "Admin page" in i.value for i in at.info)
    ask(at, Q)
    assert not at.exception, at.exception
    assert any("knowledge base is empty" in w.value for w in at.warning)
    assert not at.expander


def test_reader_token(env: pytest.MonkeyPatch) -> None:
    env.setenv("KB_UI_READER_TOKEN", "s3cret")
    at = started()
    assert not at.chat_input and at.text_input[0].label == "Reader token"
    at.text_input[0].input("wrong").run()
    assert at.error and not at.chat_input
    at.text_input[0].input("s3cret").run()
    assert at.chat_input and not at.error


def test_sidebar_documents_and_compare(env: pytest.MonkeyPatch, vlm: FakeVlm, store: Path) -> None:
    from kb.answer.prompt import CROSS

    env.setenv("KB_VLM_BACKEND", "openai")
    env.setenv("KB_VLM_BASE_URL", vlm.url)
    marker = CROSS.split("{docs}")[0].strip()[:40]
    spec = sorted(d.doc_id for d in KnowledgeBase(Settings(data_dir=store)).documents() if "payments" in d.doc_id)
    assert len(spec) == 2
    at = started()

    # one document: only its sections, no cross-document instructions
    at.sidebar.multiselect[0].set_value(spec[:1])
    ask(at, "What is the p99 latency?")
    assert not at.exception, at.exception
    titles = {e.label.split(" · ")[0].split(" › ")[0][4:] for e in at.expander}
    assert len(titles) == 1 and marker not in vlm.requests[-1]["messages"][0]["content"]

    # two documents: cross-document mode
    at.sidebar.multiselect[0].set_value(spec)
    ask(at, "What is the p99 latency?")
    assert not at.exception, at.exception
    assert any("Cross-document mode" in c.value for c in at.sidebar.caption)
    assert marker in vlm.requests[-1]["messages"][0]["content"]

    # the compare toggle over all documents
    at.sidebar.multiselect[0].set_value([])
    at.sidebar.toggle[0].set_value(True)
    ask(at, "What is the p99 latency?")
    assert marker in vlm.requests[-1]["messages"][0]["content"]
