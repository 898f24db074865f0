"""What the index stores and returns, shared by the index and its local mirror (so neither imports the other)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kb.embed.base import Vector as Vector  # re-exported: what IndexPoint.vectors holds

_NS = uuid.UUID("6f1d3c2a-3b7e-4f52-9d0e-6b1f0c9a7e11")


def point_id(section_id: str, image_keys: Sequence[str]) -> str:
    """Deterministic: same section content and same images → same point."""
    return str(uuid.uuid5(_NS, section_id + ":" + ",".join(image_keys)))


@dataclass
class IndexPoint:
    id: str
    payload: dict[str, Any]
    vectors: dict[str, Vector] = field(default_factory=dict)  # signal name → its vector


@dataclass
class ScoredPoint:
    id: str
    score: float
    payload: dict[str, Any]
    scores: dict[str, float] = field(default_factory=dict)
