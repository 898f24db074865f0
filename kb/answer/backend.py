"""Answer backends: one base class, one registered class per backend, resolved by name or dotted path.

`KB_VLM_BACKEND` names a registered backend ("openai", "transformers"), "none" (retrieval only), or the
dotted path of any `AnswerBackend` subclass ("my_pkg.vlm:MyBackend" or "my_pkg.vlm.MyBackend"), so a new
backend needs no edit here: subclass `AnswerBackend`, then `register("name", MyBackend)` or point the
setting at the class. Built-ins are registered the same way, by path, so their heavy imports wait until
they are used.
"""

from __future__ import annotations

import copy
import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from kb.answer.types import Prompt
from kb.errors import ConfigError, VlmUnavailableError
from kb.settings import Settings

NONE = "none"  # answering off: retrieval only

CONFIGURE_HINT = (
    "configure a vision-language model: KB_VLM_BACKEND=openai with KB_VLM_BASE_URL (an OpenAI-compatible "
    "server such as `vllm serve Qwen/Qwen2.5-VL-7B-Instruct`, e.g. http://localhost:8000/v1) and KB_VLM_MODEL; "
    "or KB_VLM_BACKEND=transformers with KB_VLM_MODEL (a hub id or local folder) to run it in-process"
)


@dataclass(frozen=True)
class Readiness:
    """Whether a backend can answer now; `detail` is for operators (logs), not for end users."""

    ok: bool
    detail: str = ""


class AnswerBackend(ABC):
    """Turns a prepared multimodal Prompt into answer text, whole or streamed.

    Subclasses set `backend` (the name answers report), `model`, and implement `generate` (and `stream`
    when the model can stream). The defaults: nothing to load or close, always ready, not streaming."""

    backend: ClassVar[str] = ""
    can_stream: ClassVar[bool] = False  # True where `stream` yields pieces as the model produces them
    model: str

    def __init__(self) -> None:
        # token counts of the last generate/stream call (prompt_tokens, completion_tokens, ...)
        self.last_usage: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> AnswerBackend:
        """The backend for these settings. Loads nothing: the first answer (or `load()`) does."""
        raise NotImplementedError(f"{cls.__name__} does not say how to build itself from settings")

    def load(self) -> None:
        """Load what answering needs (a model's weights); a no-op when already loaded or nothing to load."""
        return None

    def close(self) -> None:
        """Release connections or memory. The backend is not used after this."""
        return None

    def ready(self) -> Readiness:
        """A cheap check that answering can work now (a server answers; a model is loaded or loadable)."""
        return Readiness(True)

    def for_request(self) -> AnswerBackend:
        """A shallow copy for one request: it shares connections and loaded weights, but keeps its own
        per-call state (`last_usage`), so concurrent requests never mix usage."""
        twin = copy.copy(self)
        twin.last_usage = {}
        return twin

    @abstractmethod
    def generate(self, prompt: Prompt) -> str:
        """The whole completion text."""

    def stream(self, prompt: Prompt) -> Iterator[str]:
        """Completion text in pieces as the model produces them (by default: all of it at once)."""
        yield self.generate(prompt)


# -- the registry ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Entry:
    target: type[AnswerBackend] | str  # the class, or its dotted path (imported on first use)
    hint: str = ""  # what to do when the class cannot be imported


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, target: type[AnswerBackend] | str, *, hint: str = "") -> None:
    """Make `KB_VLM_BACKEND=name` use `target` (a class, or "module:Class"). Re-registering replaces."""
    key = name.strip().lower()
    if not key or key == NONE:
        raise ValueError(f"{name!r} cannot name an answer backend")
    _REGISTRY[key] = _Entry(target, hint)


def names() -> list[str]:
    """The registered backend names (without "none")."""
    return sorted(_REGISTRY)


def resolve(name: str) -> type[AnswerBackend]:
    """The backend class for a registered name or a dotted class path."""
    key = name.strip()
    entry = _REGISTRY.get(key.lower())
    if entry is None and ("." not in key and ":" not in key):
        raise ConfigError(
            f"unknown answer backend {name!r}",
            f"set KB_VLM_BACKEND to one of: {', '.join([NONE, *names()])}, or the dotted path of an "
            "AnswerBackend subclass (my_package.module:MyBackend)",
        )
    entry = entry or _Entry(key)
    if not isinstance(entry.target, str):
        return entry.target
    module, _, attr = entry.target.partition(":") if ":" in entry.target else entry.target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise VlmUnavailableError(
            f"the {name} answering backend is not available: {exc}",
            entry.hint or f"check that {entry.target} can be imported",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, AnswerBackend)):
        raise ConfigError(f"{entry.target} is not an AnswerBackend subclass", "see kb/answer/backend.py")
    return cls


def make_answerer(settings: Settings) -> AnswerBackend | None:
    """The configured backend, or None when answering is off (`vlm_backend = "none"`). Loads nothing yet."""
    if settings.vlm_backend.strip().lower() == NONE:
        return None
    return resolve(settings.vlm_backend).from_settings(settings)


register("openai", "kb.answer.openai_backend:OpenAIAnswerer")
register(
    "transformers",
    "kb.answer.hf:TransformersAnswerer",
    hint="install the transformers extra, or use KB_VLM_BACKEND=openai with a served model",
)
