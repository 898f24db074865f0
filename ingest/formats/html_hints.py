"""Structure hints from the HTML DOM that unstructured's elements do not carry.

unstructured gives a flat element stream: a `<li>` whose text sits in a `<p>` comes out as plain
NarrativeText, ordered/unordered and item numbers are lost, and an `<li>` that starts with a bold
title paragraph (a common "numbered entry" layout) looks like body text. We walk the same DOM,
record a hint per block-level text in document order, and the parser pairs hints with elements by
normalised text (both streams are in reading order).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Literal

from lxml import etree
from lxml import html as lxml_html

_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "pre",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "table",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
        "header",
        "footer",
        "aside",
        "nav",
        "figure",
        "figcaption",
        "form",
        "fieldset",
        "hr",
        "address",
        "main",
        "details",
        "summary",
    ]
)
_LIST_TAGS = frozenset({"ul", "ol"})
_WS = re.compile(r"\s+")


def key(text: str) -> str:
    """Matching key: NFKC, whitespace collapsed, casefolded, first 120 chars."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()[:120]


@dataclass(frozen=True)
class Hint:
    role: Literal["item", "continuation", "pseudo_heading", "plain"]
    level: int = 0  # list nesting depth, 0 = top
    marker: str | None = None
    depth_below_heading: int = 1  # pseudo headings: levels below the enclosing real heading


@dataclass
class HtmlHints:
    title: str | None
    by_key: dict[str, deque[Hint]]

    def take(self, text: str) -> Hint | None:
        q = self.by_key.get(key(text))
        if q:
            return q.popleft()
        return None


def _tag(el: etree._Element) -> str:
    t = el.tag
    return t.lower() if isinstance(t, str) else ""


def _own_text(el: etree._Element) -> str:
    """Text of `el` up to its first nested block element (what unstructured emits for it)."""
    parts: list[str] = [el.text or ""]
    for child in el:
        if _tag(child) in _BLOCK_TAGS:
            break
        parts.append("".join(child.itertext()) if isinstance(child.tag, str) else "")
        parts.append(child.tail or "")
    return "".join(parts)


def _list_depth(li: etree._Element) -> int:
    return sum(1 for a in li.iterancestors() if _tag(a) in _LIST_TAGS) - 1


def _marker(li: etree._Element) -> str:
    parent = li.getparent()
    if parent is None or _tag(parent) != "ol":
        return "•"
    try:
        start = int(parent.get("start", "1"))
    except ValueError:
        start = 1
    idx = [c for c in parent if _tag(c) == "li"].index(li)
    return f"{start + idx}."


def _is_bold_title_p(p: etree._Element) -> bool:
    """`<p><b>Title</b></p>`: a paragraph that is only bold text."""
    if _tag(p) != "p" or (p.text or "").strip():
        return False
    kids = list(p)
    if len(kids) != 1 or _tag(kids[0]) not in {"b", "strong"} or (kids[0].tail or "").strip():
        return False
    text = "".join(kids[0].itertext()).strip()
    return 0 < len(text) <= 120


def _pseudo_heading_li(li: etree._Element) -> bool:
    kids = [c for c in li if isinstance(c.tag, str)]
    return (
        not (li.text or "").strip()
        and len(kids) >= 2
        and _is_bold_title_p(kids[0])
        and any(_tag(c) in _BLOCK_TAGS for c in kids[1:])
    )


def parse_dom(html_text: str) -> etree._Element | None:
    data = html_text.encode("utf-8")
    try:
        parser = lxml_html.HTMLParser(encoding="utf-8", remove_comments=True)
        root = lxml_html.document_fromstring(data, parser=parser)
    except (etree.ParserError, ValueError):
        return None
    return root  # type: ignore[no-any-return]


def html_hints(html_text: str) -> HtmlHints:
    root = parse_dom(html_text)
    by_key: dict[str, deque[Hint]] = defaultdict(deque)
    if root is None:
        return HtmlHints(None, by_key)

    title = None
    t = root.find(".//title")
    if t is not None and "".join(t.itertext()).strip():
        title = "".join(t.itertext())
    else:
        h1 = root.find(".//h1")
        if h1 is not None:
            title = "".join(h1.itertext())

    pseudo_lis = {li for li in root.iter("li") if _pseudo_heading_li(li)}

    def add(text: str, hint: Hint) -> None:
        k = key(text)
        if k:
            by_key[k].append(hint)

    for el in root.iter():
        tag = _tag(el)
        if tag not in _BLOCK_TAGS or tag in _LIST_TAGS or tag == "pre":
            continue
        # nearest enclosing li, and pseudo-heading lis above it
        li = next((a for a in ([el] if tag == "li" else []) + list(el.iterancestors()) if _tag(a) == "li"), None)
        pseudo_above = sum(1 for a in el.iterancestors() if a in pseudo_lis)
        if tag == "li" and el in pseudo_lis:
            continue  # its title paragraph is recorded below
        if li is None:
            add(_own_text(el), Hint("plain"))
            continue
        level = max(0, _list_depth(li) - sum(1 for a in li.iterancestors() if a in pseudo_lis))
        if li in pseudo_lis:
            kids = [c for c in li if isinstance(c.tag, str)]
            if el is kids[0]:
                add(_own_text(el), Hint("pseudo_heading", marker=_marker(li), depth_below_heading=pseudo_above + 1))
            else:
                add(_own_text(el), Hint("plain"))
            continue
        if tag == "li":
            own = _own_text(el)
            if own.strip():
                add(own, Hint("item", level=level, marker=_marker(el)))
            continue
        # a block inside an li: the first text-bearing block is the item text, the rest continue it
        first = next((c for c in li.iter() if c is not li and _tag(c) in _BLOCK_TAGS and _own_text(c).strip()), None)
        if not _own_text(li).strip() and el is first:
            add(_own_text(el), Hint("item", level=level, marker=_marker(li)))
        else:
            add(_own_text(el), Hint("continuation", level=level))
    return HtmlHints(title, by_key)
