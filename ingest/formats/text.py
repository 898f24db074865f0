"""Plain text through unstructured, with what its indentation says: setext headings ("Title" over "===="),
indented code blocks, indented continuation lines of list items."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ingest.formats._offline import prepare_unstructured
from ingest.formats.base import Format, sniff_text
from ingest.formats.common import (
    CODEISH,
    Draft,
    clean_code,
    clean_text,
    document_title,
    draft_from_element,
    heading_number_depth,
    is_admonition,
    partition,
    read_text,
    resolve_levels,
)
from kb.settings import Settings
from kb.types import ParsedDocument

_SETEXT = re.compile(r"\s*(={3,}|-{3,})\s*")


def parse_txt(path: Path, settings: Settings) -> ParsedDocument:
    text = read_text(path)
    prepare_unstructured()  # before the first unstructured import
    from unstructured.partition.text import partition_text

    elements = partition(partition_text, path, text=text, languages=[""])
    lines = text.replace("\r\n", "\n").split("\n")
    drafts: list[Draft] = []
    pos = 0
    for el in elements:
        d = draft_from_element(el)
        if d is None:
            continue
        # locate the element's first line in the source to see its indentation
        first = str(el.text or "").strip().split("\n")[0][:40]
        start = next((i for i in range(pos, len(lines)) if first and first in lines[i]), None)
        if start is not None:
            end = start
            while end + 1 < len(lines) and lines[end + 1].strip():
                end += 1
            pos = end + 1
            src = lines[start : end + 1]
            indent = min(len(ln) - len(ln.lstrip(" ")) for ln in src if ln.strip())
            prev = drafts[-1] if drafts else None
            underline = _SETEXT.fullmatch(src[-1]) if len(src) == 2 else None
            if underline:  # "Title\n=====" / "Title\n-----"
                d = Draft("heading", clean_text(src[0]), tag_depth=0 if underline.group(1)[0] == "=" else 1)
                d.admonition = is_admonition(d.text)
            elif indent >= 4 and d.kind != "list_item":
                in_list = prev is not None and prev.kind == "list_item"
                if in_list and indent < 8 and not CODEISH.search(" ".join(src)):
                    d = replace(d, kind="list_item", marker=None, level=prev.level if prev else 0)
                else:
                    d = Draft("code", clean_code("\n".join(ln[min(indent, 8 if in_list else indent) :] for ln in src)))
        if (
            d.kind == "heading"
            and heading_number_depth(d.text) is None
            and not d.admonition
            and (CODEISH.search(d.text) or d.text.endswith((".", ":", ";", ",")))
        ):
            d = replace(d, kind="paragraph")
        drafts.append(d)
    blocks = resolve_levels(drafts, use_numbering=True)
    return ParsedDocument(title=document_title([], blocks, path), format="txt", blocks=tuple(blocks))


TEXT = Format(name="txt", label="Text", extensions=(".txt", ".text"), sniff=sniff_text, parse=parse_txt, family="text")
