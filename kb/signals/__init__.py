"""Retrieval signals: the base class, the built-ins and the registry (see registry.py)."""

from kb.signals.base import Passage, Signal
from kb.signals.builtin import BM25, IMAGE, TEXT
from kb.signals.registry import build, known, register, unregister

__all__ = ["BM25", "IMAGE", "TEXT", "Passage", "Signal", "build", "known", "register", "unregister"]
