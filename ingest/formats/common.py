"""What every format family shares: text cleaning, unstructured elements -> draft blocks, heading levels.

unstructured does the partitioning; the families map its elements to `Draft`s with
`draft_from_element`, fix up what their format knows better, then `resolve_levels` turns the
drafts into `Block`s with heading levels 1..6.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.formats._offline import prepare_unstructured
from kb.errors import CorruptDocumentError, EmptyDocumentError, KbError
from kb.types import Block, BlockKind

NUMBERED = re.compile(r"^(?:(?:chapter|section|part|appendix)\s+)?([0-9]+(?:\.[0-9]+)*)\.?\s+\S", re.IGNORECASE)
CODEISH = re.compile(r"[=;{}<>|$]|^\s*(select|insert|update|delete|create|alter|drop)\s", re.IGNORECASE)
_LIST_MARK = re.compile(r"^(?:([0-9]{1,3}|[a-zA-Z])[.)]|[•◦▪‣∙·\-*–])\s+")
_WS = re.compile(r"\s+")


_ADMONITIONS = frozenset(
    {
        "note",
        "notes",
        "tip",
        "tips",
        "important",
        "warning",
        "caution",
        "danger",
        "hint",
        "attention",
        "注意",
        "警告",
        "注記",
        "ヒント",
        "重要",
    }
)


def is_admonition(text: str) -> bool:
    """ "Note", "Warning", ... titles belong to the section they sit in; they start no section."""
    return text.strip().rstrip(":").casefold() in _ADMONITIONS


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


def norm_key(text: str) -> str:
    """Text identity across two extractions of the same document (NFKC, whitespace, case folded)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def read_text(path: Path) -> str:
    """A text file's content (BOM / UTF-16 / charset guess); whitespace-only is an `EmptyDocumentError`."""
    data = path.read_bytes()
    text: str | None = None
    for enc in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        try:
            from charset_normalizer import from_bytes

            best = from_bytes(data).best()
            if best is not None:
                text = str(best)
        except ImportError:  # pragma: no cover - charset_normalizer ships with requests
            pass
    if text is None:
        text = data.decode("latin-1")
    if not text.strip():
        raise EmptyDocumentError(f"{path.name} is empty (only whitespace)", "upload a file with content")
    return text


def partition(fn: Callable[..., list[Any]], path: Path, **kwargs: Any) -> list[Any]:
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


@dataclass
class Draft:
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


def table_rows(html: str | None) -> tuple[tuple[tuple[str, ...], ...] | None, bool]:
    """Rows of an HTML table (colspans padded, ragged rows squared) and whether row 1 is a header."""
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


def draft_from_element(el: Any) -> Draft | None:
    """One unstructured element as a draft block; None for what carries no text (images, page breaks)."""
    cat = _category(el)
    md = el.metadata
    page = getattr(md, "page_number", None)
    raw = str(el.text or "")
    if cat in {"PageBreak", "PageNumber", "Image", "Picture"}:
        return None
    if cat == "Title":
        text = clean_text(raw)
        return Draft("heading", text, page=page, tag_depth=md.category_depth, admonition=is_admonition(text))
    if cat == "CodeSnippet":
        return Draft("code", clean_code(raw), page=page)
    if cat == "Table":
        rows, header = table_rows(getattr(md, "text_as_html", None))
        if rows:
            return Draft("table", clean_text(raw), rows=rows, header=header, page=page)
        return Draft("paragraph", clean_text(raw), page=page)
    if cat == "ListItem":
        text = clean_text(raw)
        marker = "•"
        m = _LIST_MARK.match(text)
        if m:
            marker = m.group(1) + "." if m.group(1) else "•"
            text = text[m.end() :].strip()
        return Draft("list_item", text, level=0, marker=marker, page=page)
    if cat == "Formula":
        return Draft("formula", clean_code(raw), page=page)
    if cat == "FigureCaption":
        return Draft("caption", clean_text(raw), page=page)
    text = clean_text(raw)
    if cat in {"Header", "Footer"}:
        return Draft("paragraph", text, page=page, edge=True)
    return Draft("paragraph", text, page=page)


def heading_number_depth(text: str) -> int | None:
    """2 for "3.1 Scope", None for an unnumbered heading (or a long numbered sentence)."""
    m = NUMBERED.match(text)
    if not m or len(text.split()) > 20:
        return None
    return len(m.group(1).split("."))


def resolve_levels(drafts: list[Draft], *, use_numbering: bool) -> list[Block]:
    """Heading levels 1..6: rank of (markup depth, numbering depth); admonitions sit one below."""
    keys: dict[int, tuple[int, int]] = {}
    for i, d in enumerate(drafts):
        if d.kind != "heading" or d.admonition:
            continue
        num = heading_number_depth(d.text) if use_numbering else None
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


def document_title(candidates: Sequence[str | None], blocks: Sequence[Block], path: Path) -> str:
    """The first non-empty candidate (metadata title), else the first real heading, else the file stem."""
    for c in candidates:
        if c and clean_text(c):
            return clean_text(c)
    for b in blocks:
        if b.kind == "heading" and not is_admonition(b.text):
            return b.text
    return path.stem


def unwrap_admonition_tables(drafts: list[Draft]) -> list[Draft]:
    """A layout table that only frames a "Note"/"Warning" box becomes that heading + paragraphs."""
    out: list[Draft] = []
    for d in drafts:
        cells = [c for r in d.rows or () for c in r if c]
        if d.kind == "table" and len(cells) >= 2 and is_admonition(cells[0]) and len(d.rows or ()) <= 4:
            out.append(Draft("heading", cells[0], page=d.page, admonition=True))
            out.extend(Draft("paragraph", c, page=d.page) for c in cells[1:])
        else:
            out.append(d)
    return out
