"""`kb ingest`: parse, section, render and index files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from kb.cli._common import ConfigOpt, app, err, load_settings, out, run


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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kb.service import KnowledgeBase

    kb = run(lambda: KnowledgeBase(load_settings(config)))
    n_workers = kb.settings.ingest_workers if workers is None else workers
    missing = [p for p in paths if not p.exists()]
    if missing:
        err().print(f"[bold red]error:[/] no such file or folder: {', '.join(map(str, missing))}")
        raise typer.Exit(2)
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
            from ingest.workers import PreparePool

            pool = PreparePool(kb.settings, workers=n_workers, index=not no_index)
        try:
            results = run(
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
    from rich.table import Table

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
    out().print(table)
    ok = [r for r in results if r.status != "failed"]
    failed = [r for r in results if r.status == "failed"]
    text_t = sum(r.text_tokens for r in ok)
    vis_t = sum(r.visual_tokens for r in ok)
    out().print(
        f"documents: {len(ok)} ({sum(r.status == 'ingested' for r in ok)} ingested, "
        f"{sum(r.status == 'unchanged' for r in ok)} unchanged)  sections: {sum(r.sections for r in ok)}  "
        f"images: {sum(r.images for r in ok)}  pages: {sum(r.pages or 0 for r in ok)}  "
        f"compression: {text_t / vis_t if vis_t else 0:.2f}× ({text_t} text / {vis_t} visual tokens)  "
        f"failures: {len(failed)}  time: {elapsed:.1f}s"
    )
    for r in failed:
        out().print(f"[red]failed[/] {r.path}: {r.error}")
