"""Render profiles: `kb tune-render` end to end (real tesseract as the judge), the profile applied by the
settings and recorded in manifests, and a profile change detected and re-rendered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.catalog import doc_id_for
from kb.cli import app
from kb.render_profiles import RenderProfile, activate, load_profile_file, save_profile
from kb.service import KnowledgeBase
from kb.settings import RenderConfig, Settings, load_settings
from tests.tiny_models import settings_fields

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"
PROSE = """# Storage guide

## Keeping the archive

The archive keeps every report that the team writes during the year. Reports are grouped by month and
by the name of the team that wrote them, so that a reader can find the one they need without a search.
Old reports are never removed; they are moved to the cold store after a while, where they can still be
read by anyone who has access to the archive.

## Reading a report

A reader opens the archive, picks the month and the team, and reads the summary first. The summary says
what the report covers and whom to ask about it. When the summary is not enough, the full text follows
it, with the tables and figures that the authors chose to include.
"""


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")
def test_tune_render_saves_a_profile_that_ingest_then_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text(PROSE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(
        app, ["tune-render", str(doc), "--budget", "2", "--sections", "1", "--jobs", "1", "--name", "mine"]
    )
    assert res.exit_code == 0, res.output
    assert "configuration(s) on 1 document(s)" in res.output and "Pareto front" in res.output
    prof = load_profile_file(tmp_path / "data" / "render_profiles" / "mine.json")
    assert prof.name == "mine" and prof.judge == "tesseract" and prof.sample == ["guide"]
    assert prof.measured["recall"] >= 0.97 and prof.measured["compression"] > 0
    assert 'render_profile = "mine"' in (tmp_path / "kb.toml").read_text()

    settings = load_settings(tmp_path / "kb.toml")
    assert settings.render == prof.config and settings.render_profile == "mine"
    with KnowledgeBase(settings) as kb:
        [r] = kb.ingest([doc], index=False)
        assert r.status == "ingested", r.error
        rec = kb.get(doc_id_for(doc))
    assert rec.render_profile == "mine" and rec.tokenizer


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")
def test_tune_render_with_a_tiny_time_limit_stops_on_time_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0.01 min: the start is judged (there is always a result), nothing more fits; the start clears the
    bar on plain prose, so it is what is saved."""
    doc = tmp_path / "guide.md"
    doc.write_text(PROSE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(
        app,
        ["tune-render", str(doc), "--budget", "20", "--sections", "1", "--jobs", "1", "--minutes", "0.01",
         "--name", "quick", "--no-activate"],
    )
    assert res.exit_code == 0, res.output
    assert "judged 1 configuration(s)" in res.output and "stopped on time" in res.output
    prof = load_profile_file(tmp_path / "data" / "render_profiles" / "quick.json")
    assert prof.measured["stopped"] == "time" and prof.measured["judged"] == 1
    assert prof.config == RenderConfig() and not (tmp_path / "kb.toml").exists()


def test_activate_keeps_the_rest_of_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "kb.toml"
    cfg.write_text("top_k = 5\n[render]\nfont_size = 10\n")
    activate("a", cfg)
    activate("b", cfg)
    text = cfg.read_text()
    assert text.count("render_profile") == 1 and 'render_profile = "b"' in text
    assert text.index("render_profile") < text.index("[render]") and "font_size = 10" in text


def test_a_missing_profile_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="render profile not found"):
        Settings(data_dir=tmp_path, render_profile="nope")


def test_a_profile_change_is_detected_and_re_rendered(
    tmp_path: Path, model_env: dict[str, str], shared_embedders: object
) -> None:
    data = tmp_path / "data"
    base = Settings(data_dir=data, **settings_fields(model_env))
    save_profile(RenderProfile(name="small", config=RenderConfig(font_size=9)), base)
    save_profile(RenderProfile(name="large", config=RenderConfig(font_size=11)), base)
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    first = sorted(docs.iterdir())[0]

    small = Settings(data_dir=data, render_profile="small", **settings_fields(model_env))
    with KnowledgeBase(small, embedders=shared_embedders) as kb:  # type: ignore[arg-type]
        assert kb.ingest([first])[0].status == "ingested"
        before = kb.get(doc_id_for(first))
        assert before.render_profile == "small" and kb.stale_renders() == []

    large = Settings(data_dir=data, render_profile="large", **settings_fields(model_env))
    assert large.render.font_size == 11
    with KnowledgeBase(large, embedders=shared_embedders) as kb:  # type: ignore[arg-type]
        assert [d.doc_id for d in kb.stale_renders()] == [before.doc_id]
        kb.reindex()
        results, gone = kb.rerender()
        assert [r.status for r in results] == ["ingested"] and gone == []
        after = kb.get(doc_id_for(first))
        assert after.render_profile == "large" and after.render_fingerprint != before.render_fingerprint
        assert set(after.image_keys).isdisjoint(before.image_keys)
        assert kb.stale_renders() == []
        assert kb.search("release").__len__() > 0


def test_the_configured_vlm_is_the_judge_when_there_is_one(tmp_path: Path) -> None:
    """Plumbing with a tiny random-weight Qwen2-VL loaded like a real one: the judge sends the glyph image to
    the answer backend and returns its transcription (random weights: any text, but text)."""
    pytest.importorskip("transformers")
    from ingest.render import GlyphRenderer
    from kb.cli.tune import pick_judge
    from kb.types import Block, Section
    from tests.tiny_vlm import build_tiny_qwen2_vl

    vlm = build_tiny_qwen2_vl(tmp_path / "vlm")
    plain = Settings(data_dir=tmp_path / "data")
    assert pick_judge(plain, "auto")[0] == "tesseract"
    with pytest.raises(Exception, match="needs a VLM"):
        pick_judge(plain, "vlm")
    settings = Settings(
        data_dir=tmp_path / "data",
        vlm_backend="transformers",
        vlm_model=str(vlm),
        vlm_device="cpu",
        vlm_max_new_tokens=4,
    )
    name, judge = pick_judge(settings, "auto")
    assert name == f"vlm:{vlm}"
    sec = Section("d", 0, ("Guide",), (Block("paragraph", "Read /etc/kb.toml first."),))
    image = GlyphRenderer(settings.render).render(sec, "Guide")
    assert isinstance(judge(image, sec.text), str)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")
def test_tune_render_prints_file_names_and_errors_as_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Brackets in a file name or an error are text, not rich markup (rich swallowed "[b]" and stopped the run
    on a stray closing tag)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide [b].md").write_text(PROSE)
    (docs / "bad[i].pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(
        app,
        ["tune-render", str(docs), "--budget", "1", "--sections", "1", "--jobs", "1", "--minutes", "0.01",
         "--name", "quick", "--no-activate"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "parsing 1/2: bad[i].pdf" in res.output and "skipped bad[i].pdf:" in res.output
    assert "parsing 2/2: guide [b].md" in res.output
