"""The fast lane (kb/cli/_fast.py): `kb --help`, bare `kb` and `kb docs` on the standard library alone, with
exactly the output of the full typer path, and the full path wherever the lane cannot be sure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import _fast, app
from kb.cli._table import Col, fit_table, use_color

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "docs"
FRAMEWORKS = {"typer", "click", "rich", "pydantic", "pydantic_settings", "pydantic_core"}
IDS = ("incident-response-sop.md", "payments-api-spec-v1.html", "payments-api-spec-v2.txt")
_PROBE = """
import json, sys
sys.argv = ["kb", *sys.argv[1:]]
from kb.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
print("MODULES=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
sys.exit(code)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("kb_") and k != "COLUMNS"}
    env["PYTHONPATH"] = str(REPO)  # this checkout's code, whatever the venv's editable install points at
    return {**env, **extra}


def _kb(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kb.cli", *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The examples ingested with the bundled text model (one tagged), indexed as a user would."""
    data = tmp_path_factory.mktemp("faststore") / "kb_data"
    mp = pytest.MonkeyPatch()
    for k in [k for k in os.environ if k.lower().startswith("kb_")]:
        mp.delenv(k)
    mp.setenv("KB_DATA_DIR", str(data))
    mp.setenv("KB_TEXT_MODEL", "minilm-bundled")
    mp.setenv("KB_CLIP_MODEL", "")
    res = runner.invoke(app, ["ingest", str(EXAMPLES / IDS[0]), "--tag", "ops", "--tag", "runbook"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["ingest", str(EXAMPLES)])
    assert res.exit_code == 0, res.output
    yield data
    mp.undo()


@pytest.fixture()
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No KB_* settings and a working folder without kb.toml."""
    for k in [k for k in os.environ if k.lower().startswith("kb_")]:
        monkeypatch.delenv(k)
    monkeypatch.delenv("NO_COLOR", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _both(args: list[str], capsys: pytest.CaptureFixture[str], columns: str = "80") -> tuple[str, str]:
    """(fast lane, full path) stdout of `kb ARGS`, in this process; the lane must have answered."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = columns
    try:
        capsys.readouterr()
        assert _fast.handle(args), f"the fast lane stepped aside for {args}"
        fast = capsys.readouterr().out
    finally:
        os.environ.pop("COLUMNS")
        if old is not None:
            os.environ["COLUMNS"] = old
    full = runner.invoke(app, args, env={"COLUMNS": columns})
    assert full.exit_code == 0, full.output
    return fast, full.stdout


# -- help -------------------------------------------------------------------------------------------------


def test_help_snapshot_is_the_live_help() -> None:
    snapshot = (REPO / "kb" / "cli" / _fast.HELP_FILE).read_text(encoding="utf-8")
    for columns in (80, 200):  # click renders the same text at any width >= 80
        assert _fast.live_help(columns) == snapshot, (
            "kb/cli/help.txt is not the live `kb --help`: regenerate it with `python -m kb.cli._fast --write-help`"
        )


def test_help_and_bare_kb_read_as_the_full_path(tmp_path: Path) -> None:
    for columns in ("80", "132", "60"):  # at 60 the lane steps aside and click wraps
        fast = _kb(["--help"], tmp_path, COLUMNS=columns)
        full = _kb(["--help"], tmp_path, COLUMNS=columns, KB_FAST_LANE="0")
        assert fast.returncode == full.returncode == 0
        assert fast.stdout == full.stdout and fast.stdout.startswith("Usage: python -m kb.cli [OPTIONS]"), columns
    fast, full = _kb([], tmp_path, COLUMNS="100"), _kb([], tmp_path, COLUMNS="100", KB_FAST_LANE="0")
    assert fast.returncode == full.returncode == 2  # typer's no_args_is_help: help on stderr, status 2
    assert fast.stderr == full.stderr and "Commands:" in fast.stderr and fast.stdout == full.stdout == ""


def test_program_name_as_click_detects_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.utils import _detect_program_name

    for argv0, package in (("/venv/bin/kb", None), ("/r/kb/cli/__main__.py", "kb.cli"), ("/r/kb/cli/x.py", "kb.cli")):
        monkeypatch.setattr(sys, "argv", [argv0])
        main = types.ModuleType("__main__")
        main.__package__ = package
        monkeypatch.setitem(sys.modules, "__main__", main)
        assert _fast.prog_name() == _detect_program_name(), argv0


def test_help_steps_aside_where_click_would_wrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "79")
    assert not _fast.handle(["--help"])
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setattr(sys, "argv", ["/bin/" + "k" * 60])  # a usage line click would wrap
    assert not _fast.handle(["--help"])
    for args in (["--help", "docs"], ["docs", "--help"], ["docs", "--json", "--json"], ["search", "x"]):
        assert not _fast.handle(args), args


# -- kb docs ------------------------------------------------------------------------------------------------


def test_docs_fast_lane_is_the_full_path(
    store: Path, clean: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(store))
    monkeypatch.setenv("KB_TEXT_MODEL", "minilm-bundled")  # settings the lane knows cannot change `kb docs`
    monkeypatch.setenv("KB_CLIP_MODEL", "")
    for columns in ("40", "60", "80", "200"):
        fast, full = _both(["docs"], capsys, columns)
        assert fast == full, columns
        for doc_id in IDS:  # ids whole at every width
            assert any(doc_id in line for line in fast.splitlines()), (columns, fast)
        assert "…" not in fast
        table = [x for x in fast.splitlines() if x[:1] in "┏┃┡│└"]
        assert all(len(x) <= int(columns) for x in table), fast  # the table fits
    assert "not shown" in _both(["docs"], capsys, "60")[0]
    wide = _both(["docs"], capsys, "200")[0]
    assert "ops,runbook" in wide and "whole corpus" in wide and "28 px patches" in wide
    fast, full = _both(["docs", "--json"], capsys)
    assert fast == full
    rows = json.loads(fast)
    assert [r["doc"] for r in rows] == list(IDS) and rows[0]["tags"] == ["ops", "runbook"]


def test_docs_empty_store_and_config_file(
    store: Path, clean: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fast, full = _both(["docs"], capsys)  # ./kb_data does not exist
    assert fast == full == "No documents in kb_data. Add some with: kb ingest PATH\n"
    assert _both(["docs", "--json"], capsys) == ("[]\n", "[]\n")
    (clean / "kb.toml").write_text(f'data_dir = "{store}"\ntext_model = "minilm-bundled"\n')
    fast, full = _both(["docs"], capsys, "120")
    assert fast == full and IDS[1] in fast
    monkeypatch.setenv("kb_data_dir", str(clean / "elsewhere"))  # env beats kb.toml, names case-insensitive
    fast, full = _both(["docs"], capsys)
    assert fast == full and "elsewhere" in fast
    monkeypatch.delenv("kb_data_dir")
    monkeypatch.setenv("HOME", str(store.parent))
    monkeypatch.setenv("KB_DATA_DIR", "~/kb_data")  # ~ expanded as the settings do
    fast, full = _both(["docs"], capsys)
    assert fast == full and IDS[0] in fast and "~" not in fast


def test_docs_steps_aside_for_what_it_does_not_read(
    store: Path, clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(store))
    assert _fast.handle(["docs", "--json"]) is True
    aside = {
        "KB_CONFIG": str(clean / "kb.toml"),
        "KB_SERVER_URL": "http://127.0.0.1:9",
        "KB_IMAGE_STORE_URL": "s3://bucket/prefix",
        "KB_TOP_K": "0",  # invalid: the full path says so
        "KB_RENDER__FONT_SIZE": "9",
        "KB_RENDER_PROFILE": "mine",
    }
    for name, value in aside.items():
        with monkeypatch.context() as mp:
            mp.setenv(name, value)
            assert _fast.handle(["docs"]) is False, name
    for toml in ('data_dir = "x"\n[render]\nfont_size = 9\n', "top_k = 3\n", 'data_dir = "x', "data_dir = 3\n"):
        (clean / "kb.toml").write_text(toml)
        assert _fast.handle(["docs"]) is False, toml
    (clean / "kb.toml").unlink()
    res = runner.invoke(app, ["docs"], env={"KB_TOP_K": "0"})
    assert res.exit_code == 2 and "invalid settings" in res.output  # what the lane leaves to the full path
    with monkeypatch.context() as mp:  # a local image store given as a path or file:// URL stays in the lane
        mp.setenv("KB_IMAGE_STORE_URL", f"file://{store / 'images'}")
        assert _fast.handle(["docs", "--json"]) is True


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(schema_version=2),
        lambda m: m.update(file_bytes="12"),  # pydantic would coerce it; the lane leaves that to pydantic
        lambda m: m.pop("render_fingerprint"),
        lambda m: m["sections"][0].update(text_tokens=1.5),
        lambda m: m["sections"][0]["images"][0].pop("visual_tokens"),
        lambda m: m.update(tags="ops"),
    ],
)
def test_docs_steps_aside_for_an_unexpected_manifest(
    store: Path, clean: Path, monkeypatch: pytest.MonkeyPatch, change: object
) -> None:
    import shutil

    data = clean / "kb_data"
    shutil.copytree(store / "docs", data / "docs")
    path = data / "docs" / f"{IDS[0]}.json"
    manifest = json.loads(path.read_text())
    change(manifest)  # type: ignore[operator]
    path.write_text(json.dumps(manifest))
    assert _fast.handle(["docs"]) is False


def test_docs_broken_manifest_errors_as_before(store: Path, clean: Path) -> None:
    docs = clean / "kb_data" / "docs"
    docs.mkdir(parents=True)
    (docs / "broken.json").write_text("{not json")
    assert _fast.handle(["docs"]) is False
    res = _kb(["docs"], clean)
    assert res.returncode != 0 and "broken" not in res.stdout


def test_fast_lane_imports_no_framework(store: Path, tmp_path: Path) -> None:
    for args, code in ((["--help"], 0), ([], 2), (["docs"], 0), (["docs", "--json"], 0)):
        res = subprocess.run(
            [sys.executable, "-c", _PROBE, *args],
            cwd=tmp_path,
            env=_env(KB_DATA_DIR=str(store), COLUMNS="100"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == code, res.stderr
        line = next(x for x in res.stderr.splitlines() if x.startswith("MODULES="))
        mods = set(json.loads(line.removeprefix("MODULES=")))
        assert not mods & FRAMEWORKS, (args, mods & FRAMEWORKS)
        if args[:1] == ["docs"]:
            assert IDS[2] in res.stdout
    full = _kb(["docs"], tmp_path, KB_DATA_DIR=str(store), COLUMNS="100", KB_FAST_LANE="0")
    fast = _kb(["docs"], tmp_path, KB_DATA_DIR=str(store), COLUMNS="100")
    assert fast.returncode == full.returncode == 0 and fast.stdout == full.stdout and fast.stderr == full.stderr


def test_lane_tables_match_the_models() -> None:
    """The manifest fields the lane checks are the catalog's, and the settings it lets pass take any text."""
    from pydantic import SecretStr

    from kb.catalog import DocumentRecord, ImageRecord, SectionRecord
    from kb.settings import Settings

    for model, fields in (
        (DocumentRecord, _fast.DOC_FIELDS),
        (SectionRecord, _fast.SECTION_FIELDS),
        (ImageRecord, _fast.IMAGE_FIELDS),
    ):
        assert set(fields) == set(model.model_fields), model.__name__
        for name, info in model.model_fields.items():
            assert fields[name][1] == info.is_required(), (model.__name__, name)
    validated = {f for d in Settings.__pydantic_decorators__.field_validators.values() for f in d.info.fields}
    for name in _fast.FREE_TEXT_FIELDS:
        info = Settings.model_fields[name]
        assert info.annotation in (str, str | None, SecretStr | None), name
        assert not info.metadata and name not in validated, name
    assert not _fast.NOT_SETTINGS & set(Settings.model_fields)


# -- the shared table -------------------------------------------------------------------------------------


def test_table_never_cuts_the_id_and_folds_text() -> None:
    cols = [Col("id", keep=9), Col("n", keep=1, justify="right"), Col("title", keep=5, wrap=True)]
    rows = [["a-very-long-document-id.md", "7", "A title of several words that must fold"]]
    wide = fit_table("T", cols, rows, 200)
    assert "│ a-very-long-document-id.md │ 7 │ A title of several words that must fold │" in wide
    narrow = fit_table("T", cols, rows, 45)
    lines = narrow.splitlines()
    assert all(len(x) <= 45 for x in lines[:-1]) and "(narrow terminal: n not shown)" in lines[-1]
    assert "a-very-long-document-id.md" in narrow and "…" not in narrow
    assert " ".join(w for x in lines[4:-2] for w in x.split("│")[2].split()) == rows[0][2]  # folded, whole
    tiny = fit_table(None, cols, rows, 10)  # narrower than the id: the id still whole
    assert "│ a-very-long-document-id.md │" in tiny and "title" not in tiny.splitlines()[1]


def test_table_colour_only_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    cols = [Col("id"), Col("status", styles={"failed": "red"})]
    plain = fit_table(None, cols, [["x", "failed"]], 80)
    assert "\x1b" not in plain
    coloured = fit_table(None, cols, [["x", "failed"]], 80, color=True)
    assert "\x1b[31mfailed\x1b[0m" in coloured and "\x1b[1mid\x1b[0m" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color() is False
