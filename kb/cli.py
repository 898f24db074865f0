"""The `kb` command line."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kb.catalog import DocumentRecord
from kb.errors import KbError
from kb.service import KnowledgeBase
from kb.settings import Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Glyph KB: documents as glyph images, searchable.")
out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="kb.toml to read (default: ./kb.toml if present)")
]
HostOpt = Annotated[str, typer.Option("--host", help="address to bind (0.0.0.0 exposes it on the network)")]


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


def _run(fn: Callable[[], Any]) -> Any:
    """Turn user-fixable errors into a clear message and exit code 2; bugs keep their traceback."""
    try:
        return fn()
    except KbError as exc:
        err.print(f"[bold red]error:[/] {exc.message}")
        if exc.hint:
            err.print(f"[yellow]hint:[/] {exc.hint}")
        raise typer.Exit(2) from None


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (walked recursively)")],
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="tag to attach (repeatable)")] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="render and catalogue only; no embedding")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=0,
            help="worker processes that parse, render and embed files side by side (default: KB_INGEST_WORKERS, "
            "0 = all in this process); each loads its own models",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Parse, section, render and index documents into the knowledge base."""
    kb = _run(lambda: KnowledgeBase(_settings(config)))
    n_workers = kb.settings.ingest_workers if workers is None else workers
    missing = [p for p in paths if not p.exists()]
    if missing:
        err.print(f"[bold red]error:[/] no such file or folder: {', '.join(map(str, missing))}")
        raise typer.Exit(2)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("scanning", total=None)

        def on_file(p: Path, i: int, n: int) -> None:
            bar.update(task, total=n, completed=i, description=f"{p.name}")

        def on_stage(p: Path, stage: str) -> None:
            bar.update(task, description=f"{p.name} [dim]{stage}[/]")

        pool = None
        if n_workers:
            from ingest.workers import PreparePool

            pool = PreparePool(kb.settings, workers=n_workers, index=not no_index)
        try:
            results = _run(
                lambda: kb.ingest(paths, tags=tag, on_file=on_file, on_stage=on_stage, index=not no_index, pool=pool)
            )
        finally:
            if pool is not None:
                pool.close()
        bar.update(task, completed=len(results))
    kb.close()
    elapsed = time.perf_counter() - t0
    _print_ingest_summary(results, elapsed)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def _print_ingest_summary(results: list[Any], elapsed: float) -> None:
    table = Table(title="Ingested")
    for col in ("document", "status", "sections", "images", "pages", "compression", "seconds"):
        table.add_column(col, justify="left" if col in ("document", "status") else "right")
    for r in results:
        ratio = f"{r.text_tokens / r.visual_tokens:.2f}×" if r.visual_tokens else "-"
        style = {"ingested": "green", "unchanged": "dim", "failed": "red"}[r.status]
        table.add_row(
            r.doc_id or r.path.name,
            f"[{style}]{r.status}[/]",
            str(r.sections),
            str(r.images),
            str(r.pages or "-"),
            ratio,
            f"{r.seconds:.1f}",
        )
    out.print(table)
    ok = [r for r in results if r.status != "failed"]
    failed = [r for r in results if r.status == "failed"]
    text_t = sum(r.text_tokens for r in ok)
    vis_t = sum(r.visual_tokens for r in ok)
    out.print(
        f"documents: {len(ok)} ({sum(r.status == 'ingested' for r in ok)} ingested, "
        f"{sum(r.status == 'unchanged' for r in ok)} unchanged)  sections: {sum(r.sections for r in ok)}  "
        f"images: {sum(r.images for r in ok)}  pages: {sum(r.pages or 0 for r in ok)}  "
        f"compression: {text_t / vis_t if vis_t else 0:.2f}× ({text_t} text / {vis_t} visual tokens)  "
        f"failures: {len(failed)}  time: {elapsed:.1f}s"
    )
    for r in failed:
        out.print(f"[red]failed[/] {r.path}: {r.error}")


@app.command()
def render(
    file: Annotated[Path, typer.Argument(help="a document to render")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="folder for the PNGs")] = Path("glyphs"),
    config: ConfigOpt = None,
) -> None:
    """Write the glyph images of one file to a folder, to look at (stores nothing)."""
    kb = _run(lambda: KnowledgeBase(_settings(config)))
    paths = _run(lambda: kb.render_file(file, out_dir))
    for p in paths:
        out.print(str(p))
    out.print(f"{len(paths)} image(s) in {out_dir}")


@app.command()
def docs(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config: ConfigOpt = None,
) -> None:
    """List the ingested documents."""
    kb = _run(lambda: KnowledgeBase(_settings(config)))
    records = _run(kb.documents)
    if as_json:
        rows = [
            {
                "doc": d.doc_id,
                "title": d.title,
                "file": d.source_name,
                "format": d.format,
                "pages": d.pages,
                "sections": len(d.sections),
                "images": len(d.image_keys),
                "text_tokens": d.text_tokens,
                "visual_tokens": d.visual_tokens,
                "ingested_at": d.ingested_at,
                "tags": d.tags,
            }
            for d in records
        ]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    if not records:
        out.print(f"No documents in {kb.settings.data_dir}. Add some with: kb ingest PATH")
        return
    table = Table(title=f"Documents in {kb.settings.data_dir}")
    for col in ("id", "title", "format", "pages", "sections", "images", "compression", "ingested", "tags"):
        table.add_column(col)
    for d in records:
        table.add_row(
            d.doc_id,
            d.title[:48],
            d.format,
            str(d.pages or "-"),
            str(len(d.sections)),
            str(len(d.image_keys)),
            f"{d.compression:.2f}×",
            d.ingested_at,
            ",".join(d.tags),
        )
    out.print(table)
    s = kb.stats()
    out.print(
        f"{s.documents} documents, {s.sections} sections, {s.images} images, "
        f"{s.image_bytes / 1e6:.1f} MB of images, compression {s.compression:.2f}×"
    )


@app.command()
def delete(
    doc_ids: Annotated[list[str], typer.Argument(help="document ids (see `kb docs`)")],
    config: ConfigOpt = None,
) -> None:
    """Remove documents and their images."""
    with KnowledgeBase(_run(lambda: _settings(config))) as kb:
        for d in doc_ids:
            rec: DocumentRecord = _run(partial(kb.delete, d))
            out.print(f"deleted {rec.doc_id} ({len(rec.sections)} sections)")


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int | None, typer.Option("--k", "-k", help="number of hits")] = None,
    doc: Annotated[list[str] | None, typer.Option("--doc", "-d", help="limit to these document ids")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="limit to documents with these tags")] = None,
    signal: Annotated[
        list[str] | None, typer.Option("--signal", help="use only these signals: image, text, bm25")
    ] = None,
    diverse: Annotated[
        bool | None, typer.Option("--diverse/--no-diverse", help="per-document quota (default: automatic)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable hits")] = False,
    config: ConfigOpt = None,
) -> None:
    """Retrieve the best sections across all documents."""
    from kb.retrieve import SearchOptions

    settings = _run(lambda: _settings(config))
    with KnowledgeBase(settings) as kb:
        opts = SearchOptions(k=k or settings.top_k, doc_ids=doc, tags=tag, signals=signal, diversify=diverse)
        hits = _run(lambda: kb.search(question, opts))
    if as_json:
        sys.stdout.write(json.dumps([h.to_json() for h in hits], ensure_ascii=False, indent=1) + "\n")
        return
    if not hits:
        out.print("No matching sections.")
    for n, h in enumerate(hits, 1):
        sig = " ".join(f"{s}={v:.3f}" for s, v in sorted(h.scores.items()))
        out.print(f"[bold]{h.label(n)}[/]  [dim]score {h.score:.4f}  {sig}[/]")
        snippet = " ".join(h.text.split())[:300]
        out.print(f"    {snippet}")
        for p in h.images:
            out.print(f"    [dim]{p}[/]")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question")],
    doc: Annotated[list[str] | None, typer.Option("--doc", "-d", help="limit to these document ids")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="limit to documents with these tags")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="number of sections to retrieve")] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="what the model reads: image, text or image+text (default: setting)")
    ] = None,
    cross: Annotated[
        bool | None,
        typer.Option("--cross/--no-cross", help="answer document by document, then agreements (default: automatic)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable answer, citations, usage, timings")] = False,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="print the answer only when complete")] = False,
    config: ConfigOpt = None,
) -> None:
    """Answer a question from the documents with a vision-language model, citing the sources as [n]."""
    from kb.answer.run import CONFIGURE_HINT, AnswerStream, AskOptions, generate, make_answerer, prepare
    from kb.errors import VlmError, VlmUnavailableError

    if mode not in (None, "image", "text", "image+text"):
        err.print(f"[bold red]error:[/] unknown --mode {mode!r}; use image, text or image+text")
        raise typer.Exit(2)
    settings = _run(lambda: _settings(config))
    opts = AskOptions(k=k, doc_ids=doc, tags=tag, cross_document=cross, mode=mode)  # type: ignore[arg-type]
    with KnowledgeBase(settings) as kb:
        prep = _run(lambda: prepare(kb, question, opts))
    hits = prep.hits

    def fail(message: str, hint: str, partial: bool = False) -> None:
        if as_json:
            sys.stdout.write(
                json.dumps(
                    {
                        "answer": None,
                        "error": message,
                        "hint": hint,
                        "citations": [{"n": n, **h.to_json()} for n, h in enumerate(hits, 1)],
                        "notes": prep.prompt.notes,
                        "timings": prep.timings,
                    },
                    ensure_ascii=False,
                    indent=1,
                )
                + "\n"
            )
            raise typer.Exit(2)
        if partial:
            sys.stdout.write("\n")
            err.print("[bold red]the answer was cut off[/] — do not rely on the text above.")
        err.print(f"[bold red]no answer:[/] {message}")
        if hint:
            err.print(f"[yellow]hint:[/] {hint}")
        _print_sources(hits, prep.prompt.notes, cited=set())
        raise typer.Exit(2)

    try:
        answerer = make_answerer(settings)
    except VlmUnavailableError as exc:
        fail(exc.message, exc.hint or CONFIGURE_HINT)
        return
    if answerer is None:
        fail("no vision-language model is configured (KB_VLM_BACKEND=none), so there is no answer", CONFIGURE_HINT)
        return

    printed = False
    try:
        if as_json or no_stream:
            answer = generate(prep, answerer, settings)
            if not as_json:
                out.print(answer.text, markup=False, highlight=False)
        else:
            st = AnswerStream(prep, answerer, settings)
            for piece in st:
                printed = True
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            assert st.answer is not None
            answer = st.answer
    except VlmError as exc:
        fail(exc.message, exc.hint, partial=printed)
        return
    finally:
        close = getattr(answerer, "close", None)
        if callable(close):
            close()
    if as_json:
        sys.stdout.write(json.dumps(answer.to_json(), ensure_ascii=False, indent=1) + "\n")
        return
    _print_sources(
        [c.hit for c in answer.citations],
        answer.notes,
        cited={c.n for c in answer.citations if c.cited},
        unsent=prep.prompt.dropped,
    )
    u = answer.usage
    err.print(
        f"[dim]{answer.backend} · {answer.model} · {u.images_sent} image(s), {u.visual_tokens} visual + "
        f"{u.text_tokens} text tokens in, {u.completion_tokens} out · {answer.timings.get('total', 0):.1f}s[/]"
    )


def _print_sources(hits: list[Any], notes: list[str], *, cited: set[int], unsent: list[Any] | None = None) -> None:
    if not hits:
        out.print("No matching sections in the knowledge base.")
    else:
        out.print("\n[bold]Sources[/]")
    for n, h in enumerate(hits, 1):
        mark = "" if not cited or n in cited else "[dim](not cited)[/] "
        out.print(f"{mark}[bold]{escape(h.label(n))}[/]", highlight=False)
        for p in h.images:
            out.print(f"    [dim]{p}[/]", highlight=False)
    for n, h in enumerate(unsent or [], len(hits) + 1):
        out.print(f"[dim](not sent to the model) {escape(h.label(n))}[/]", highlight=False)
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}")


@app.command("eval")
def eval_cmd(
    questions: Annotated[Path, typer.Option("--questions", "-q", help="questions.jsonl")],
    docs_dir: Annotated[Path, typer.Option("--docs", help="folder of documents to ingest into a scratch store")],
    k: Annotated[str, typer.Option("--k", help="comma-separated k values")] = "1,3,5,10",
    signals: Annotated[
        str, typer.Option("--signals", help="comma-separated: image,text,bm25,fused")
    ] = "image,text,bm25,fused",
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="add the plain text-RAG reference row")
    ] = True,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write JSON here (+ .md table and .png plot beside it)")
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="keep the scratch store here; re-runs skip unchanged documents")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Evidence recall@k and MRR per signal and fused, on a question set (ingests into a scratch store)."""
    from kb.evaluation import eval_json, markdown, plot, run_eval

    ks = sorted({int(x) for x in k.split(",") if x.strip()})
    sigs = [s.strip() for s in signals.split(",") if s.strip()]
    settings = _run(lambda: _settings(config))
    res = _run(
        lambda: run_eval(
            settings, questions, docs_dir, ks=ks, signals=sigs, baseline=baseline, store=store, log=err.print
        )
    )
    table = markdown(res.reports, ks, res.extra)
    sys.stdout.write(table + "\n")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(eval_json(res, ks), ensure_ascii=False, indent=1))
        json_out.with_suffix(".md").write_text(table + "\n")
        plot(res.reports, ks, json_out.with_suffix(".png"))
        err.print(f"wrote {json_out}, {json_out.with_suffix('.md')}, {json_out.with_suffix('.png')}")


@app.command()
def reindex(config: ConfigOpt = None) -> None:
    """Rebuild the vector index with the configured models (after changing models)."""
    with KnowledgeBase(_run(lambda: _settings(config))) as kb:
        n = _run(kb.reindex)
    out.print(f"indexed {n} section(s)")


@app.command()
def gc(config: ConfigOpt = None) -> None:
    """Remove images no document references (left over by an interrupted ingest)."""
    with KnowledgeBase(_run(lambda: _settings(config))) as kb:
        n = _run(kb.gc)
    out.print(f"removed {n} unreferenced image(s)")


@app.command()
def ui(
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to serve on")] = 8501,
    config: ConfigOpt = None,
) -> None:
    """Start the Streamlit app (chat and admin). It owns the embedded store while it runs."""
    import os
    import signal
    import subprocess

    app_file = Path(__file__).resolve().parent.parent / "ui" / "app.py"
    if not app_file.is_file():
        err.print(f"[bold red]error:[/] the UI is not installed ({app_file} is missing)")
        raise typer.Exit(2)
    settings = _run(lambda: _settings(config))  # a bad config fails here, clearly, not in the browser
    env = dict(os.environ)
    if config is not None:
        env["KB_CONFIG"] = str(config.resolve())
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
        # the browser-side cap must not be below our own size check (Streamlit defaults to 200 MB)
        "--server.maxUploadSize", str(max(1, math.ceil(settings.max_file_mb))),
    ]  # fmt: skip
    err.print(f"Glyph KB UI on http://{host}:{port}  (Ctrl+C to stop)")
    child = subprocess.Popen(cmd, env=env)

    def forward(signum: int, _frame: object) -> None:  # stopping `kb ui` stops the server it started
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    try:
        code = child.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to both; let streamlit shut down
        code = child.wait()
    raise typer.Exit(code if code >= 0 else 128 - code)


@app.command()
def serve(
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to serve on")] = 8000,
    torch_threads: Annotated[
        int,
        typer.Option(
            "--torch-threads",
            help="CPU threads per model call (0 = torch's default). Concurrent requests already run "
            "calls side by side, so 1 serves most requests per second on a CPU; GPUs ignore it",
        ),
    ] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="log every request")] = True,
    config: ConfigOpt = None,
) -> None:
    """Start the HTTP API (OpenAPI at /docs; OpenAI-compatible /v1/chat/completions). Needs KB_API_KEYS."""
    try:
        import uvicorn

        from kb.api import create_app
    except ImportError as exc:
        err.print(f"[bold red]error:[/] the API needs fastapi and uvicorn ({exc}); install the api extra")
        raise typer.Exit(2) from None
    settings = _run(lambda: _settings(config))
    if not settings.api_keys:
        err.print("[yellow]warning:[/] no API keys configured (KB_API_KEYS), so every /v1 call is refused")
    if torch_threads > 0:
        import torch

        torch.set_num_threads(torch_threads)
    with KnowledgeBase(settings) as kb:
        err.print(f"Glyph KB API on http://{host}:{port}  (OpenAPI: /docs, Ctrl+C to stop)")
        uvicorn.run(create_app(kb), host=host, port=port, log_level="info", access_log=access_log)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
