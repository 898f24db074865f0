"""`kb render`: look at one file's glyph images without storing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kb.cli._common import ConfigOpt, app, load_settings, out, run


@app.command()
def render(
    file: Annotated[Path, typer.Argument(help="a document to render")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="folder for the PNGs")] = Path("glyphs"),
    config: ConfigOpt = None,
) -> None:
    """Write the glyph images of one file to a folder, to look at (stores nothing)."""
    from kb.service import KnowledgeBase

    kb = run(lambda: KnowledgeBase(load_settings(config)))
    paths = run(lambda: kb.render_file(file, out_dir))
    for p in paths:
        out().print(str(p), markup=False, highlight=False, soft_wrap=True)
    out().print(f"{len(paths)} image(s) in {out_dir}", markup=False, highlight=False, soft_wrap=True)
