"""`kb docs` and `kb delete`: the documents in the knowledge base.

`kb docs` usually never gets here: the fast lane (kb/cli/_fast.py) reads the manifests with the standard
library and prints the same output through the same view (kb/cli/_docsview.py). This command runs when the
fast lane steps aside: --config/KB_CONFIG, --server/KB_SERVER_URL, a remote image store, settings it does
not read, or anything unexpected in the store (so errors read as they always did).
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Annotated

import typer

from kb.cli._client import ServerOpt, server_url
from kb.cli._common import ConfigOpt, app, load_settings, out, run
from kb.cli._docsview import docs_json, docs_table, empty_message, local_summary, manifest_row, remote_summary


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
    rows = [manifest_row(d.model_dump(mode="json")) for d in records]
    if as_json:
        sys.stdout.write(docs_json(rows))
    elif not rows:
        sys.stdout.write(empty_message(f"in {kb.settings.data_dir}"))
    else:
        st = kb.stats()
        summary = local_summary(rows, st.images, st.image_bytes)
        sys.stdout.write(docs_table(rows, f"Documents in {kb.settings.data_dir}", summary))


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
            out().print(
                f"deleted {rec.doc_id} ({len(rec.sections)} sections)", markup=False, highlight=False, soft_wrap=True
            )


def _docs_remote(url: str, as_json: bool) -> None:
    from kb.cli._client import Server

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
        sys.stdout.write(docs_json(rows))
    elif not rows:
        sys.stdout.write(empty_message(f"on {url}"))
    else:
        sys.stdout.write(docs_table(rows, f"Documents on {url}", remote_summary(rows)))
