"""`kb diff`: what changed between two documents (versions of a spec, or any two ingested files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kb.cli._common import ConfigOpt, app, load_settings, out, run


@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="document id or path of an ingested file (the older side)")],
    b: Annotated[str, typer.Argument(help="document id or path of an ingested file (the newer side)")],
    as_json: Annotated[bool, typer.Option("--json", help="{a, b, changes, only_in_a, only_in_b}")] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="report.md (+ images folder) or report.html, changed lines marked")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """What changed from A to B: sentences, list items and table rows, cited by section and page."""
    from kb.compare_jobs.commands import run_diff

    run(lambda: run_diff(load_settings(config), a, b, as_json=as_json, out_file=out_file, out=out()))


@app.command()
def crosscheck(
    docs: Annotated[list[str], typer.Argument(help="two or more document ids (or paths of ingested files)")],
    topic: Annotated[str | None, typer.Option("--topic", help="only claims that mention these words")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="{docs, claims, conflicts, agreements, vlm, notes}")] = False,
    no_embed: Annotated[
        bool, typer.Option("--no-embed", help="group claims by shared key terms only (no text model)")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Contradictions between documents: requirement levels, limits, defaults; conflicts and agreements, cited."""
    from kb.compare_jobs.commands import run_crosscheck

    if len(docs) < 2:
        from kb.cli._common import fail

        fail("crosscheck needs two or more documents", "kb crosscheck DOC_A DOC_B [...]")
    run(
        lambda: run_crosscheck(load_settings(config), docs, topic=topic, as_json=as_json, embed=not no_embed, out=out())
    )
