"""What `kb docs` prints, from rows shaped as its `--json` output: the table, the summary line and the note
on short documents. Standard library only, shared by the fast lane (kb/cli/_fast.py), the typer command
(kb/cli/docs.py, local and through a server) and, for the note, `kb ingest`'s summary.
"""

from __future__ import annotations

from kb.cli._table import Col, fit_table, paint, term_width, use_color

SHORT_DOC_NOTE = (
    "† compresses less than the corpus: every glyph image pays a fixed header (title and heading path) and its "
    "height is rounded up to whole 28 px patches, which weighs most on documents of one short image"
)

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

TYPE_CHECKING = False  # typing costs more to import than this whole lane
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    Row = Mapping[str, Any]  # doc, title, file, format, pages, sections, images, text_tokens, visual_tokens, ...


def manifest_row(r: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest (the catalog's JSON, or a DocumentRecord dumped to it) as one row of `kb docs --json`."""
    return {
        "doc": r["doc_id"],
        "title": r["title"],
        "file": r["source_name"],
        "format": r["format"],
        "pages": r.get("pages"),
        "sections": len(r["sections"]),
        "images": sum(len(s["images"]) for s in r["sections"]),
        "text_tokens": sum(s["text_tokens"] for s in r["sections"]),
        "visual_tokens": sum(i["visual_tokens"] for s in r["sections"] for i in s["images"]),
        "ingested_at": r["ingested_at"],
        "tags": r.get("tags", []),
    }


def short_doc(text_tokens: int, visual_tokens: int, corpus: float) -> bool:
    return bool(visual_tokens) and corpus > 0 and text_tokens / visual_tokens < 0.8 * corpus


def docs_json(rows: Sequence[Row]) -> str:
    import json

    return json.dumps(list(rows), ensure_ascii=False, indent=1) + "\n"


def _tokens(r: Row) -> tuple[int, int]:
    return int(r["text_tokens"] or 0), int(r["visual_tokens"] or 0)


def corpus_tokens(rows: Sequence[Row]) -> tuple[int, int, float]:
    """Text and visual tokens of all rows, and the corpus compression."""
    text_t = sum(_tokens(r)[0] for r in rows)
    vis_t = sum(_tokens(r)[1] for r in rows)
    return text_t, vis_t, text_t / vis_t if vis_t else 0.0


def local_summary(rows: Sequence[Row], images: int, image_bytes: int) -> str:
    """The summary of a local store: `images` distinct images taking `image_bytes`."""
    text_t, vis_t, corpus = corpus_tokens(rows)
    sections = sum(int(r["sections"] or 0) for r in rows)
    return (
        f"{len(rows)} documents, {sections} sections, {images} images, {image_bytes / 1e6:.1f} MB of images, "
        f"compression {corpus:.2f}× ({text_t} text / {vis_t} visual tokens, whole corpus)"
    )


def remote_summary(rows: Sequence[Row]) -> str:
    text_t, vis_t, corpus = corpus_tokens(rows)
    return f"{len(rows)} documents, compression {corpus:.2f}× ({text_t} text / {vis_t} visual tokens, whole corpus)"


def empty_message(where: str) -> str:
    """`where`: "in DATA_DIR" or "on URL"."""
    return f"No documents {where}. Add some with: kb ingest PATH\n"


def docs_table(
    rows: Sequence[Row], title: str, summary: str, width: int | None = None, color: bool | None = None
) -> str:
    """The table of documents, the summary line and, when a document compresses much less than the corpus,
    the note saying why."""
    width = term_width() if width is None else width
    color = use_color() if color is None else color
    corpus = corpus_tokens(rows)[2]

    def ratio(r: Row) -> str:
        t, v = _tokens(r)
        return f"{t / v:.2f}×" + ("†" if short_doc(t, v, corpus) else "") if v else "-"

    cells = [
        [str(r["doc"]), ratio(r), str(r["title"]), str(r["sections"]), str(r["images"]), str(r["pages"] or "-"),
         str(r["format"]), ",".join(map(str, r["tags"] or [])), str(r["ingested_at"])]
        for r in rows
    ]  # fmt: skip
    text = fit_table(title, DOC_COLS, cells, width, hint="--json has every field", color=color) + summary + "\n"
    if any(short_doc(*_tokens(r), corpus) for r in rows):
        text += paint(SHORT_DOC_NOTE, "dim", color) + "\n"
    return text
