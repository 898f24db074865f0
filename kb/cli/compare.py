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
    from kb.compare.commands import run_diff

    run(lambda: run_diff(load_settings(config), a, b, as_json=as_json, out_file=out_file, out=out()))
