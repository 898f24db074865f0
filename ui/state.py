"""The one KnowledgeBase a UI process uses.

Embedded (local) Qdrant allows a single process and a single client per folder, so the UI opens the
store once and every session and page shares it while the app runs. The settings are read again on
each rerun; if they change (kb.toml edited) the old KnowledgeBase is closed and a new one opened.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import streamlit as st

from kb.answer.backend import AnswerBackend
from kb.service import KnowledgeBase
from kb.settings import Settings, load_settings


@dataclass
class _Holder:
    lock: threading.Lock = field(default_factory=threading.Lock)
    key: str | None = None
    kb: KnowledgeBase | None = None
    answerer: AnswerBackend | None = None
    answerer_key: str | None = None


@st.cache_resource(show_spinner=False)
def _holder() -> _Holder:
    return _Holder()


def _key(settings: Settings) -> str:
    # secrets dump masked, which is fine: tokens and API keys do not change what the store is
    return settings.model_dump_json()


def load() -> Settings:
    """The settings for this rerun (KB_* env vars, then KB_CONFIG or ./kb.toml). Raises ConfigError."""
    return load_settings()


def get_kb(settings: Settings | None = None) -> KnowledgeBase:
    """The process-wide KnowledgeBase for these settings (opened lazily: models load on first search)."""
    settings = settings or load()
    h = _holder()
    key = _key(settings)
    with h.lock:
        if h.kb is None or h.key != key:
            if h.kb is not None:
                h.kb.close()
            h.kb = KnowledgeBase(settings)
            h.key = key
        return h.kb


def get_answerer(settings: Settings) -> AnswerBackend | None:
    """The configured VLM backend, shared by the sessions (an in-process model loads once), or None when
    answering is off. Raises VlmUnavailableError when the configured backend cannot be used."""
    from kb.answer.backend import make_answerer

    h = _holder()
    key = _key(settings)
    with h.lock:
        if h.answerer_key != key:
            _close_answerer(h)
            h.answerer = make_answerer(settings)
            h.answerer_key = key
        return h.answerer


def _close_answerer(h: _Holder) -> None:
    if h.answerer is not None:
        h.answerer.close()
    h.answerer = None
    h.answerer_key = None


def reset() -> None:
    """Close the shared KnowledgeBase and answerer (tests; a settings change does this by itself)."""
    h = _holder()
    with h.lock:
        if h.kb is not None:
            h.kb.close()
        h.kb = None
        h.key = None
        _close_answerer(h)
