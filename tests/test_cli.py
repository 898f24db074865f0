"""The command line as a user meets it: help text, startup imports, errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app

runner = CliRunner()


def test_help_shows_citation_marker_and_plain_usage() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    ask = runner.invoke(app, ["ask", "--help"])
    assert ask.exit_code == 0
    assert "[n]" in ask.stdout  # not eaten as rich markup
    ingest = runner.invoke(app, ["ingest", "--help"])
    assert re.search(r"Usage: \S+ ingest \[OPTIONS\] PATHS\.\.\.", ingest.stdout), ingest.stdout
    for res in (top, ask, ingest, runner.invoke(app, ["search", "--help"])):
        assert "{" not in res.stdout and "<bool>" not in res.stdout and "<int>" not in res.stdout
    assert "-k, --k INTEGER" in runner.invoke(app, ["search", "--help"]).stdout


def test_every_command_has_plain_help() -> None:
    """Each command's help (others' included) has a plain usage line and no typer type tags."""
    import typer.main

    group = typer.main.get_command(app)
    names = list(group.commands)  # type: ignore[attr-defined]
    assert {"ingest", "search", "ask", "docs", "models"} <= set(names)
    for name in names:
        res = runner.invoke(app, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        usage = res.stdout.splitlines()[0]
        assert usage.startswith("Usage: ") and "{" not in usage, (name, usage)
        assert not re.search(r"<(int|str|bool|path|float|list\[)", res.stdout), (name, res.stdout)


REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "docs"
HEAVY = ("torch", "sentence_transformers", "transformers", "open_clip", "sklearn")
_PROBE = """
import json, sys
sys.argv = ["kb", *sys.argv[1:]]
from kb.cli import main
try:
    main()
except SystemExit:
    pass
print("MODULES=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh machine: no KB_* settings and no HF offline switch."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KB_") and k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env["PYTHONPATH"] = str(REPO)  # this checkout's code, whatever the venv's editable install points at
    return {**env, **extra}


def _loaded_modules(args: list[str], cwd: Path) -> tuple[set[str], str]:
    res = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=300
    )
    line = next(x for x in res.stdout.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES="))), res.stdout + res.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The examples ingested with the bundled profile, for the output and bad-input tests."""
    data = tmp_path_factory.mktemp("store") / "kb_data"
    mp = pytest.MonkeyPatch()
    mp.setenv("KB_DATA_DIR", str(data))
    mp.setenv("KB_TEXT_MODEL", "minilm-bundled")
    mp.setenv("KB_CLIP_MODEL", "")
    res = runner.invoke(app, ["ingest", str(EXAMPLES)])
    assert res.exit_code == 0, res.output
    yield data
    mp.undo()


def test_readme_main_job_runs_verbatim_on_a_machine_without_a_model_hub(tmp_path: Path) -> None:
    """The README's first commands, copied as written, in a scratch copy with no KB_* and no HF offline switch."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block is not None
    main_job = next(line for line in block.group(1).splitlines() if "kb ingest" in line)
    command = main_job.split("#")[0].strip()
    assert command.startswith(".venv/bin/kb ingest examples/docs && .venv/bin/kb search")
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    (tmp_path / ".venv").symlink_to(REPO / ".venv" if (REPO / ".venv").is_dir() else Path(sys.prefix))
    res = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env=_clean_env(COLUMNS="120"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "payments-api-spec-v1.html" in res.stdout and "p99 latency of POST /payments" in res.stdout
    assert "models: " in res.stderr  # says what it used
    assert "Loading weights" not in res.stderr  # no third-party progress bars
    if "bundled profile" in res.stderr:  # no model hub here: one line says so
        # once per data dir: ingest says it, the search on the same store does not repeat it
        assert sum("bundled profile" in line for line in res.stderr.splitlines()) == 1
    recorded = json.dumps(_recorded_models(tmp_path / "kb_data"))
    assert "st:" in recorded or "open_clip:" in recorded  # the collection records the models that built it


def test_a_note_is_shown_once_per_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kb.cli._common import note_once

    data = tmp_path / "kb_data"
    reader = note_once(data)
    reader("using the bundled profile")
    reader("using the bundled profile")
    assert capsys.readouterr().err.count("bundled profile") == 2 and not data.exists()  # a reader makes no store
    note_once(data, create=True)("using the bundled profile")
    note_once(data)("using the bundled profile")
    note_once(data)("another note")
    err = capsys.readouterr().err
    assert err.count("bundled profile") == 1 and err.count("another note") == 1


def _recorded_models(data: Path) -> dict[str, object]:
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(data / "qdrant"))
    try:
        meta = client.get_collection("glyph_kb").config.metadata or {}
    finally:
        client.close()
    return dict(meta.get("embedders", {}))


def test_commands_that_need_no_model_import_none(store: Path, tmp_path: Path) -> None:
    (tmp_path / "kb.toml").write_text(f'data_dir = "{store}"\n')
    (tmp_path / "notes.xyz").write_text("not a document")
    for args in (
        ["docs"],
        ["delete", "no-such-doc"],
        ["--help"],
        ["search", ""],
        ["ask", "x", "--k", "0"],
        ["ingest", str(tmp_path / "notes.xyz")],  # refused: unsupported
        ["ingest", str(EXAMPLES)],  # all unchanged
    ):
        mods, output = _loaded_modules(args, tmp_path)
        assert not mods & set(HEAVY), (args, mods & set(HEAVY), output)
        if args[0] == "ingest":
            assert ("unsupported" in output) if "notes.xyz" in args[1] else ("3 unchanged" in output), output
    mods, output = _loaded_modules(
        ["render", str(EXAMPLES / "incident-response-sop.md"), "--out", str(tmp_path)], tmp_path
    )
    assert "image(s) in" in output
    assert not mods & {"sentence_transformers", "open_clip", "torch"}, output  # no model; spaCy without torch


def test_models_lists_sources_and_availability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KB_TEXT_MODEL", raising=False)
    monkeypatch.delenv("KB_CLIP_MODEL", raising=False)
    monkeypatch.setenv("KB_MODELS_DIR", str(tmp_path / "empty-cache"))
    res = runner.invoke(app, ["models", "--json"])
    assert res.exit_code == 0, res.output
    js = json.loads(res.stdout)
    by_signal = {m["signal"]: m for m in js["models"]}
    assert by_signal["text"]["source"] == "hub repo intfloat/multilingual-e5-small"
    assert by_signal["text"]["available"] is False and by_signal["image"]["available"] is False
    res = runner.invoke(app, ["models"], env={"COLUMNS": "120"})
    assert res.exit_code == 0 and "will use: text=minilm-bundled, bm25; off: image" in res.stdout
    monkeypatch.setenv("KB_TEXT_MODEL", "minilm-bundled")
    js = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    assert js["models"][0]["available"] is True and "bundled package" in js["models"][0]["source"]


def test_explicit_model_that_cannot_be_had_stops_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("KB_TEXT_MODEL", "acme/no-such-model")
    monkeypatch.setenv("KB_MODELS_DIR", str(tmp_path / "cache"))
    res = runner.invoke(app, ["ingest", str(EXAMPLES)])
    assert res.exit_code == 2
    assert "KB_TEXT_MODEL='acme/no-such-model'" in res.output and "kb models pull --to DIR" in res.output


def test_models_pull_copies_a_cache_for_an_air_gapped_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model in one hub cache is pulled into a folder; a machine with only that folder finds and loads it."""
    from kb.embed.dense import bundled_minilm

    repo = "acme/minilm"
    src = tmp_path / "connected-cache" / f"models--{repo.replace('/', '--')}"
    snap = src / "snapshots" / "0123abcd"
    shutil.copytree(str(bundled_minilm()), snap)
    (src / "refs").mkdir()
    (src / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("KB_TEXT_MODEL", repo)
    monkeypatch.setenv("KB_CLIP_MODEL", "")
    monkeypatch.setenv("KB_MODELS_DIR", str(tmp_path / "connected-cache"))
    res = runner.invoke(app, ["models", "pull", "--to", str(tmp_path / "usb")])
    assert res.exit_code == 0, res.output
    assert f"text: {repo}: copied from" in res.stdout
    shutil.rmtree(tmp_path / "connected-cache")  # the air-gapped machine has only the copied folder
    monkeypatch.setenv("KB_MODELS_DIR", str(tmp_path / "usb"))
    js = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    assert js["models"][0]["available"] is True
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    res = runner.invoke(app, ["ingest", str(EXAMPLES / "incident-response-sop.md")])
    assert res.exit_code == 0, res.output
    assert f"text={repo}" in res.output
    res = runner.invoke(app, ["search", "severity levels", "--k", "1", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["doc"] == "incident-response-sop.md"


def test_bad_questions_and_k_exit_2_with_the_next_step(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(store))
    for args in (["search", ""], ["search", "   "], ["ask", ""]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and "the question is empty" in res.output and "hint:" in res.output
    for k in ("0", "-3"):
        for cmd in ("search", "ask"):
            res = runner.invoke(app, [cmd, "latency", "--k", k])
            assert res.exit_code == 2 and "--k must be at least 1" in res.output, res.output


def test_a_disabled_signal_says_so(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(store))
    monkeypatch.setenv("KB_TEXT_MODEL", "minilm-bundled")
    monkeypatch.setenv("KB_CLIP_MODEL", "")
    res = runner.invoke(app, ["search", "WAL", "--signal", "image"])
    assert res.exit_code == 2
    assert "the image signal is disabled" in res.output and "KB_CLIP_MODEL" in res.output
    res = runner.invoke(app, ["search", "WAL", "--signal", "colour"])
    assert res.exit_code == 2 and "unknown signal" in res.output


def test_ids_are_whole_at_narrow_widths(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(store))
    for width in ("40", "80", "160"):
        res = runner.invoke(app, ["docs"], env={"COLUMNS": width})
        assert res.exit_code == 0
        for doc_id in ("incident-response-sop.md", "payments-api-spec-v1.html", "payments-api-spec-v2.txt"):
            assert doc_id in res.stdout, (width, res.stdout)
        assert "…" not in res.stdout
    narrow = runner.invoke(app, ["docs"], env={"COLUMNS": "40"}).stdout
    assert "not shown" in narrow


def test_compression_per_document_with_the_reason(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(store))
    res = runner.invoke(app, ["docs"], env={"COLUMNS": "160"})
    assert re.search(r"payments-api-spec-v2\.txt\s+│\s+\d\.\d\d×", res.stdout), res.stdout
    assert "whole corpus" in res.stdout
    assert "header" in res.stdout and "28 px patches" in res.stdout


def test_ingest_lists_skipped_files_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(EXAMPLES / "incident-response-sop.md", folder)
    (folder / "notes.xyz").write_text("not a document format")
    (folder / ".hidden.md").write_text("# hidden")
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    res = runner.invoke(app, ["ingest", str(folder), "--no-index"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "skipped: 1" in res.stdout
    assert re.search(r"skipped \S*notes\.xyz: unsupported format \.xyz", res.stdout), res.stdout


def test_ask_without_a_vlm_shows_the_passages(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(store))
    monkeypatch.setenv("KB_VLM_BACKEND", "none")
    res = runner.invoke(app, ["ask", "p99 latency of POST /payments", "--k", "2"], env={"COLUMNS": "200"})
    assert res.exit_code == 2
    assert "no vision-language model is configured" in res.output
    assert "The p99 latency of POST /payments MUST be below 200 ms" in res.stdout


def _comparable(hits: list[dict[str, object]]) -> list[tuple[object, ...]]:
    """A hit without where its images live, scores to 3 places (the server batches query encodings)."""
    return [
        (h["doc"], h["section"], h["text"], round(float(str(h["score"])), 3),
         sorted((k, round(v, 3)) for k, v in dict(h["scores"]).items()))  # type: ignore[call-overload]
        for h in hits
    ]  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_thin_client_of_a_running_server_and_the_lock_names_it(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kb search/docs/ask/ingest through a real `kb serve` answer as a local run; the store it holds is refused
    to a second process with the holder's pid and command."""
    import httpx

    data = tmp_path / "kb_data"
    shutil.copytree(store, data)
    monkeypatch.setenv("KB_DATA_DIR", str(data))
    monkeypatch.setenv("KB_TEXT_MODEL", "minilm-bundled")
    monkeypatch.setenv("KB_CLIP_MODEL", "")
    local = runner.invoke(app, ["search", "p99 latency of POST /payments", "--k", "2", "--json"])
    assert local.exit_code == 0, local.output
    key = "admin-key-for-the-cli-test"
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KB_API_KEYS": json.dumps([{"key": key, "role": "admin", "tenants": ["default"]}]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "serve", "--port", str(port), "--no-access-log"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        monkeypatch.setenv("KB_SERVER_KEY", key)
        remote = runner.invoke(app, ["search", "p99 latency of POST /payments", "--k", "2", "--json", "--server", url])
        assert remote.exit_code == 0, remote.output
        assert _comparable(json.loads(remote.stdout)) == _comparable(json.loads(local.stdout))
        monkeypatch.setenv("KB_SERVER_URL", url)
        res = runner.invoke(app, ["docs"], env={"COLUMNS": "120"})
        assert res.exit_code == 0 and "payments-api-spec-v1.html" in res.stdout and "×" in res.stdout
        res = runner.invoke(app, ["ask", "p99 latency of POST /payments", "--k", "1"], env={"COLUMNS": "200"})
        assert res.exit_code == 2 and "The p99 latency of POST /payments MUST be below 200 ms" in res.stdout
        monkeypatch.delenv("KB_SERVER_URL")
        res = runner.invoke(app, ["gc"])  # a second process on the store the server holds
        assert res.exit_code == 2
        assert f"process {proc.pid} (" in res.output and " serve --port" in res.output, res.output
        monkeypatch.setenv("KB_SERVER_KEY", "not-the-key-at-all")
        res = runner.invoke(app, ["docs", "--server", url])
        assert res.exit_code == 2 and "KB_SERVER_KEY" in res.output
    finally:
        proc.terminate()
        proc.wait(60)
    res = runner.invoke(app, ["docs", "--server", url])
    assert res.exit_code == 2 and "cannot reach the kb server" in res.output and "kb serve" in res.output


def test_writer_lock_error_names_the_holding_process(tmp_path: Path) -> None:
    from kb.errors import StoreLockedError
    from kb.fsutil import writer_lock

    script = tmp_path / "long_ingest.py"
    script.write_text(
        "import sys, time\nfrom pathlib import Path\nfrom kb.fsutil import writer_lock\n"
        "with writer_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "data")],
        env=_clean_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(StoreLockedError) as info, writer_lock(tmp_path / "data", timeout=0.2):
            pass
        assert f"process {proc.pid} (long_ingest.py " in info.value.message
    finally:
        proc.kill()
        proc.wait(10)


def test_numpy_question_encoder_matches_sentence_transformers() -> None:
    """Searches embed the question in numpy (no torch import); the vectors are sentence-transformers' own."""
    import numpy as np

    from kb.embed.dense import SentenceEmbedder, numpy_queries

    questions = ["p99 latency of POST /payments", "Wie lange werden Zahlungsdaten aufbewahrt?", "x", "SEV1 " * 300]
    fast = SentenceEmbedder("minilm-bundled")
    with numpy_queries():
        assert fast.fast_queries()
        a = fast.embed_queries(questions)
    assert fast._model is None  # sentence-transformers never loaded for the questions
    slow = SentenceEmbedder("minilm-bundled")
    slow.load()
    b = slow.embed_queries(questions)
    assert a.shape == b.shape == (4, fast.dim)
    assert float(np.abs(a - b).max()) < 1e-5


def test_a_command_loads_its_models_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest loads the text model once for all files; search loads only the question encoder, once."""
    import sentence_transformers

    from kb.embed import bert_numpy

    loads = {"st": 0, "numpy": 0}
    st_init = sentence_transformers.SentenceTransformer.__init__
    np_init = bert_numpy.NumpyBert.__init__

    def count_st(self: object, *a: object, **kw: object) -> None:
        loads["st"] += 1
        st_init(self, *a, **kw)  # type: ignore[arg-type]

    def count_np(self: bert_numpy.NumpyBert, folder: Path) -> None:
        loads["numpy"] += 1
        np_init(self, folder)

    monkeypatch.setattr(sentence_transformers.SentenceTransformer, "__init__", count_st)
    monkeypatch.setattr(bert_numpy.NumpyBert, "__init__", count_np)
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("KB_TEXT_MODEL", "minilm-bundled")
    monkeypatch.setenv("KB_CLIP_MODEL", "")
    assert runner.invoke(app, ["ingest", str(EXAMPLES)]).exit_code == 0
    assert loads == {"st": 1, "numpy": 0}
    loads.update(st=0, numpy=0)
    res = runner.invoke(app, ["search", "p99 latency", "--k", "2"])
    assert res.exit_code == 0, res.output
    assert loads == {"st": 0, "numpy": 1}


def test_render_prints_each_image_path_whole_and_as_it_is(tmp_path: Path) -> None:
    """Paths are text (a "[b]" in a name is not rich markup) and never broken at 80 columns in a pipe,
    so scripts can read them line by line."""
    src = tmp_path / "notes [b].md"
    shutil.copyfile(EXAMPLES / "incident-response-sop.md", src)
    out_dir = tmp_path / ("a-long-folder-name-for-the-glyph-images-" * 3)
    res = runner.invoke(app, ["render", str(src), "--out", str(out_dir)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    made = sorted(str(p) for p in out_dir.glob("*.png"))
    assert made and lines[: len(made)] == made and all(len(p) > 80 for p in made)
    assert lines[len(made)] == f"{len(made)} image(s) in {out_dir}"
