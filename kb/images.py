"""Content-addressed glyph image store: the key is the sha256 of the PNG bytes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from kb.fsutil import atomic_write_bytes


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def key_for(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not an image key: {key!r}")
        return self.root / key[:2] / f"{key}.png"

    def put(self, data: bytes) -> str:
        """Store bytes once; writing the same image again is free."""
        key = self.key_for(data)
        p = self.path(key)
        if not p.exists():
            atomic_write_bytes(p, data)
        return key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def all_keys(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for p in self.root.glob("??/*.png"):
            yield p.stem

    def remove(self, keys: Iterable[str]) -> int:
        n = 0
        for key in keys:
            try:
                os.remove(self.path(key))
                n += 1
            except FileNotFoundError:
                pass
        return n

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("??/*.png")) if self.root.is_dir() else 0
