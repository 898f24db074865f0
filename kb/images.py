"""Content-addressed glyph image store: the key is the sha256 of the PNG bytes.

A local directory by default. `KB_IMAGE_STORE_URL` names any fsspec store instead (`s3://bucket/prefix`,
MinIO or another S3-compatible server via `KB_IMAGE_STORE_OPTIONS`, `gs://`, `az://`), so replicas on
different hosts share one image store without a shared filesystem.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from kb.errors import ImageStoreError, KbError
from kb.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from kb.settings import Settings

_KEY = re.compile(r"[0-9a-f]{64}")
_OBJECT = re.compile(r"(?:^|/)[0-9a-f]{2}/([0-9a-f]{64})\.png$")


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError(f"not an image key: {key!r}")
    return key


def relpath(key: str) -> str:
    """`ab/<key>.png`: two-character fan-out keeps directories (and object listings) small."""
    return f"{check_key(key)[:2]}/{key}.png"


class ImageStore(ABC):
    """Write-once PNGs by content key. A missing image raises FileNotFoundError from `read`."""

    @staticmethod
    def key_for(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store bytes once; writing the same image again is free."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def read(self, key: str) -> bytes: ...

    @abstractmethod
    def all_keys(self) -> Iterator[str]: ...

    @abstractmethod
    def remove(self, keys: Iterable[str]) -> int:
        """Delete these images; returns how many existed."""

    @abstractmethod
    def size_bytes(self) -> int: ...

    @abstractmethod
    def location(self, key: str) -> str:
        """Where the image lives: an absolute path, or a URL such as `s3://bucket/prefix/ab/<key>.png`."""

    def local_path(self, key: str) -> Path | None:
        """The file on this host, when the store is a local directory (served without a copy)."""
        return None

    def check(self) -> None:
        """Raise if the store cannot be reached (readiness)."""
        self.exists("0" * 64)

    def open_rgb(self, key: str) -> Image.Image:
        with Image.open(io.BytesIO(self.read(key))) as im:
            return im.convert("RGB")


class LocalImageStore(ImageStore):
    """No read cache: the OS page cache does that job (measured: no gain under eval/load_api.py)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / relpath(key)

    def put(self, data: bytes) -> str:
        key = self.key_for(data)
        p = self.path(key)
        if not p.exists():
            atomic_write_bytes(p, data)
        return key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def all_keys(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for p in self.root.glob("??/*.png"):
            if _KEY.fullmatch(p.stem):
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

    def location(self, key: str) -> str:
        return str(self.path(key).absolute())

    def local_path(self, key: str) -> Path | None:
        return self.path(key)


class FsspecImageStore(ImageStore):
    """Objects under `url` in any fsspec filesystem. Object stores make each PUT atomic, so a reader
    never sees half an image. Reads go through an in-memory LRU (by bytes): an image never changes
    under its key, so the cache needs no invalidation beyond this process's own deletes."""

    def __init__(self, url: str, options: dict[str, Any] | None = None, cache_bytes: int = 64 << 20) -> None:
        try:
            import fsspec.core

            fs, root = fsspec.core.url_to_fs(url, **(options or {}))
        except ImportError as exc:  # e.g. s3fs missing for s3://
            raise KbError(f"image store {url!r} needs a package that is not installed: {exc}") from exc
        except (ValueError, TypeError) as exc:
            raise KbError(f"image store {url!r}: {exc}") from exc
        self.url = url
        self.fs: AbstractFileSystem = fs
        self.root = str(root).rstrip("/")
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._cache_max = cache_bytes
        self._lock = threading.Lock()

    def _obj(self, key: str) -> str:
        return f"{self.root}/{relpath(key)}"

    @contextlib.contextmanager
    def _io(self, what: str) -> Iterator[None]:
        try:
            yield
        except (FileNotFoundError, KbError):
            raise
        except Exception as exc:  # each backend raises its own types (botocore, aiohttp, OSError, ...)
            raise ImageStoreError(
                f"image store {self.url}: {what} failed ({type(exc).__name__}: {exc})",
                "check that the store is reachable and KB_IMAGE_STORE_URL / KB_IMAGE_STORE_OPTIONS are right",
            ) from exc

    def put(self, data: bytes) -> str:
        key = self.key_for(data)
        if not self.exists(key):
            with self._io("writing an image"):
                self.fs.pipe_file(self._obj(key), data)
        return key

    def exists(self, key: str) -> bool:
        # Asked of the store itself, never of a cache or an old listing: another replica's `kb gc` may
        # have removed the image since, and a stale "yes" would skip the write and lose it.
        path = self._obj(key)
        self.fs.invalidate_cache(path)
        with self._io("looking up an image"):
            return bool(self.fs.exists(path))

    def read(self, key: str) -> bytes:
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return data
        path = self._obj(key)
        with self._io("reading an image"):
            data = bytes(self.fs.cat_file(path))
        with self._lock:
            if key not in self._cache and len(data) <= self._cache_max:
                self._cache[key] = data
                self._cached += len(data)
                while self._cached > self._cache_max:
                    self._cached -= len(self._cache.popitem(last=False)[1])
        return data

    def _listing(self) -> dict[str, int]:
        """Key → size of every stored image, listed afresh (other replicas write too)."""
        self.fs.invalidate_cache()
        try:
            with self._io("listing the images"):
                found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return {}
        finally:
            self.fs.invalidate_cache()  # keep no listing: `exists` must not answer from it
        out = {}
        for name, info in found.items():
            m = _OBJECT.search(name)
            if m:
                out[m.group(1)] = int(info.get("size") or 0)
        return out

    def all_keys(self) -> Iterator[str]:
        yield from self._listing()

    def remove(self, keys: Iterable[str]) -> int:
        n = 0
        for key in keys:
            with self._lock:
                self._cached -= len(self._cache.pop(key, b""))
            if self.exists(key):
                with self._io("deleting an image"):
                    self.fs.rm_file(self._obj(key))
                n += 1
        return n

    def size_bytes(self) -> int:
        return sum(self._listing().values())

    def location(self, key: str) -> str:
        return str(self.fs.unstrip_protocol(self._obj(key)))

    def check(self) -> None:
        self.fs.invalidate_cache()
        with contextlib.suppress(FileNotFoundError), self._io("listing the store"):  # nothing stored yet is fine
            self.fs.ls(self.root)  # an unreachable server or a refused credential raises
        self.fs.invalidate_cache()


def open_image_store(settings: Settings) -> ImageStore:
    """The store `settings` name: `KB_IMAGE_STORE_URL`, else `KB_DATA_DIR/images`."""
    url = settings.image_store_url.strip()
    if not url:
        return LocalImageStore(settings.images_dir)
    if "://" not in url or url.startswith("file://"):
        return LocalImageStore(Path(url.removeprefix("file://")).expanduser())
    return FsspecImageStore(url, settings.image_store_options, settings.image_cache_mb << 20)
