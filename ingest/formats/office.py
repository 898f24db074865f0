"""Office Open XML: Word (.docx) and PowerPoint (.pptx) through unstructured, with python-docx hints for
code paragraphs and list numbering that unstructured drops."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ingest.formats._offline import prepare_unstructured
from ingest.formats.base import Format, Mismatch, looks_zip
from ingest.formats.common import (
    Draft,
    clean_code,
    document_title,
    draft_from_element,
    norm_key,
    partition,
    resolve_levels,
    unwrap_admonition_tables,
)
from kb.errors import CorruptDocumentError
from kb.settings import Settings
from kb.types import ParsedDocument


def _sniff_ooxml(ext: str) -> Callable[[bytes], Mismatch | None]:
    def sniff(head: bytes) -> Mismatch | None:
        if looks_zip(head):
            return None
        return Mismatch(
            f"is not a .{ext} file: not a {ext.upper()} (Office Open XML) zip",
            "re-save it as .docx/.pptx (old .doc/.ppt are not supported), or rename it to its real type",
        )

    return sniff


def _check_package(path: Path, ext: str, part: str) -> None:
    """The zip holds the format's main part; a damaged zip or another zip format is refused up front."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptDocumentError(
            f"{path.name} is a damaged .{ext} file: {exc}", "re-save it from the editor"
        ) from exc
    if part not in names:
        raise CorruptDocumentError(f"{path.name} is a zip but not a .{ext} document", f"re-save it as .{ext}")


_CODE_STYLE = re.compile(r"code|verbatim|preformat|source|listing|console", re.IGNORECASE)
_MONO_FONT = re.compile(r"mono|courier|consol|menlo|code", re.IGNORECASE)
_NUMBERED_STYLE = re.compile(r"list number|numbered", re.IGNORECASE)


def _docx_hints(path: Path) -> tuple[set[str], dict[str, tuple[bool, int]]]:
    """(code paragraph keys, list paragraph key -> (ordered, level)) from python-docx.

    Code: a code-like paragraph style, or every run in a monospace font / code character style.
    Lists: "List Number N" / "List Bullet N" styles, or a numbering property (w:numPr/w:ilvl).
    """
    import docx

    keys: set[str] = set()
    lists: dict[str, tuple[bool, int]] = {}
    try:
        d = docx.Document(str(path))
    except Exception:  # unstructured reports the real problem
        return keys, lists
    for p in d.paragraphs:
        text = p.text
        if not text.strip():
            continue
        style = (p.style.name if p.style is not None else "") or ""
        runs = [r for r in p.runs if r.text.strip()]
        mono = bool(runs) and all(
            _MONO_FONT.search(r.font.name or "") or _CODE_STYLE.search(r.style.name if r.style is not None else "")
            for r in runs
        )
        if _CODE_STYLE.search(style) or mono:
            keys.add(norm_key(text))
            continue
        ilvl = p._p.xpath("./w:pPr/w:numPr/w:ilvl/@w:val")
        if style.casefold().startswith("list") or ilvl:
            m = re.search(r"(\d+)$", style)
            level = int(ilvl[0]) if ilvl else (int(m.group(1)) - 1 if m else 0)
            lists[norm_key(text)] = (bool(_NUMBERED_STYLE.search(style)), max(0, level))
    return keys, lists


def _merge_code_runs(drafts: list[Draft]) -> list[Draft]:
    """Consecutive code paragraphs (one per line, as Word users type them) form one code block."""
    out: list[Draft] = []
    for d in drafts:
        if d.kind == "code" and out and out[-1].kind == "code" and out[-1].page == d.page:
            out[-1].text = f"{out[-1].text}\n{d.text}"
        else:
            out.append(d)
    return out


def _docx_title(path: Path) -> str | None:
    import docx

    try:
        return docx.Document(str(path)).core_properties.title or None
    except Exception:
        return None


def parse_docx(path: Path, settings: Settings) -> ParsedDocument:
    _check_package(path, "docx", "word/document.xml")
    prepare_unstructured()  # before the first unstructured import
    from unstructured.partition.docx import partition_docx

    elements = partition(partition_docx, path, filename=str(path), languages=[""], include_page_breaks=False)
    code_keys, list_info = _docx_hints(path)
    drafts: list[Draft] = []
    counters: dict[int, int] = {}
    for el in elements:
        d = draft_from_element(el)
        if d is None:
            continue
        k = norm_key(str(el.text or ""))
        if d.kind in ("paragraph", "heading") and k in code_keys:
            d = Draft("code", clean_code(str(el.text or "")), page=d.page)
        if d.kind == "paragraph" and k in list_info:
            d = replace(d, kind="list_item", marker="•")
        if d.kind == "list_item":
            depth = el.metadata.category_depth
            ordered, level = list_info.get(k, (False, max(0, int(depth)) if isinstance(depth, int) else 0))
            d.level = level
            # number ordered items per level; any other block ends the list
            counters = {lv: n for lv, n in counters.items() if lv <= level}
            if ordered:
                counters[level] = counters.get(level, 0) + 1
                d.marker = f"{counters[level]}."
        else:
            counters = {}
        # the Title-style paragraph often repeats the first heading: keep one
        if d.kind == "heading" and drafts and drafts[-1].kind == "heading" and drafts[-1].text == d.text:
            drafts[-1] = d
            continue
        drafts.append(d)
    drafts = _merge_code_runs(unwrap_admonition_tables(drafts))
    blocks = resolve_levels(drafts, use_numbering=True)
    return ParsedDocument(title=document_title([_docx_title(path)], blocks, path), format="docx", blocks=tuple(blocks))


def parse_pptx(path: Path, settings: Settings) -> ParsedDocument:
    _check_package(path, "pptx", "ppt/presentation.xml")
    prepare_unstructured()  # before the first unstructured import
    from unstructured.partition.pptx import partition_pptx

    elements = partition(partition_pptx, path, filename=str(path), languages=[""])
    drafts: list[Draft] = []
    for d in (draft_from_element(e) for e in elements):
        if d is None:
            continue
        # only a slide title (depth 0) is a heading; deeper "titles" are body-placeholder lines
        if d.kind == "heading" and (d.tag_depth or 0) > 0 and not d.admonition:
            d = replace(d, kind="list_item", level=(d.tag_depth or 1) - 1, marker="•", tag_depth=None)
        drafts.append(d)
    drafts = unwrap_admonition_tables(drafts)
    blocks = resolve_levels(drafts, use_numbering=False)
    return ParsedDocument(title=document_title([], blocks, path), format="pptx", blocks=tuple(blocks))


DOCX = Format(
    name="docx", label="DOCX", extensions=(".docx",), sniff=_sniff_ooxml("docx"), parse=parse_docx, family="office"
)
PPTX = Format(
    name="pptx", label="PPTX", extensions=(".pptx",), sniff=_sniff_ooxml("pptx"), parse=parse_pptx, family="office"
)
