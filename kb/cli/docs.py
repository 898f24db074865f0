"""`kb docs` and `kb delete`: the documents in the knowledge base."""

from __future__ import annotations

import json
import sys
from functools import partial
from typing import Annotated

import typer

from kb.cli._client import ServerOpt, server_url
from kb.cli._common import ConfigOpt, app, load_settings, out, run
from kb.cli._table import Col, fit_table

DOC_COLS = [
    Col("id", keep=9),
    Col("compression", keep=8, justify="right"),
    Col("title", keep=7, wrap=True),
    Col("sections", keep=6, justify="right"),
    Col("images", keep=5, justify="right"),
    Col("pages", keep=4, justify="right"),
    Col("format", keep=3),
    Col("tags", keep=2, wrap=True),
    Col("ingested", keep=1),
]


@app.command()
def docs(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    server: ServerOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List the ingested documents."""
    url = server_url(server)
    if url:
        _docs_remote(url, as_json)
        return
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
        out().print(f"No documents in {kb.settings.data_dir}. Add some with: kb ingest PATH", highlight=False)
        return
    from kb.cli.ingest import SHORT_DOC_NOTE, short_doc

    st = kb.stats()
    cells = [
        [d.doc_id, f"{d.compression:.2f}×" + ("†" if short_doc(d.text_tokens, d.visual_tokens, st.compression) else ""),
         d.title, str(len(d.sections)), str(len(d.image_keys)), str(d.pages or "-"), d.format, ",".join(d.tags),
         d.ingested_at]
        for d in records
    ]  # fmt: skip
    out().print(
        fit_table(f"Documents in {kb.settings.data_dir}", DOC_COLS, cells, out().width, hint="--json has every field")
    )
    out().print(
        f"{st.documents} documents, {st.sections} sections, {st.images} images, "
        f"{st.image_bytes / 1e6:.1f} MB of images, compression {st.compression:.2f}× "
        f"({st.text_tokens} text / {st.visual_tokens} visual tokens, whole corpus)",
        highlight=False,
    )
    if any(short_doc(d.text_tokens, d.visual_tokens, st.compression) for d in records):
        out().print(SHORT_DOC_NOTE, style="dim", markup=False, highlight=False)


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


def _docs_remote(url: str, as_json: bool) -> None:
    from kb.cli._client import Server
    from kb.cli.ingest import SHORT_DOC_NOTE, short_doc

    with Server(url) as remote:
        docs = remote.documents()
    rows = [
        {
            "doc": d["id"], "title": d["title"], "file": d.get("name"), "format": d.get("format"), "pages": d.get("pages"),
            "sections": d.get("sections"), "images": d.get("images"), "text_tokens": d.get("text_tokens"),
            "visual_tokens": d.get("visual_tokens"), "ingested_at": d.get("ingested_at"), "tags": d.get("tags"),
        }
        for d in docs
    ]  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    if not rows:
        out().print(f"No documents on {url}. Add some with: kb ingest PATH", highlight=False)
        return
    text_t = sum(int(r["text_tokens"] or 0) for r in rows)
    vis_t = sum(int(r["visual_tokens"] or 0) for r in rows)
    corpus = text_t / vis_t if vis_t else 0.0

    def ratio(r: dict[str, object]) -> str:
        t, v = int(str(r["text_tokens"] or 0)), int(str(r["visual_tokens"] or 0))
        return f"{t / v:.2f}×" + ("†" if short_doc(t, v, corpus) else "") if v else "-"

    cells = [
        [str(r["doc"]), ratio(r), str(r["title"]), str(r["sections"]), str(r["images"]), str(r["pages"] or "-"),
         str(r["format"]), ",".join(map(str, r["tags"] or [])), str(r["ingested_at"])]
        for r in rows
    ]  # fmt: skip
    out().print(fit_table(f"Documents on {url}", DOC_COLS, cells, out().width, hint="--json has every field"))
    out().print(
        f"{len(rows)} documents, compression {corpus:.2f}× ({text_t} text / {vis_t} visual tokens, whole corpus)",
        highlight=False,
    )
    if any(short_doc(int(r["text_tokens"] or 0), int(r["visual_tokens"] or 0), corpus) for r in rows):
        out().print(SHORT_DOC_NOTE, style="dim", markup=False, highlight=False)
