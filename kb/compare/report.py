"""A diff as a report file (Markdown with a folder of images, or one self-contained HTML page)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from kb.catalog import DocumentRecord
from kb.compare.diff import Change, DiffResult, diff_views
from kb.compare.marks import OpenImage, side_by_side, side_image
from kb.compare.units import DocView, doc_view

MAX_IMAGES = 200  # changes shown with images; the rest are listed (bounds the report for any input)


@dataclass
class Comparison:
    rec_a: DocumentRecord
    rec_b: DocumentRecord
    view_a: DocView
    view_b: DocView
    result: DiffResult

    def change_image(self, change: Change, open_image: OpenImage) -> Image.Image:
        left = side_image(self.rec_a, self.view_a, change.units_a, change.context_a, open_image)
        right = side_image(self.rec_b, self.view_b, change.units_b, change.context_b, open_image)
        return side_by_side(left, right)


def compare(rec_a: DocumentRecord, rec_b: DocumentRecord) -> Comparison:
    va, vb = doc_view(rec_a), doc_view(rec_b)
    return Comparison(rec_a, rec_b, va, vb, diff_views(va, vb))


def _pages(p: list[int]) -> str:
    if not p:
        return ""
    return f" p. {p[0]}" if len(p) == 1 or p[0] == p[-1] else f" pp. {p[0]}–{p[-1]}"


def markdown(cmp: Comparison, image_ref: Callable[[int, Change], str | None] | None = None) -> str:
    r = cmp.result
    lines = [
        f"# Changes from {cmp.rec_a.title} ({r.a}) to {cmp.rec_b.title} ({r.b})",
        "",
        f"{len(r.changes)} change(s); {len(r.only_in_a)} section(s) only in A, {len(r.only_in_b)} only in B.",
        "",
    ]
    for n, c in enumerate(r.changes, 1):
        lines += [
            f"## {n}. {c.kind} · {c.category} · {c.summary}",
            "",
            f"- A: {c.section_a or '—'}{_pages(c.pages_a)}",
            f"- B: {c.section_b or '—'}{_pages(c.pages_b)}",
            "",
        ]
        if c.text_a:
            lines += [f"> **A:** {c.text_a}", ""]
        if c.text_b:
            lines += [f"> **B:** {c.text_b}", ""]
        ref = image_ref(n, c) if image_ref else None
        if ref:
            lines += [f"![change {n}: A left, B right, changed lines marked]({ref})", ""]
    for name, refs in (("Only in A", r.only_in_a), ("Only in B", r.only_in_b)):
        if refs:
            lines += [f"## {name}", ""]
            lines += [f"- {s.section}{_pages(s.pages)} ({s.units} units)" for s in refs]
            lines.append("")
    return "\n".join(lines)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_report(cmp: Comparison, out: Path, open_image: OpenImage) -> Path:
    """`out` ending in .html: one page with the images inline; else Markdown plus `<stem>_files/`."""
    if out.suffix.lower() in (".html", ".htm"):
        out.write_text(_html(cmp, open_image), encoding="utf-8")
        return out
    folder = out.with_name(out.stem + "_files")
    folder.mkdir(parents=True, exist_ok=True)

    def ref(n: int, c: Change) -> str | None:
        if n > MAX_IMAGES:
            return None
        p = folder / f"change-{n:03d}.png"
        p.write_bytes(_png(cmp.change_image(c, open_image)))
        return f"{folder.name}/{p.name}"

    out.write_text(markdown(cmp, ref), encoding="utf-8")
    return out


_CSS = """body{font-family:sans-serif;max-width:1700px;margin:1em auto;padding:0 1em}
.c{border-top:1px solid #ccc;padding:.5em 0}.k{font-weight:bold}.normative{color:#b00}.value{color:#a60}
.text{color:#555}blockquote{margin:.3em 0;padding:.2em .6em;background:#f6f6f6}img{max-width:100%;border:1px solid #ddd}"""


def _html(cmp: Comparison, open_image: OpenImage) -> str:
    r = cmp.result
    e = html.escape
    parts = [
        f"<!doctype html><meta charset=utf-8><title>{e(r.a)} → {e(r.b)}</title><style>{_CSS}</style>",
        f"<h1>Changes from {e(cmp.rec_a.title)} ({e(r.a)}) to {e(cmp.rec_b.title)} ({e(r.b)})</h1>",
        f"<p>{len(r.changes)} change(s); {len(r.only_in_a)} section(s) only in A, {len(r.only_in_b)} only in B.</p>",
    ]
    for n, c in enumerate(r.changes, 1):
        parts.append(
            f"<div class=c><div><span class=k>{n}. {e(c.kind)}</span> · <span class={c.category}>{c.category}</span>"
            f" · {e(c.summary)}</div><div>A: {e(c.section_a or '—')}{_pages(c.pages_a)} &nbsp; "
            f"B: {e(c.section_b or '—')}{_pages(c.pages_b)}</div>"
        )
        if c.text_a:
            parts.append(f"<blockquote><b>A:</b> {e(c.text_a)}</blockquote>")
        if c.text_b:
            parts.append(f"<blockquote><b>B:</b> {e(c.text_b)}</blockquote>")
        if n <= MAX_IMAGES:
            data = base64.b64encode(_png(cmp.change_image(c, open_image))).decode()
            parts.append(f'<img alt="change {n}: A left, B right" src="data:image/png;base64,{data}">')
        parts.append("</div>")
    for name, refs in (("Only in A", r.only_in_a), ("Only in B", r.only_in_b)):
        if refs:
            parts.append(f"<h2>{name}</h2><ul>")
            parts += [f"<li>{e(s.section)}{_pages(s.pages)} ({s.units} units)</li>" for s in refs]
            parts.append("</ul>")
    return "\n".join(parts)
