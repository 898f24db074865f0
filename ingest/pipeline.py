"""The preparer: one file → parse → sections → image-sized parts → glyph PNGs, as a `RenderedDocument`.

Knows no index, no catalog, no image store: the service (`kb/ingest_prepare.py`) stores, counts and
embeds what this returns, and `kb/ingest_commit.py` makes it the current version. Safe to run in a
worker process.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from PIL import Image

from ingest.accounting import ContentText
from ingest.formats import parse_file, supported_extensions
from ingest.render import GlyphRenderer, png_bytes
from ingest.sections import build_sections
from kb.labels import one_line
from kb.settings import RenderConfig, Settings
from kb.spans import encode_lines, line_spans
from kb.types import Section, doc_id_for

log = logging.getLogger(__name__)

# Bump when parsing/sectioning/rendering changes output, so unchanged files are re-rendered once.
PIPELINE_VERSION = "3"  # 2: honest text-token counts (ingest/accounting.py); 3: block spans and line boxes

Stage = Literal["parse", "section", "render", "store", "index", "done"]
StageCallback = Callable[[Path, Stage], None]


@dataclass
class RenderedPart:
    section: Section
    image: Image.Image
    png: bytes
    content: str = ""  # the part's content text, counted for compression (ingest/accounting.py)
    lines: str = ""  # kb.spans.encode_lines of the image's drawn lines


# RenderConfig fields added after stores existed: left out of the fingerprint at their defaults, so adding
# them re-renders nothing (a changed value still does).
_LATER_FIELDS = {"id_kinds": "all", "id_scale": 1.0, "id_tracking": 0.0, "id_bold": False}


def render_fingerprint(config: RenderConfig, token_counter: str) -> str:
    skip = {k for k, v in _LATER_FIELDS.items() if getattr(config, k) == v}
    raw = f"{PIPELINE_VERSION}|{config.model_dump_json(exclude=skip)}|{token_counter}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files given directly are yielded as-is (unsupported ones fail later with a reason);
    folders are walked recursively for supported files, hidden entries skipped."""
    exts = set(supported_extensions())
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if f.is_file() and not any(s.startswith(".") for s in rel) and f.suffix.lower() in exts:
                    yield f
        else:
            yield p


@dataclass
class RenderedDocument:
    """One file parsed, sectioned and rendered: what the service stores, counts, embeds and catalogues."""

    path: Path
    doc_id: str
    title: str
    format: str  # the registered format's name ("pdf", "md", ...)
    pages: int | None
    ocr_used: bool
    warnings: list[str] = field(default_factory=list)
    parts: list[RenderedPart] = field(default_factory=list)


def render_document(
    path: Path, settings: Settings, renderer: GlyphRenderer, *, on_stage: StageCallback | None = None
) -> RenderedDocument:
    """Parse, section and render one file (a `KbError` for bad input)."""
    doc_id = doc_id_for(path)
    if on_stage:
        on_stage(path, "parse")
    parsed = parse_file(path, settings)
    parsed = replace(parsed, title=one_line(parsed.title))  # a title is one bounded line, whatever the file says
    if on_stage:
        on_stage(path, "section")
    sections = build_sections(doc_id, parsed)
    if on_stage:
        on_stage(path, "render")
    parts: list[RenderedPart] = []
    content = ContentText(parsed.blocks)
    for sec in sections:
        for part in renderer.paginate(sec, parsed.title):
            img, drawn = renderer.render_lines(part, parsed.title)
            lines = encode_lines(line_spans(part, drawn))
            parts.append(RenderedPart(part, img, png_bytes(img), content.of(part), lines))
    return RenderedDocument(
        path=path,
        doc_id=doc_id,
        title=parsed.title,
        format=parsed.format,
        pages=parsed.pages,
        ocr_used=parsed.ocr_used,
        warnings=list(parsed.warnings),
        parts=parts,
    )
