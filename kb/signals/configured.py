"""The configured signals (`Embedders`), built from settings through the registry (nothing loads until first use)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from kb.embed.base import EmbedderSpec
from kb.errors import ConfigError
from kb.settings import Settings

if TYPE_CHECKING:
    from kb.embed.bm25 import Bm25Embedder
    from kb.embed.clip import ClipEmbedder
    from kb.embed.dense import SentenceEmbedder
    from kb.signals.base import Signal


class Embedders:
    """The configured signals, in order. Iterate for the `Signal`s; `signals` lists their names."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        names = [s.name for s in signals]
        if len(set(names)) != len(names):
            raise ConfigError(f"two signals share a name: {names}", "register each signal under its own name")
        self.by_name: dict[str, Signal] = {s.name: s for s in signals}

    @classmethod
    def of(
        cls, clip: ClipEmbedder | None = None, text: SentenceEmbedder | None = None, bm25: Bm25Embedder | None = None
    ) -> Embedders:
        """The built-in signals over models made elsewhere (benchmarks, tests)."""
        from kb.signals.builtin import Bm25Signal, ImageSignal, TextSignal

        made: list[Signal] = []
        if clip is not None:
            made.append(ImageSignal(clip))
        if text is not None:
            made.append(TextSignal(text))
        if bm25 is not None:
            made.append(Bm25Signal(bm25))
        return cls(made)

    def __iter__(self) -> Iterator[Signal]:
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)

    def get(self, name: str) -> Signal | None:
        return self.by_name.get(name)

    @property
    def signals(self) -> list[str]:
        """The configured signal names, in order."""
        return list(self.by_name)

    def specs(self) -> dict[str, EmbedderSpec]:
        """Loads the dense models (their dim is only known then)."""
        return {s.name: s.spec() for s in self}


def build_embedders(settings: Settings) -> Embedders:
    from kb.signals.registry import build, entries

    signals = build(settings)
    if not signals:
        raise ConfigError(
            "every retrieval signal is disabled", f"enable one of: {', '.join(e.enabled_by for e in entries())}"
        )
    return Embedders(signals)
