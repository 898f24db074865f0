"""The search hit: one retrieved section part with its images and per-signal scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kb.labels import page_label


@dataclass
class Hit:
    doc: str
    title: str
    heading_path: list[str]
    pages: tuple[int, int] | None
    text: str
    score: float
    scores: dict[str, float]
    image_keys: list[str]
    images: list[str]  # where each image lives: a path, or a URL for a remote store
    section_id: str
    point_id: str
    source_name: str = ""
    format: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def section(self) -> str:
        return " › ".join(self.heading_path)

    def label(self, n: int) -> str:
        """`[n] title › heading path, p. X` — the label a VLM sees next to the image."""
        where = f", {page_label(self.pages)}" if self.pages else ""
        path = f" › {self.section}" if self.heading_path else ""
        return f"[{n}] {self.title}{path}{where}"

    def to_json(self) -> dict[str, Any]:
        """The stable `kb search --json` shape."""
        return {
            "doc": self.doc,
            "title": self.title,
            "section": self.section,
            "pages": list(self.pages) if self.pages else None,
            "text": self.text,
            "score": self.score,
            "scores": self.scores,
            "images": list(self.images),
        }
