"""`kb docs` and `kb delete`: the documents in the knowledge base."""

from __future__ import annotations

import json
import sys
from functools import partial
from typing import Annotated

import typer

from kb.cli._common import ConfigOpt, app, load_settings, out, run


@app.command()
def docs(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config: ConfigOpt = None,
) -> None:
    """List the ingested documents."""
    from rich.table import Table

    from kb.service import KnowledgeBase

    kb = run(lambda: KnowledgeBase(load_settings(config)))
    records = run(kb.documents)
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
        out().print(f"No documents in {kb.settings.data_dir}. Add some with: kb ingest PATH")
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
    out().print(table)
    s = kb.stats()
    out().print(
        f"{s.documents} documents, {s.sections} sections, {s.images} images, "
        f"{s.image_bytes / 1e6:.1f} MB of images, compression {s.compression:.2f}×"
    )


@app.command()
def delete(
    doc_ids: Annotated[list[str], typer.Argument(help="document ids (see `kb docs`)")],
    config: ConfigOpt = None,
) -> None:
    """Remove documents and their images."""
    from kb.service import KnowledgeBase

    with KnowledgeBase(load_settings(config)) as kb:
        for d in doc_ids:
            rec = run(partial(kb.delete, d))
            out().print(f"deleted {rec.doc_id} ({len(rec.sections)} sections)")
