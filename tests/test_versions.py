"""Versions: `kb ingest --revises`, families by title, and version-aware answering through the one
prepare_answer path, checked on what a VLM stand-in (a real HTTP server) is sent."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app
from kb.compare.versions import families, family_key
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.test_answer_openai import EXAMPLES, MODEL, FakeVlm

UNRELATED = """# Coffee machine cleaning

Descale the coffee machine every 30 days. Use 500 ml of descaling solution and rinse twice.
"""


@pytest.fixture()
def vlm() -> Iterator[FakeVlm]:
    f = FakeVlm()
    yield f
    f.close()


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_env: dict[str, str], vlm: FakeVlm) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("payments-api-spec-v1.html", "incident-response-sop.md"):
        shutil.copy(EXAMPLES / name, docs / name)
    # the newer version under a name that says nothing of versions: the link comes from --revises
    shutil.copy(EXAMPLES / "payments-api-spec-v2.txt", docs / "payments-next.txt")
    (docs / "coffee.md").write_text(UNRELATED)
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    for k, v in model_env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("KB_VLM_BACKEND", "openai")
    monkeypatch.setenv("KB_VLM_RETRIES", "0")
    monkeypatch.setenv("KB_VLM_BASE_URL", vlm.url)
    monkeypatch.setenv("KB_VLM_MODEL", MODEL)
    runner = CliRunner()
    for f in ("payments-api-spec-v1.html", "incident-response-sop.md", "coffee.md"):
        assert runner.invoke(app, ["ingest", str(docs / f)]).exit_code == 0
    res = runner.invoke(app, ["ingest", str(docs / "payments-next.txt"), "--revises", "payments-api-spec-v1.html"])
    assert res.exit_code == 0, res.output
    assert "payments-next.txt revises payments-api-spec-v1.html" in res.output
    return docs


def sent(vlm: FakeVlm) -> tuple[str, list[str], int]:
    """(system prompt, text parts of the user message, number of images) of the last request."""
    msgs = vlm.requests[-1]["messages"]
    user = msgs[1]["content"]
    texts = [p["text"] for p in user if p["type"] == "text"]
    return msgs[0]["content"], texts, sum(p["type"] == "image_url" for p in user)


def test_newest_version_first_and_the_prompt_says_they_differ(env: Path, vlm: FakeVlm) -> None:
    res = CliRunner().invoke(app, ["ask", "What is the p99 latency of POST /payments?", "--json", "--no-stream"])
    assert res.exit_code == 0, res.output
    system, texts, _ = sent(vlm)
    labels = [t for t in texts if t.startswith("[")]
    assert "Payments API Specification v2" in labels[0]  # the newer version first
    v1 = next(t for t in labels if "Payments API Specification v1" in t)
    n_v1 = v1.split("]")[0] + "]"
    assert "newest version" in system and "payments-next.txt" in system
    assert f"source {n_v1} (payments-api-spec-v1.html, older version) differs" in system
    assert "MUST → SHOULD" in system or "200 → 500" in system
    notes = json.loads(res.stdout)["notes"]
    assert any("newest version payments-next.txt" in n for n in notes)


def test_what_changed_sends_the_diff_and_nothing_unrelated(env: Path, vlm: FakeVlm) -> None:
    res = CliRunner().invoke(
        app, ["ask", "What changed between v1 and v2 of the payments API?", "--json", "--no-stream"]
    )
    assert res.exit_code == 0, res.output
    system, texts, images = sent(vlm)
    labels = [t for t in texts if t.startswith("[")]
    assert labels and all("Payments API Specification" in t for t in labels), labels  # no SOP, no coffee
    assert images == len(labels) >= 2
    assert any("v1" in t for t in labels) and any("v2" in t for t in labels)  # both sides' images
    assert "what changed between two versions" in system
    assert "MUST → SHOULD" in system and "7 years" in system and "10 years" in system
    assert "section only in the older version" in system and "Deletion" in system  # the removed requirement
    assert "One part per document" not in system


def test_families_by_title_and_by_link(env: Path) -> None:
    kb = KnowledgeBase(Settings())
    fams = families(kb.catalog)
    fam = fams["payments-next.txt"]
    assert fam.docs == ["payments-api-spec-v1.html", "payments-next.txt"] and fam.latest == "payments-next.txt"
    assert "coffee.md" not in fams and "incident-response-sop.md" not in fams
    assert family_key("Payments API Specification v2") == family_key("Payments API specification, version 1.0")


def test_revises_errors(env: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(env / "coffee.md"), "--revises", "no-such-doc"])
    assert res.exit_code == 2 and "no document 'no-such-doc'" in res.output
    res = runner.invoke(app, ["ingest", str(env), "--revises", "coffee.md"])
    assert res.exit_code == 2 and "--revises takes one file" in res.output
