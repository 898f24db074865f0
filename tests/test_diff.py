"""`kb diff`: sections aligned across renumbering, moves and formats; changes at the level of
sentences, list items and table rows; format-only differences ignored; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from kb.catalog import DocumentRecord
from kb.cli import app
from kb.compare.diff import DiffResult, diff_views
from kb.compare.report import compare, write_report
from kb.compare.units import doc_view
from kb.service import KnowledgeBase
from kb.settings import Settings

INTRO = "This specification describes the payments service and the limits that apply to its clients."
ALPHA = (
    "Every client MUST authenticate with a bearer token. Tokens expire after 3600 seconds and are refreshed "
    "by the client before they expire."
)
BETA = "Requests are retried at most 3 times. The retry delay doubles after each failed attempt, up to 30 s."
GAMMA = "Payments are kept for seven years. After that they are deleted by the nightly job."
TABLE = "| endpoint | timeout |\n|---|---|\n| POST /payments | 30 s |\n| GET /payments | 10 s |\n"
LIST = "The service stores:\n\n- the payer account\n- the payee account\n- the amount and currency\n"


def md(*sections: tuple[str, str]) -> str:
    out = ["# Payments API", "", INTRO, ""]
    for title, body in sections:
        out += [f"## {title}", "", body, ""]
    return "\n".join(out)


BASE = md(
    ("1. Authentication", ALPHA),
    ("2. Retries", BETA),
    ("3. Retention", GAMMA),
    ("4. Timeouts", TABLE),
    ("5. Stored data", LIST),
)

VARIANTS = {
    "base.md": BASE,
    "renumbered.md": md(
        ("2. Authentication", ALPHA),
        ("3. Retries", BETA),
        ("4. Retention", GAMMA),
        ("5. Timeouts", TABLE),
        ("6. Stored data", LIST),
    ),
    "moved.md": md(
        ("1. Authentication", ALPHA),
        ("2. Retention", GAMMA),
        ("3. Timeouts", TABLE),
        ("4. Stored data", LIST),
        ("5. Retries", BETA),
    ),
    "added_removed.md": md(
        ("1. Authentication", ALPHA),
        ("2. Retries", BETA),
        ("4. Timeouts", TABLE),
        ("5. Stored data", LIST),
        ("6. Webhooks", "Webhooks are signed with HMAC-SHA256 and delivered within one minute."),
    ),
    "cell.md": BASE.replace("| POST /payments | 30 s |", "| POST /payments | 60 s |"),
    "should.md": BASE.replace("Every client MUST authenticate", "Every client SHOULD authenticate"),
    "unit.md": BASE.replace("up to 30 s.", "up to 30 ms."),
    "item.md": BASE.replace("- the payee account\n", ""),
    "wrapped.md": BASE.replace(
        "Tokens expire after 3600 seconds and are refreshed by",
        "*Tokens* expire after\n**3600** seconds and are\nrefreshed by",
    ),
    "heading_only.md": "# Nothing here yet\n",
    "chapter.md": f"# 3. Retries\n\n{BETA.replace('at most 3 times', 'at most 5 times')}\n\n# 4. Retention\n\n{GAMMA}\n",
}

HTML = (
    "<html><head><title>Payments API</title></head><body><h1>Payments API</h1>"
    f"<p>{INTRO}</p><h2>1. Authentication</h2><p>{ALPHA.replace('3600', '<b>3600</b>')}</p>"
    f"<h2>2. Retries</h2><p>{BETA}</p><h2>3. Retention</h2><p>{GAMMA}</p>"
    "<h2>4. Timeouts</h2><table><tr><th>endpoint</th><th>timeout</th></tr>"
    "<tr><td>POST /payments</td><td>30 s</td></tr><tr><td>GET /payments</td><td>10 s</td></tr></table>"
    "<h2>5. Stored data</h2><p>The service stores:</p><ul><li>the payer account</li><li>the payee account</li>"
    "<li>the amount and currency</li></ul></body></html>"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[KnowledgeBase, Path]:
    root = tmp_path_factory.mktemp("diff")
    src = root / "src"
    src.mkdir()
    for name, text in VARIANTS.items():
        (src / name).write_text(text, encoding="utf-8")
    (src / "base.html").write_text(HTML, encoding="utf-8")
    settings = Settings(data_dir=root / "data", clip_model="", text_model="minilm-bundled")
    kb = KnowledgeBase(settings)
    results = kb.ingest([src], index=False)
    assert all(r.status == "ingested" for r in results), [(r.path.name, r.error) for r in results]
    return kb, src


def run(kb: KnowledgeBase, a: str, b: str) -> DiffResult:
    return compare(kb.get(a), kb.get(b)).result


def test_renumbered_sections_are_no_change(store: tuple[KnowledgeBase, Path]) -> None:
    r = run(store[0], "base.md", "renumbered.md")
    assert r.changes == [] and r.only_in_a == [] and r.only_in_b == []


def test_moved_section_is_one_move(store: tuple[KnowledgeBase, Path]) -> None:
    r = run(store[0], "base.md", "moved.md")
    assert [c.kind for c in r.changes] == ["moved"], [c.to_json() for c in r.changes]
    assert "Retries" in r.changes[0].section_a and "Retries" in r.changes[0].section_b


def test_added_and_removed_sections_are_listed_apart(store: tuple[KnowledgeBase, Path]) -> None:
    r = run(store[0], "base.md", "added_removed.md")
    assert r.changes == []
    assert [s.section.split(" › ")[-1] for s in r.only_in_a] == ["3. Retention"]
    assert [s.section.split(" › ")[-1] for s in r.only_in_b] == ["6. Webhooks"]


def test_changed_table_cell(store: tuple[KnowledgeBase, Path]) -> None:
    (c,) = run(store[0], "base.md", "cell.md").changes
    assert (c.kind, c.category) == ("changed", "value")
    assert "30" in c.text_a and "60" in c.text_b and "GET" not in c.text_a
    assert c.summary == "30 s → 60 s"


def test_must_to_should_is_normative(store: tuple[KnowledgeBase, Path]) -> None:
    (c,) = run(store[0], "base.md", "should.md").changes
    assert (c.kind, c.category, c.summary) == ("changed", "normative", "MUST → SHOULD")
    assert c.text_a.startswith("Every client MUST") and "Tokens expire" not in c.text_a  # the sentence only


def test_number_with_unit_changed(store: tuple[KnowledgeBase, Path]) -> None:
    (c,) = run(store[0], "base.md", "unit.md").changes
    assert (c.kind, c.category, c.summary) == ("changed", "value", "30 s → 30 ms")
    assert c.text_a.endswith("up to 30 s.") and c.text_b.endswith("up to 30 ms.")


def test_removed_list_item(store: tuple[KnowledgeBase, Path]) -> None:
    (c,) = run(store[0], "base.md", "item.md").changes
    assert (c.kind, c.text_a, c.text_b) == ("removed", "the payee account", "")
    assert c.summary == "list item removed: the payee account"
    assert "Stored data" in c.section_a and "Stored data" in c.section_b


def test_format_only_differences_are_no_change(store: tuple[KnowledgeBase, Path]) -> None:
    kb = store[0]
    assert run(kb, "base.md", "wrapped.md").changes == []  # emphasis and line wrapping
    r = run(kb, "base.html", "base.md")  # the same document in two formats
    assert r.changes == [] and r.only_in_a == [] and r.only_in_b == [], r.to_json()


def test_document_against_itself(store: tuple[KnowledgeBase, Path]) -> None:
    r = run(store[0], "base.md", "base.md")
    assert r.changes == [] and r.only_in_a == [] and r.only_in_b == []


def test_empty_documents(store: tuple[KnowledgeBase, Path]) -> None:
    kb = store[0]
    r = run(kb, "heading_only.md", "base.md")
    assert r.changes == [] and [s.section for s in r.only_in_a] == ["Nothing here yet"] and len(r.only_in_b) >= 5
    base = kb.get("base.md")
    empty = DocumentRecord.model_validate({**base.model_dump(), "doc_id": "empty", "sections": []})
    r = diff_views(doc_view(empty), doc_view(base))
    assert r.changes == [] and len(r.only_in_b) >= 5
    assert diff_views(doc_view(empty), doc_view(empty)).to_json()["changes"] == []


def test_report_marks_the_changed_lines(store: tuple[KnowledgeBase, Path], tmp_path: Path) -> None:
    kb = store[0]
    cmp = compare(kb.get("base.md"), kb.get("unit.md"))
    out = write_report(cmp, tmp_path / "report.md", kb.images.open_rgb)
    text = out.read_text()
    assert "30 s → 30 ms" in text and "report_files/change-001.png" in text
    img = Image.open(tmp_path / "report_files" / "change-001.png").convert("RGB")
    w = img.width // 2
    yellow = [
        sum(1 for x in range(x0, x0 + w - 6, 2) for y in range(0, img.height, 2) if _marked(img.getpixel((x, y))))
        for x0 in (0, w + 6)
    ]
    assert all(n > 50 for n in yellow), yellow  # both sides carry marked lines
    html = write_report(cmp, tmp_path / "report.html", kb.images.open_rgb).read_text()
    assert "data:image/png;base64," in html and "30 s → 30 ms" in html


def _marked(px: object) -> bool:
    r, g, b = px  # type: ignore[misc]
    return r > 200 and g > 180 and b < 150


def test_cli_diff_json_table_and_errors(store: tuple[KnowledgeBase, Path], tmp_path: Path) -> None:
    kb, src = store
    env = {"KB_DATA_DIR": str(kb.settings.data_dir), "KB_CLIP_MODEL": "", "KB_TEXT_MODEL": "minilm-bundled"}
    runner = CliRunner()
    res = runner.invoke(app, ["diff", "base.md", str(src / "should.md"), "--json"], env=env)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data) == {"a", "b", "changes", "only_in_a", "only_in_b"}
    (c,) = data["changes"]
    assert set(c) == {"kind", "section_a", "section_b", "pages_a", "pages_b", "text_a", "text_b", "summary", "category"}
    res = runner.invoke(app, ["diff", "base.md", "item.md"], env=env)
    assert res.exit_code == 0 and "base.md → item.md: 1 change(s)" in res.output  # the table
    res = runner.invoke(app, ["diff", "base.md", "base.md"], env=env)
    assert res.exit_code == 0 and "No changes" in res.output
    res = runner.invoke(app, ["diff", "base.md", "no-such-doc"], env=env)
    assert res.exit_code == 2 and "nodocumentorfile'no-such-doc'" in "".join(res.output.split())
    fresh = tmp_path / "fresh.md"
    fresh.write_text(BASE)
    res = runner.invoke(app, ["diff", "base.md", str(fresh)], env=env)
    flat = "".join(res.output.split())  # error lines wrap at the terminal width
    assert res.exit_code == 2 and "isnotingestedyet" in flat and f"kbingest{fresh}" in flat


def test_eval_crosscheck_scores_planted_changes(store: tuple[KnowledgeBase, Path], tmp_path: Path) -> None:
    _, src = store
    truth = {
        "v1": {"doc": "base.html"},
        "v2": {"doc": "should.md"},
        "changes": [
            {"id": "x1", "v1_text": "Every client MUST authenticate", "v2_text": "Every client SHOULD authenticate"},
            {"id": "x2", "v1_text": "the payee account", "v2_text": ""},
        ],
    }
    f = tmp_path / "pair.json"
    f.write_text(json.dumps(truth))
    out = tmp_path / "res.json"
    env = {"KB_DATA_DIR": str(tmp_path / "unused"), "KB_CLIP_MODEL": "", "KB_TEXT_MODEL": "minilm-bundled"}
    res = CliRunner().invoke(app, ["eval", "--crosscheck", str(f), "--docs", str(src), "--json", str(out)], env=env)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert (data["found"], data["planted"], data["false_positives"]) == (1, 2, 0)
    assert data["pairs"][0]["missed_ids"] == ["x2"]


def test_one_chapter_against_the_whole_document(store: tuple[KnowledgeBase, Path]) -> None:
    r = run(store[0], "base.md", "chapter.md")
    assert [(c.kind, c.summary) for c in r.changes] == [("changed", "3 times → 5 times")]
    assert "Retries" in r.changes[0].section_a and "Retries" in r.changes[0].section_b
    assert {s.section.split(" › ")[-1] for s in r.only_in_a} >= {"1. Authentication", "4. Timeouts", "5. Stored data"}
    assert r.only_in_b == []
