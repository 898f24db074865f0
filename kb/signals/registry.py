"""The signals table: name → how to build the signal from settings (None when the settings switch it off).

The indexer, the retriever, the index schema, the API and the eval loop over the configured signals
instead of naming them. Adding one (say a ColQwen-style multivector over the glyph images) is a module
with a `Signal` subclass and a factory, plus `register("colqwen", factory, enabled_by="KB_COLQWEN_MODEL")`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from kb.settings import Settings
from kb.signals.base import Signal
from kb.signals.builtin import BM25, IMAGE, TEXT, bm25_signal, image_signal, text_signal

Factory = Callable[[Settings], Signal | None]


@dataclass(frozen=True)
class SignalEntry:
    name: str
    factory: Factory
    enabled_by: str  # the setting that switches it on, for error messages


_TABLE: dict[str, SignalEntry] = {}
_LOCK = threading.Lock()


def register(name: str, factory: Factory, *, enabled_by: str = "") -> None:
    """Add (or replace) a signal. Signals are built, indexed and fused in registration order."""
    with _LOCK:
        _TABLE[name] = SignalEntry(name, factory, enabled_by or f"the {name} signal's setting")


def unregister(name: str) -> None:
    with _LOCK:
        _TABLE.pop(name, None)


def entries() -> list[SignalEntry]:
    with _LOCK:
        return list(_TABLE.values())


def known() -> list[str]:
    """Every registered signal name, configured or not."""
    return [e.name for e in entries()]


def build(settings: Settings) -> list[Signal]:
    """The signals these settings switch on, in registration order (nothing loads yet)."""
    out = []
    for e in entries():
        sig = e.factory(settings)
        if sig is not None:
            if sig.name != e.name:
                raise ValueError(f"signal registered as {e.name!r} names itself {sig.name!r}")
            out.append(sig)
    return out


register(IMAGE, image_signal, enabled_by="KB_CLIP_MODEL")
register(TEXT, text_signal, enabled_by="KB_TEXT_MODEL")
register(BM25, bm25_signal, enabled_by="KB_BM25")
