"""`kb show DOC`: one document's section tree (headings, page spans, sizes, images), or its JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kb.cli._common import ConfigOpt, app, fail, load_settings, run

if TYPE_CHECKING:
    from kb.catalog import DocumentRecord


def document_json(rec: DocumentRecord) -> dict[str, Any]:
    """The shape `kb show --json` prints (the API's GET /v1/documents/{id} carries the same section fields)."""
    return {
        "doc": rec.doc_id,
        "title": rec.title,
        "format": rec.format,
        "pages": rec.pages,
        "sections": [
            {
                "id": s.section_id,
                "heading_path": s.heading_path,
                "headings": s.headings,
                "pages": [s.page_start, s.page_end or s.page_start] if s.page_start is not None else None,
                "part": s.part,
                "parts": s.parts,
                "kinds": s.kinds,
                "role": s.role,
                "text": s.text,
                "images": [
                    {"key": i.key, "width": i.width, "height": i.height, "visual_tokens": i.visual_tokens}
                    for i in s.images
                ],
            }
            for s in rec.sections
        ],
    }


def outline_lines(rec: DocumentRecord) -> list[str]:
    """The heading tree, one line per section: pages, size and images first, then the indented heading
    (ancestors without a section of their own are shown once, merged-in headings after a ↳)."""
    lines: list[str] = []
    shown: tuple[str, ...] = ()
    blank = " " * 30
    for s in rec.sections:
        path = tuple(s.heading_path)
        common = 0
        while common < min(len(path), len(shown)) and path[common] == shown[common]:
            common += 1
        for depth in range(common, max(0, len(path) - 1)):
            lines.append(f"{blank}{'  ' * depth}{path[depth]}")
        label = path[-1] if path else rec.title
        if s.parts > 1:
            label += f" (part {s.part}/{s.parts})"
        if s.role == "toc":
            label += " [contents listing: not matched in search]"
        pages = "" if s.page_start is None else f"p.{s.page_start}"
        if s.page_start is not None and s.page_end and s.page_end != s.page_start:
            pages += f"-{s.page_end}"
        n = len(s.images)
        stats = f"{pages:<10}{len(s.text):>7} ch {n:>2} img"
        depth = max(0, len(path) - 1)
        lines.append(f"{stats:<30}{'  ' * depth}{label}")
        inner = [h for h in s.headings if h != (path[-1] if path else None)]
        if inner:
            lines.append(f"{blank}{'  ' * (depth + 1)}↳ {' · '.join(inner)}")
        shown = path
    return lines


def find_document(records: list[DocumentRecord], ref: str) -> DocumentRecord | None:
    """By id, or by the path (or file name) of the ingested file."""
    for r in records:
        if r.doc_id == ref:
            return r
    p = Path(ref)
    resolved = str(p.resolve()) if p.exists() else None
    for r in records:
        if r.source_path == resolved or r.source_path == ref:
            return r
    named = [r for r in records if r.source_name == p.name]
    return named[0] if len(named) == 1 else None


@app.command()
def show(
    doc: Annotated[str, typer.Argument(help="a document id (see `kb docs`) or the path of an ingested file")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config: ConfigOpt = None,
) -> None:
    """Show one document's sections: the heading tree with page spans, sizes and images."""
    from kb.service import KnowledgeBase

    kb = run(lambda: KnowledgeBase(load_settings(config)))
    rec = find_document(run(kb.documents), doc)
    if rec is None:
        fail(f"no ingested document {doc!r}", "list them with: kb docs (a document id or the ingested file's path)")
    if as_json:
        sys.stdout.write(json.dumps(document_json(rec), ensure_ascii=False, indent=1) + "\n")
        return
    images = sum(len(s.images) for s in rec.sections)
    pages = f", {rec.pages} pages" if rec.pages else ""
    # plain lines, never wrapped: the tree must stay readable in a pipe or a narrow terminal
    head = f"{rec.title}  ({rec.doc_id}: {rec.format}{pages}, {len(rec.sections)} sections, {images} images)"
    sys.stdout.write("\n".join([head, *(f"warning: {w}" for w in rec.warnings), *outline_lines(rec)]) + "\n")
