"""Parse one file into a `ParsedDocument` (blocks in reading order) with unstructured.

Format by extension, checked against the content. unstructured does the partitioning; the
post-processing here maps its elements to `Block`s and restores what it drops: list nesting and
numbers, bold-titled list entries (HTML/MD DOM hints), code blocks (DOCX styles, PDF monospace
fonts, indented TXT blocks), heading levels (tag depth + section numbering), PDF running
headers/footers. Offline operation: see `ingest/_offline.py`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ingest._offline import prepare_unstructured
from ingest.html_struct import HtmlHints, html_hints
from ingest.html_struct import key as html_key
from ingest.md_lists import normalise_list_indent
from ingest.pdf import FontHints, font_hints, inspect_pdf, is_page_number, norm_key, ocr_tools_missing, running_key
from ingest.sections import is_admonition
from kb.errors import CorruptDocumentError, EmptyDocumentError, FileTooLargeError, KbError, UnsupportedFormatError
from kb.settings import Settings
from kb.types import Block, BlockKind, ParsedDocument

log = logging.getLogger(__name__)

FORMATS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".txt": "txt",
    ".text": "txt",
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(FORMATS)  # lower-case, with the dot
_TEXT_FORMATS = {"md", "html", "txt"}
_MD_EXTENSIONS = ["tables", "fenced_code"]  # unstructured's default for partition_md

_NUMBERED = re.compile(r"^(?:(?:chapter|section|part|appendix)\s+)?([0-9]+(?:\.[0-9]+)*)\.?\s+\S", re.IGNORECASE)
_LIST_MARK = re.compile(r"^(?:([0-9]{1,3}|[a-zA-Z])[.)]|[•◦▪‣∙·\-*–])\s+")
_WS = re.compile(r"\s+")
_SETEXT = re.compile(r"\s*(={3,}|-{3,})\s*")
_CODEISH = re.compile(r"[=;{}<>|$]|^\s*(select|insert|update|delete|create|alter|drop)\s", re.IGNORECASE)


def supported_extensions() -> list[str]:
    return sorted(FORMATS)


def clean_text(text: str) -> str:
    """Paragraph text: NFKC (folds ligatures, NBSP), whitespace collapsed. No de-hyphenation."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def clean_code(text: str) -> str:
    """Code: NFKC per character, newlines and indentation kept, trailing spaces and blank edges dropped."""
    lines = [unicodedata.normalize("NFKC", ln).rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def parse_file(path: Path, settings: Settings) -> ParsedDocument:
    """Parse `path`; raise a `KbError` subclass the user can act on for bad input."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFormatError(
            f"unsupported file type {path.suffix or '(no extension)'!r}: {path.name}",
            "supported: " + ", ".join(supported_extensions()),
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorruptDocumentError(
            f"cannot read {path}: {exc.strerror or exc}", "check the path and permissions"
        ) from exc
    if size > settings.max_file_mb * 1024 * 1024:
        raise FileTooLargeError(
            f"{path.name} is {size / 1024 / 1024:.1f} MB, over the {settings.max_file_mb:g} MB limit",
            "split the file or raise max_file_mb (KB_MAX_FILE_MB)",
        )
    if size == 0:
        raise EmptyDocumentError(f"{path.name} is empty (0 bytes)", "upload a file with content")

    head = _read_head(path)
    _check_content(path, fmt, head)
    prepare_unstructured()  # before the first unstructured import: DO_NOT_TRACK, offline NLP hook

    if fmt == "pdf":
        doc = _parse_pdf(path, settings)
    elif fmt in _TEXT_FORMATS:
        text = _decode(path)
        if not text.strip():
            raise EmptyDocumentError(f"{path.name} is empty (only whitespace)", "upload a file with content")
        doc = {"html": _parse_html, "md": _parse_md, "txt": _parse_txt}[fmt](path, text)
    elif fmt == "docx":
        doc = _parse_docx(path)
    else:
        doc = _parse_pptx(path)

    if not any(b.text.strip() or b.rows for b in doc.blocks):
        raise EmptyDocumentError(f"no text found in {path.name}", "check the file has text content")
    return doc


def _read_head(path: Path, n: int = 8192) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(n)
    except OSError as exc:
        raise CorruptDocumentError(
            f"cannot read {path}: {exc.strerror or exc}", "check the path and permissions"
        ) from exc


def _check_content(path: Path, fmt: str, head: bytes) -> None:
    """Catch a file whose content does not match its extension before a parser chokes on it."""
    is_pdf = head.lstrip()[:5] == b"%PDF-" or b"%PDF-" in head[:1024]
    is_zip = head[:4] == b"PK\x03\x04"
    if fmt == "pdf":
        if not is_pdf:
            raise CorruptDocumentError(
                f"{path.name} is not a PDF (no %PDF header)", "check the file, or rename it to its real type"
            )
        return
    if fmt in {"docx", "pptx"}:
        part = "word/document.xml" if fmt == "docx" else "ppt/presentation.xml"
        if not is_zip:
            raise CorruptDocumentError(
                f"{path.name} is not a .{fmt} file (not an Office Open XML zip)",
                "re-save it as .docx/.pptx (old .doc/.ppt are not supported), or rename it to its real type",
            )
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
        except (zipfile.BadZipFile, OSError) as exc:
            raise CorruptDocumentError(
                f"{path.name} is a damaged .{fmt} file: {exc}", "re-save it from the editor"
            ) from exc
        if part not in names:
            raise CorruptDocumentError(f"{path.name} is a zip but not a .{fmt} document", "re-save it as .{fmt}")
        return
    # text formats
    utf16 = head[:2] in (b"\xff\xfe", b"\xfe\xff")
    if is_pdf or is_zip or (b"\x00" in head and not utf16):
        kind = "a PDF" if is_pdf else "a zip/Office file" if is_zip else "binary data"
        raise CorruptDocumentError(
            f"{path.name} has a text extension but contains {kind}", "rename it to its real type or re-export as text"
        )


def _decode(path: Path) -> str:
    data = path.read_bytes()
    for enc in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is not None:
            return str(best)
    except ImportError:  # pragma: no cover - charset_normalizer ships with requests
        pass
    return data.decode("latin-1")


def _partition(fn: Callable[..., list[Any]], path: Path, **kwargs: Any) -> list[Any]:
    """Call an unstructured partitioner; parser failures become CorruptDocumentError."""
    prepare_unstructured()
    try:
        return fn(**kwargs)
    except KbError:
        raise
    except Exception as exc:
        raise CorruptDocumentError(
            f"could not parse {path.name}: {type(exc).__name__}: {exc}",
            "check the file opens in its editor, or re-export it",
        ) from exc


# ---------------------------------------------------------------------------------------------
# element -> block mapping
# ---------------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A block before heading levels are resolved."""

    kind: BlockKind
    text: str
    level: int = 0
    marker: str | None = None
    rows: tuple[tuple[str, ...], ...] | None = None
    header: bool = False
    page: int | None = None
    tag_depth: int | None = None  # headings: depth from the source markup
    admonition: bool = False
    edge: bool = False  # unstructured placed it in a page header/footer position

    def block(self) -> Block:
        return Block(self.kind, self.text, self.level, self.marker, self.rows, self.header, self.page)


def _category(el: Any) -> str:
    return str(getattr(el, "category", type(el).__name__))


def _table_rows(html: str | None) -> tuple[tuple[tuple[str, ...], ...] | None, bool]:
    if not html:
        return None, False
    from lxml import html as lxml_html

    try:
        root = lxml_html.fragment_fromstring(html, create_parent="div")
    except Exception:
        return None, False
    rows: list[tuple[str, ...]] = []
    header = False
    for i, tr in enumerate(root.iter("tr")):
        cells = [c for c in tr if isinstance(c.tag, str) and c.tag in ("td", "th")]
        if i == 0:
            header = bool(cells) and all(c.tag == "th" for c in cells)
        row: list[str] = []
        for c in cells:
            row.append(clean_text(" ".join(c.itertext())))
            span = c.get("colspan", "1")
            row.extend([""] * (int(span) - 1 if span.isdigit() and 1 < int(span) <= 50 else 0))
        rows.append(tuple(row))
    if not rows:
        return None, False
    width = max(len(r) for r in rows)
    return tuple(r + ("",) * (width - len(r)) for r in rows), header


def _draft_from_element(el: Any) -> _Draft | None:
    cat = _category(el)
    md = el.metadata
    page = getattr(md, "page_number", None)
    raw = str(el.text or "")
    if cat in {"PageBreak", "PageNumber", "Image", "Picture"}:
        return None
    if cat == "Title":
        text = clean_text(raw)
        return _Draft("heading", text, page=page, tag_depth=md.category_depth, admonition=is_admonition(text))
    if cat == "CodeSnippet":
        return _Draft("code", clean_code(raw), page=page)
    if cat == "Table":
        rows, header = _table_rows(getattr(md, "text_as_html", None))
        if rows:
            return _Draft("table", clean_text(raw), rows=rows, header=header, page=page)
        return _Draft("paragraph", clean_text(raw), page=page)
    if cat == "ListItem":
        text = clean_text(raw)
        marker = "•"
        m = _LIST_MARK.match(text)
        if m:
            marker = m.group(1) + "." if m.group(1) else "•"
            text = text[m.end() :].strip()
        return _Draft("list_item", text, level=0, marker=marker, page=page)
    if cat == "Formula":
        return _Draft("formula", clean_code(raw), page=page)
    if cat == "FigureCaption":
        return _Draft("caption", clean_text(raw), page=page)
    text = clean_text(raw)
    if cat in {"Header", "Footer"}:
        return _Draft("paragraph", text, page=page, edge=True)
    return _Draft("paragraph", text, page=page)


def _heading_number_depth(text: str) -> int | None:
    m = _NUMBERED.match(text)
    if not m or len(text.split()) > 20:
        return None
    return len(m.group(1).split("."))


def _resolve_levels(drafts: list[_Draft], *, use_numbering: bool) -> list[Block]:
    """Heading levels 1..6: rank of (markup depth, numbering depth); admonitions sit one below."""
    keys: dict[int, tuple[int, int]] = {}
    for i, d in enumerate(drafts):
        if d.kind != "heading" or d.admonition:
            continue
        num = _heading_number_depth(d.text) if use_numbering else None
        tag = d.tag_depth if d.tag_depth is not None and d.tag_depth >= 0 else -1
        keys[i] = (tag, num or 0)
    ranks = {k: r for r, k in enumerate(sorted(set(keys.values())), start=1)}
    out: list[Block] = []
    current = 0
    for i, d in enumerate(drafts):
        if d.kind == "heading":
            if d.admonition:
                d.level = min(6, current + 1)
            else:
                d.level = min(6, ranks[keys[i]])
                current = d.level
        if d.text or d.rows:
            out.append(d.block())
    return out


def _document_title(candidates: Sequence[str | None], blocks: Sequence[Block], path: Path) -> str:
    for c in candidates:
        if c and clean_text(c):
            return clean_text(c)
    for b in blocks:
        if b.kind == "heading" and not is_admonition(b.text):
            return b.text
    return path.stem


# ---------------------------------------------------------------------------------------------
# HTML / Markdown
# ---------------------------------------------------------------------------------------------


def _apply_html_hints(drafts: list[_Draft], hints: HtmlHints) -> list[_Draft]:
    """Restore list nesting/markers and bold-titled list entries from the DOM hints."""
    heading_depth = -1
    out: list[_Draft] = []
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
            out.append(_Draft("heading", label, page=d.page, tag_depth=heading_depth + hint.depth_below_heading))
    return out


def _unwrap_admonition_tables(drafts: list[_Draft]) -> list[_Draft]:
    """A layout table that only frames a "Note"/"Warning" box becomes that heading + paragraphs."""
    out: list[_Draft] = []
    for d in drafts:
        cells = [c for r in d.rows or () for c in r if c]
        if d.kind == "table" and len(cells) >= 2 and is_admonition(cells[0]) and len(d.rows or ()) <= 4:
            out.append(_Draft("heading", cells[0], page=d.page, admonition=True))
            out.extend(_Draft("paragraph", c, page=d.page) for c in cells[1:])
        else:
            out.append(d)
    return out


def _html_like(path: Path, html_text: str, elements: list[Any], fmt: str) -> ParsedDocument:
    hints = html_hints(html_text)
    drafts = [d for d in (_draft_from_element(e) for e in elements) if d is not None]
    drafts = _unwrap_admonition_tables(drafts)
    drafts = _apply_html_hints(drafts, hints)
    blocks = _resolve_levels(drafts, use_numbering=True)
    title = _document_title([hints.title if fmt == "html" else None], blocks, path)
    return ParsedDocument(title=title, format=fmt, blocks=tuple(blocks))


def _parse_html(path: Path, text: str) -> ParsedDocument:
    from unstructured.partition.html import partition_html

    # strip an XML declaration: lxml refuses str input that declares an encoding
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    elements = _partition(partition_html, path, text=text, languages=[""])
    return _html_like(path, text, elements, "html")


def _parse_md(path: Path, text: str) -> ParsedDocument:
    import markdown
    from unstructured.partition.md import partition_md

    text = normalise_list_indent(text)  # 2/3-space GFM nesting -> the 4-space steps Python-Markdown needs
    elements = _partition(partition_md, path, text=text, extensions=list(_MD_EXTENSIONS), languages=[""])
    html_text = markdown.markdown(text, extensions=list(_MD_EXTENSIONS))
    return _html_like(path, html_text, elements, "md")


# ---------------------------------------------------------------------------------------------
# TXT
# ---------------------------------------------------------------------------------------------


def _parse_txt(path: Path, text: str) -> ParsedDocument:
    from unstructured.partition.text import partition_text

    elements = _partition(partition_text, path, text=text, languages=[""])
    lines = text.replace("\r\n", "\n").split("\n")
    drafts: list[_Draft] = []
    pos = 0
    for el in elements:
        d = _draft_from_element(el)
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
                d = _Draft("heading", clean_text(src[0]), tag_depth=0 if underline.group(1)[0] == "=" else 1)
                d.admonition = is_admonition(d.text)
            elif indent >= 4 and d.kind != "list_item":
                in_list = prev is not None and prev.kind == "list_item"
                if in_list and indent < 8 and not _CODEISH.search(" ".join(src)):
                    d = replace(d, kind="list_item", marker=None, level=prev.level if prev else 0)
                else:
                    d = _Draft("code", clean_code("\n".join(ln[min(indent, 8 if in_list else indent) :] for ln in src)))
        if (
            d.kind == "heading"
            and _heading_number_depth(d.text) is None
            and not d.admonition
            and (_CODEISH.search(d.text) or d.text.endswith((".", ":", ";", ",")))
        ):
            d = replace(d, kind="paragraph")
        drafts.append(d)
    blocks = _resolve_levels(drafts, use_numbering=True)
    return ParsedDocument(title=_document_title([], blocks, path), format="txt", blocks=tuple(blocks))


# ---------------------------------------------------------------------------------------------
# DOCX / PPTX
# ---------------------------------------------------------------------------------------------

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


def _merge_code_runs(drafts: list[_Draft]) -> list[_Draft]:
    """Consecutive code paragraphs (one per line, as Word users type them) form one code block."""
    out: list[_Draft] = []
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


def _parse_docx(path: Path) -> ParsedDocument:
    from unstructured.partition.docx import partition_docx

    elements = _partition(partition_docx, path, filename=str(path), languages=[""], include_page_breaks=False)
    code_keys, list_info = _docx_hints(path)
    drafts: list[_Draft] = []
    counters: dict[int, int] = {}
    for el in elements:
        d = _draft_from_element(el)
        if d is None:
            continue
        k = norm_key(str(el.text or ""))
        if d.kind in ("paragraph", "heading") and k in code_keys:
            d = _Draft("code", clean_code(str(el.text or "")), page=d.page)
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
    drafts = _merge_code_runs(_unwrap_admonition_tables(drafts))
    blocks = _resolve_levels(drafts, use_numbering=True)
    return ParsedDocument(title=_document_title([_docx_title(path)], blocks, path), format="docx", blocks=tuple(blocks))


def _parse_pptx(path: Path) -> ParsedDocument:
    from unstructured.partition.pptx import partition_pptx

    elements = _partition(partition_pptx, path, filename=str(path), languages=[""])
    drafts: list[_Draft] = []
    for d in (_draft_from_element(e) for e in elements):
        if d is None:
            continue
        # only a slide title (depth 0) is a heading; deeper "titles" are body-placeholder lines
        if d.kind == "heading" and (d.tag_depth or 0) > 0 and not d.admonition:
            d = replace(d, kind="list_item", level=(d.tag_depth or 1) - 1, marker="•", tag_depth=None)
        drafts.append(d)
    drafts = _unwrap_admonition_tables(drafts)
    blocks = _resolve_levels(drafts, use_numbering=False)
    return ParsedDocument(title=_document_title([], blocks, path), format="pptx", blocks=tuple(blocks))


# ---------------------------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------------------------


def _ocr_languages(settings: Settings) -> list[str]:
    return [x for x in re.split(r"[+,\s]+", settings.ocr_languages) if x] or ["eng"]


def _parse_pdf(path: Path, settings: Settings) -> ParsedDocument:
    """Text PDFs take the fast pdfium path; scanned pages (all, or some in a mixed file) go to OCR."""
    from ingest.pdf_fast import ocr_pages, read_fast

    fast = read_fast(path)  # a password, a damaged file or no pages: a clear CorruptDocumentError
    if len(fast.scanned) == fast.pages or not fast.blocks:
        return _parse_pdf_unstructured(path, settings)
    blocks = list(fast.blocks)
    warnings = list(fast.warnings)
    ocr_used = False
    if fast.scanned:
        missing = ocr_tools_missing()
        listed = ", ".join(map(str, fast.scanned))
        if settings.ocr == "never" or missing:
            why = "OCR is off" if settings.ocr == "never" else "OCR tools missing: " + ", ".join(missing)
            warnings.append(f"pages without a text layer (not OCRed, {why}): {listed}")
        else:
            extra = ocr_pages(path, fast.scanned, lambda sub: _ocr_blocks(sub, settings))
            blocks = _insert_pages(blocks, extra)
            ocr_used = bool(extra)
            warnings.append(f"pages OCRed (no text layer): {listed}")
    title = _document_title([fast.title], blocks, path)
    return ParsedDocument(
        title=title, format="pdf", blocks=tuple(blocks), pages=fast.pages, ocr_used=ocr_used, warnings=tuple(warnings)
    )


def _ocr_blocks(path: Path, settings: Settings) -> list[Block]:
    """OCR a (sub-)PDF with unstructured; its "titles" stay paragraphs so the outline's tree stands."""
    from unstructured.partition.pdf import partition_pdf

    elements = _partition(
        partition_pdf, path, filename=str(path), strategy="ocr_only", languages=_ocr_languages(settings)
    )
    drafts = [d for d in (_draft_from_element(e) for e in elements) if d is not None and d.text]
    return [replace(d, kind="paragraph").block() if d.kind == "heading" else d.block() for d in drafts]


def _insert_pages(blocks: list[Block], extra: dict[int, list[Block]]) -> list[Block]:
    """Put OCRed pages' blocks where their pages sit in the reading order."""
    out: list[Block] = []
    pending = sorted(extra)
    for b in blocks:
        while pending and b.page is not None and pending[0] < b.page:
            out.extend(extra[pending.pop(0)])
        out.append(b)
    for n in pending:
        out.extend(extra[n])
    return out


def _parse_pdf_unstructured(path: Path, settings: Settings) -> ParsedDocument:
    """A PDF without a usable text layer: unstructured's partitioner, OCR when allowed."""
    from unstructured.partition.pdf import partition_pdf

    info = inspect_pdf(path)
    warnings: list[str] = []
    scanned = info.text_chars < 20
    use_ocr = settings.ocr == "always" or (scanned and settings.ocr == "auto")
    if scanned and settings.ocr == "never":
        raise EmptyDocumentError(
            f"{path.name} has no text layer: it looks like a scanned (image-only) PDF",
            'enable OCR (ocr = "auto" or KB_OCR=auto) with tesseract-ocr and poppler-utils installed',
        )
    if use_ocr:
        missing = ocr_tools_missing()
        if missing:
            what = "looks like a scanned (image-only) PDF" if scanned else 'needs OCR (ocr = "always")'
            raise EmptyDocumentError(
                f"{path.name} {what}, but OCR tools are missing: {', '.join(missing)}",
                f"install them (apt-get install {' '.join(missing)}) or export the PDF with a text layer",
            )
    if info.empty_pages and not use_ocr and len(info.empty_pages) < info.pages:
        warnings.append(f"pages without a text layer (not OCRed): {', '.join(map(str, info.empty_pages))}")

    langs = _ocr_languages(settings)
    strategy = "ocr_only" if use_ocr else "fast"
    elements = _partition(partition_pdf, path, filename=str(path), strategy=strategy, languages=langs)
    no_text = not any(str(e.text or "").strip() for e in elements)
    if no_text and not use_ocr and settings.ocr != "never" and not ocr_tools_missing():
        elements = _partition(partition_pdf, path, filename=str(path), strategy="ocr_only", languages=langs)
        use_ocr = True
    if not any(str(e.text or "").strip() for e in elements):
        hint = (
            "enable OCR (KB_OCR=auto) and install tesseract-ocr and poppler-utils"
            if settings.ocr == "never" or ocr_tools_missing()
            else "the PDF may be blank or its images unreadable"
        )
        raise EmptyDocumentError(f"no text found in {path.name} (a scanned PDF?)", hint)

    fonts = FontHints() if use_ocr else font_hints(path)
    drafts = _pdf_drafts(elements, fonts, info.pages)
    numbered = sum(1 for d in drafts if d.kind == "heading" and _heading_number_depth(d.text))
    blocks = _resolve_levels(drafts, use_numbering=numbered > 0)
    title = _document_title([info.title], blocks, path)
    return ParsedDocument(
        title=title, format="pdf", blocks=tuple(blocks), pages=info.pages, ocr_used=use_ocr, warnings=tuple(warnings)
    )


def _pdf_drafts(elements: list[Any], fonts: FontHints, pages: int) -> list[_Draft]:
    drafts = [d for d in (_draft_from_element(e) for e in elements) if d is not None and d.text]
    # running headers/footers: the same text (digits ignored) at the top or bottom of many pages
    by_page: dict[int, list[int]] = {}
    for i, d in enumerate(drafts):
        if d.page is not None:
            by_page.setdefault(d.page, []).append(i)

    def edge_positions(idxs: list[int]) -> set[int]:
        """First/last element of a page, and whatever unstructured put in header/footer position."""
        return {i for i in idxs if i in (idxs[0], idxs[-1]) or drafts[i].edge}

    seen_on: dict[str, set[int]] = {}
    for idxs in by_page.values():
        for i in edge_positions(idxs):
            if len(drafts[i].text) <= 150:
                seen_on.setdefault(running_key(drafts[i].text), set()).add(drafts[i].page or 0)
    threshold = max(3, (pages + 1) // 2)
    drop: set[int] = set()
    for idxs in by_page.values():
        if len(idxs) < 2:
            continue  # never drop a page's only text
        for i in edge_positions(idxs):
            d = drafts[i]
            repeated = len(seen_on.get(running_key(d.text), ())) >= threshold
            if is_page_number(d.text) or (pages >= 3 and len(d.text) <= 150 and repeated):
                drop.add(i)
    out: list[_Draft] = []
    has_numbered = any(d.kind == "heading" and _heading_number_depth(d.text) for d in drafts)
    for i, d in enumerate(drafts):
        if i in drop:
            continue
        d.tag_depth = None
        code = fonts.code_lines(d.page, d.text) if d.kind in ("paragraph", "heading", "list_item") else None
        if code:
            out.append(_Draft("code", clean_code("\n".join(code)), page=d.page))
            continue
        k = norm_key(d.text)
        big = any(k.startswith(h) for h in fonts.heading_keys if len(h) >= 3)
        numbered = _heading_number_depth(d.text) is not None
        if d.kind == "heading" and not d.admonition:
            if not (numbered or big or (not has_numbered and not fonts.heading_keys and _title_like(d.text))):
                d = replace(d, kind="paragraph")
        elif d.kind == "paragraph" and _title_like(d.text) and (big or (d.edge and numbered)):
            # unstructured calls a heading at the top of a page "Header"; fonts say otherwise
            d = replace(d, kind="heading", admonition=is_admonition(d.text))
        out.append(d)
    return _join_pdf_fragments(out)


def _title_like(text: str) -> bool:
    return len(text.split()) <= 12 and not text.endswith((".", ":", ",", ";")) and not _CODEISH.search(text)


def _join_pdf_fragments(drafts: list[_Draft]) -> list[_Draft]:
    """Re-join a list item or paragraph that pdfminer cut at a line break (same page, lower-case start)."""
    out: list[_Draft] = []
    for d in drafts:
        prev = out[-1] if out else None
        if (
            prev is not None
            and d.kind == "paragraph"
            and prev.kind in ("paragraph", "list_item")
            and prev.page == d.page
            and d.text[:1].islower()
            and not prev.text.endswith((".", ":", "!", "?"))
        ):
            prev.text = f"{prev.text} {d.text}"
            continue
        out.append(d)
    return out
