"""HTML and Markdown through unstructured, with DOM hints (`html_hints`) that restore list nesting, item
numbers and bold-titled list entries; Markdown is rendered to HTML for the hints."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ingest.formats._offline import prepare_unstructured
from ingest.formats.base import Format, sniff_text
from ingest.formats.common import (
    Draft,
    document_title,
    draft_from_element,
    partition,
    read_text,
    resolve_levels,
    unwrap_admonition_tables,
)
from ingest.formats.html_hints import HtmlHints, html_hints
from ingest.formats.html_hints import key as html_key
from ingest.formats.md_lists import normalise_list_indent
from kb.settings import Settings
from kb.types import ParsedDocument

_MD_EXTENSIONS = ["tables", "fenced_code"]  # unstructured's default for partition_md


def _apply_html_hints(drafts: list[Draft], hints: HtmlHints) -> list[Draft]:
    """Restore list nesting/markers and bold-titled list entries from the DOM hints."""
    heading_depth = -1
    out: list[Draft] = []
    for d in drafts:
        if d.kind == "heading":
            if not d.admonition and d.tag_depth is not None:
                heading_depth = d.tag_depth
            hints.take(d.text)
            out.append(d)
            continue
        if d.kind not in ("paragraph", "list_item"):
            out.append(d)
            continue
        hint = hints.take(d.text) if html_key(d.text) else None
        if hint is None or hint.role == "plain":
            if d.kind == "list_item" and hint is not None:
                d = replace(d, kind="paragraph", marker=None)
            out.append(d)
        elif hint.role == "item":
            out.append(replace(d, kind="list_item", level=hint.level, marker=hint.marker))
        elif hint.role == "continuation":
            out.append(replace(d, kind="list_item", level=hint.level, marker=None))
        else:  # pseudo heading: "1. **Maximum length of a string**" entries
            label = d.text if not hint.marker or hint.marker == "•" else f"{hint.marker} {d.text}"
            out.append(Draft("heading", label, page=d.page, tag_depth=heading_depth + hint.depth_below_heading))
    return out


def _html_like(path: Path, html_text: str, elements: list[Any], fmt: str) -> ParsedDocument:
    hints = html_hints(html_text)
    drafts = [d for d in (draft_from_element(e) for e in elements) if d is not None]
    drafts = unwrap_admonition_tables(drafts)
    drafts = _apply_html_hints(drafts, hints)
    blocks = resolve_levels(drafts, use_numbering=True)
    title = document_title([hints.title if fmt == "html" else None], blocks, path)
    return ParsedDocument(title=title, format=fmt, blocks=tuple(blocks))


def parse_html(path: Path, settings: Settings) -> ParsedDocument:
    text = read_text(path)
    prepare_unstructured()  # before the first unstructured import
    from unstructured.partition.html import partition_html

    # strip an XML declaration: lxml refuses str input that declares an encoding
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    elements = partition(partition_html, path, text=text, languages=[""])
    return _html_like(path, text, elements, "html")


def parse_md(path: Path, settings: Settings) -> ParsedDocument:
    import markdown

    text = read_text(path)
    prepare_unstructured()  # before the first unstructured import
    from unstructured.partition.md import partition_md

    text = normalise_list_indent(text)  # 2/3-space GFM nesting -> the 4-space steps Python-Markdown needs
    elements = partition(partition_md, path, text=text, extensions=list(_MD_EXTENSIONS), languages=[""])
    html_text = markdown.markdown(text, extensions=list(_MD_EXTENSIONS))
    return _html_like(path, html_text, elements, "md")


HTML = Format(
    name="html",
    label="HTML",
    extensions=(".html", ".htm", ".xhtml"),
    sniff=sniff_text,
    parse=parse_html,
    family="markup",
)
MARKDOWN = Format(
    name="md", label="Markdown", extensions=(".md", ".markdown"), sniff=sniff_text, parse=parse_md, family="markup"
)
