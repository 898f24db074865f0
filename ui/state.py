"""The one KnowledgeBase a UI process uses.

Embedded (local) Qdrant allows a single process and a single client per folder, so the UI opens the
store once and every session and page shares it while the app runs. The settings are read again on
each rerun; if they change (kb.toml edited) the old KnowledgeBase is closed and a new one opened.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import streamlit as st

from kb.answer.backend import AnswerBackend
from kb.service import KnowledgeBase
from kb.settings import Settings, load_settings

log = logging.getLogger(__name__)


@dataclass
class _Holder:
    lock: threading.Lock = field(default_factory=threading.Lock)
    key: str | None = None
    kb: KnowledgeBase | None = None
    answerer: AnswerBackend | None = None
    answerer_key: str | None = None
    health: Health | None = None


HEALTH_EVERY = 5.0  # seconds between checks of the model (each rerun of every session shares one result)


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str  # for the log and the administrator, never shown as the reader's message
    checked_at: float

    def age(self) -> float:
        return time.monotonic() - self.checked_at


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


def model_health(*, force: bool = False) -> Health:
    """Whether the assistant can answer now: the backend's own `ready()` check, run at most every
    HEALTH_EVERY seconds for the whole process (or now, with `force`: the Retry button)."""
    from kb.errors import KbError

    h = _holder()
    cur = h.health
    if cur is not None and not force and cur.age() < HEALTH_EVERY:
        return cur
    try:
        answerer = get_answerer(load())
        ready = answerer.ready() if answerer is not None else None
        ok, detail = (False, "no model configured") if ready is None else (ready.ok, ready.detail)
    except KbError as exc:
        ok, detail = False, f"{exc.message} ({exc.hint})"
    if not ok and (cur is None or cur.ok):
        log.warning("the assistant is not available: %s", detail)
    h.health = Health(ok, detail, time.monotonic())
    return h.health


def note_health(ok: bool, detail: str) -> None:
    """What an answer just showed about the model (fresher than the last check)."""
    _holder().health = Health(ok, detail, time.monotonic())


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
