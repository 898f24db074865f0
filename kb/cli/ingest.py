"""`kb ingest`: parse, section, render and index files."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from kb.cli._client import ServerOpt, server_url
from kb.cli._common import ConfigOpt, app, err, fail, load_settings, note_once, out, run
from kb.cli._docsview import SHORT_DOC_NOTE, short_doc
from kb.cli._table import Col, fit_table, term_width, use_color


def skipped_files(paths: list[Path]) -> list[tuple[Path, str]]:
    """Files inside the given folders that ingest does not take, with the reason."""
    from ingest.pipeline import iter_files

    taken = set(iter_files(paths))
    skipped: list[tuple[Path, str]] = []
    for folder in (p for p in paths if p.is_dir()):
        for f in sorted(folder.rglob("*")):
            if not f.is_file() or f in taken:
                continue
            if any(part.startswith(".") for part in f.relative_to(folder).parts):
                continue  # hidden files and folders (.git, .DS_Store) are not documents: not worth a line
            skipped.append((f, f"unsupported format {f.suffix.lower() or '(no extension)'}"))
    return skipped


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
    revises: Annotated[
        str | None,
        typer.Option("--revises", help="the document id this file is a new version of (one file only; see `kb diff`)"),
    ] = None,
    server: ServerOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Parse, section, render and index documents into the knowledge base."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kb.service import KnowledgeBase

    missing = [p for p in paths if not p.exists()]
    if missing:
        fail(
            f"no such file or folder: {', '.join(map(str, missing))}", "check the path (folders are walked recursively)"
        )
    if revises is not None and (len(paths) != 1 or paths[0].is_dir()):
        fail("--revises takes one file", "ingest the new version of a document on its own")
    url = server_url(server)
    if url:
        _ingest_remote(url, paths, tag)
        return
    kb = run(lambda: KnowledgeBase(load_settings(config)))
    if revises is not None:
        run(lambda: kb.get(revises))  # a clear error before any work when the previous version is unknown
    n_workers = kb.settings.ingest_workers if workers is None else workers
    profile = (
        None if no_index else run(lambda: kb.resolve_models(announce=note_once(kb.settings.data_dir, create=True)))
    )
    skipped = skipped_files(paths)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err(),
        transient=True,
    ) as bar:
        task = bar.add_task("scanning", total=None)

        def on_file(p: Path, i: int, n: int) -> None:
            bar.update(task, total=n, completed=i, description=f"{p.name}")

        def on_stage(p: Path, stage: str) -> None:
            bar.update(task, description=f"{p.name} [dim]{stage}[/]")

        pool = None
        if n_workers:
            from kb.ingest_prepare import PreparePool

            pool = PreparePool(kb.settings, workers=n_workers, index=not no_index)
        try:
            results = run(
                lambda: kb.ingest(paths, tags=tag, on_file=on_file, on_stage=on_stage, index=not no_index, pool=pool)
            )
        finally:
            if pool is not None:
                pool.close()
        bar.update(task, completed=len(results))
    if revises is not None and results and results[0].status != "failed" and results[0].doc_id:
        new_id = results[0].doc_id
        run(lambda: kb.set_revises(new_id, revises))
        err().print(
            f"{new_id} revises {revises} (see: kb diff {revises} {new_id})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    kb.close()
    elapsed = time.perf_counter() - t0
    _print_ingest_summary(results, elapsed, skipped)
    from rich.markup import escape

    used = profile.describe() if profile else "none (--no-index: rendered and catalogued only)"
    err().print(f"[dim]models: {escape(used)}[/]", highlight=False)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def _print_ingest_summary(results: list[Any], elapsed: float, skipped: list[tuple[Path, str]]) -> None:
    from rich.markup import escape

    ok = [r for r in results if r.status != "failed"]
    failed = [r for r in results if r.status == "failed"]
    text_t = sum(r.text_tokens for r in ok)
    vis_t = sum(r.visual_tokens for r in ok)
    corpus = text_t / vis_t if vis_t else 0.0
    cols = [
        Col("document", keep=9),
        Col("status", keep=8, styles={"ingested": "green", "unchanged": "dim", "failed": "red"}),
        Col("compression", keep=7, justify="right"),
        Col("sections", keep=6, justify="right"),
        Col("images", keep=5, justify="right"),
        Col("pages", keep=3, justify="right"),
        Col("seconds", keep=2, justify="right"),
        Col("file", keep=1, wrap=True),
    ]
    rows = []
    for r in results:
        ratio = f"{r.text_tokens / r.visual_tokens:.2f}×" if r.visual_tokens else "-"
        if short_doc(r.text_tokens, r.visual_tokens, corpus):
            ratio += "†"
        rows.append(
            [r.doc_id or r.path.name, r.status, ratio, str(r.sections), str(r.images), str(r.pages or "-"),
             f"{r.seconds:.1f}", str(r.path)]
        )  # fmt: skip
    sys.stdout.write(
        fit_table("Ingested", cols, rows, term_width(), hint="`kb docs --json` has every field", color=use_color())
    )
    out().print(
        f"documents: {len(ok)} ({sum(r.status == 'ingested' for r in ok)} ingested, "
        f"{sum(r.status == 'unchanged' for r in ok)} unchanged)  sections: {sum(r.sections for r in ok)}  "
        f"images: {sum(r.images for r in ok)}  pages: {sum(r.pages or 0 for r in ok)}  "
        f"compression: {corpus:.2f}× ({text_t} text / {vis_t} visual tokens)  "
        f"failures: {len(failed)}  skipped: {len(skipped)}  time: {elapsed:.1f}s",
        highlight=False,
    )
    if any(short_doc(r.text_tokens, r.visual_tokens, corpus) for r in ok):
        out().print(SHORT_DOC_NOTE, style="dim", markup=False, highlight=False)
    for r in failed:
        out().print(f"[red]failed[/] {escape(str(r.path))}: {escape(str(r.error))}", highlight=False)
    for path, why in skipped:
        out().print(f"[yellow]skipped[/] {escape(str(path))}: {escape(why)}", highlight=False)


def _ingest_remote(url: str, paths: list[Path], tags: list[str] | None) -> None:
    """Upload the files to a running `kb serve` (an admin key in KB_SERVER_KEY) and wait for its jobs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingest.pipeline import iter_files
    from kb.cli._client import Server

    files = list(iter_files(paths))
    skipped = skipped_files(paths)
    t0 = time.perf_counter()
    with Server(url) as remote, Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err(), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("uploading", total=len(files))

        def on_file(p: Path, i: int, n: int) -> None:
            bar.update(task, total=n, completed=i, description=p.name)

        results = remote.ingest(files, tags, on_file)
    _print_ingest_summary(results, time.perf_counter() - t0, skipped)
    err().print(f"[dim]models: those of the kb server at {url}[/]", highlight=False)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)
