"""The answer-backend registry: built-ins by name, a backend added from outside by name or dotted path,
the base API (load, close, ready, last_usage, for_request) and clear errors for bad names."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.answer import backend
from kb.answer.backend import AnswerBackend, make_answerer, resolve
from kb.answer.prepare import PreparedAnswer
from kb.answer.prompt import build_prompt
from kb.answer.run import AnswerStream, generate
from kb.answer.types import Prompt
from kb.errors import ConfigError, VlmUnavailableError
from kb.settings import Settings
from tests.test_answer_openai import FakeVlm, free_port
from tests.test_prompt import make_hit


class QuoteFirstLines(AnswerBackend):
    """A backend from outside the package: answers with the first line of each text source, cited."""

    backend = "quote"

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self.loads = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> QuoteFirstLines:
        return cls(settings.vlm_model)

    def load(self) -> None:
        self.loads += 1

    def generate(self, prompt: Prompt) -> str:
        lines = [f"{(s.text or '').splitlines()[0]} [{s.n}]" for s in prompt.sources]
        self.last_usage = {"completion_tokens": sum(len(x.split()) for x in lines)}
        return " ".join(lines)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_REGISTRY", dict(backend._REGISTRY))


def prepared(tmp: Path, s: Settings) -> PreparedAnswer:
    hits = [make_hit(tmp, i, text=f"fact number {i}\nmore") for i in (1, 2)]
    return PreparedAnswer("What are the facts?", hits, build_prompt("What are the facts?", hits, s, mode="text"))


def test_builtins_are_registered_and_none_means_off(tmp_path: Path) -> None:
    assert {"openai", "transformers"} <= set(backend.names())
    assert make_answerer(Settings(data_dir=tmp_path, vlm_backend="none")) is None
    assert resolve("OpenAI").backend == "openai"  # names are case-insensitive


@pytest.mark.usefixtures("registry")
def test_a_backend_registered_from_outside_answers_by_name_and_by_path(tmp_path: Path) -> None:
    backend.register("quote", QuoteFirstLines)
    for name in ("quote", "tests.test_answer_backend:QuoteFirstLines", "tests.test_answer_backend.QuoteFirstLines"):
        s = Settings(data_dir=tmp_path, vlm_backend=name, vlm_model="q-1")
        a = make_answerer(s)
        # (by path the module may load again under its package name: compare by name, not identity)
        assert a is not None and type(a).__name__ == "QuoteFirstLines" and a.model == "q-1"
        answer = generate(prepared(tmp_path, s), a, s)
        assert answer.text == "fact number 1 [1] fact number 2 [2]"
        assert answer.backend == "quote" and answer.model == "q-1"
        assert [c.cited for c in answer.citations] == [True, True]
        assert answer.usage.completion_tokens == 8  # read from last_usage through the base API
    # the default stream() yields the whole answer once, through the same AnswerStream the front ends use
    stream = AnswerStream(prepared(tmp_path, s), QuoteFirstLines("q"), s)
    assert list(stream) == ["fact number 1 [1] fact number 2 [2]"] and stream.answer is not None


def test_for_request_shares_the_backend_but_not_its_usage() -> None:
    shared = QuoteFirstLines("q")
    shared.last_usage = {"completion_tokens": 3}
    one, two = shared.for_request(), shared.for_request()
    assert one.last_usage == {} and one.model == "q" and one is not shared
    one.last_usage["completion_tokens"] = 9
    assert two.last_usage == {} and shared.last_usage == {"completion_tokens": 3}
    assert shared.ready().ok  # the default: ready


def test_bad_backend_names_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown answer backend 'opnai'") as e:
        make_answerer(Settings(data_dir=tmp_path, vlm_backend="opnai"))
    assert "openai" in e.value.hint and "transformers" in e.value.hint
    with pytest.raises(VlmUnavailableError, match="not available"):
        resolve("no_such_package.module:Backend")
    with pytest.raises(ConfigError, match="not an AnswerBackend"):
        resolve("kb.settings:Settings")
    with pytest.raises(ValueError):
        backend.register("none", QuoteFirstLines)


def test_openai_readiness_asks_the_server(tmp_path: Path) -> None:
    def made(url: str) -> AnswerBackend:
        a = make_answerer(Settings(data_dir=tmp_path, vlm_backend="openai", vlm_base_url=url, vlm_model="m"))
        assert a is not None
        return a

    down = made(f"http://127.0.0.1:{free_port()}/v1")
    r = down.ready()
    assert not r.ok and "not reachable" in r.detail
    down.close()
    fake = FakeVlm()
    try:
        up = made(fake.url)
        assert up.ready().ok
        up.close()
    finally:
        fake.close()


def test_transformers_is_ready_before_loading(tmp_path: Path) -> None:
    a = make_answerer(Settings(data_dir=tmp_path, vlm_backend="transformers", vlm_model=str(tmp_path / "m")))
    assert a is not None and a.ready().ok and "first use" in a.ready().detail
