"""Names that become ids: tenant names, uploaded file names, document ids (core: imports nothing of kb).

Two rules keep ids from colliding:
- a tenant name never contains the separator `--` and never ends with `-`, so in `<tenant>--<name>`
  the first `--` is always the one after the tenant: (tenant, name) -> id is one-to-one;
- a file name is kept as it is when it is already canonical (Unicode letters and digits, `.`, `_`,
  `-`); any name that cleaning changes gets a hash of the original name, so two different names never
  clean to one id by accident (`報告.md` stays `報告.md`; `a b.md` becomes `a-b~<hash>.md`).
The hash is of the name, not of the bytes: uploading a new version of `a b.md` replaces the old one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

SEPARATOR = "--"
# 1-40 characters; single hyphens only between other characters (no `--`, no leading/trailing `-`).
TENANT_NAME = re.compile(r"(?=[A-Za-z0-9_-]{1,40}\Z)[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*\Z")
TENANT_RULE = "1-40 of A-Z a-z 0-9 _ and single hyphens between them (no '--', no leading or trailing '-')"
HASH_CHARS = 12
MAX_STEM_BYTES = 120
# a canonical name may be longer: a staged upload carries `<tenant>--` in front of a cleaned stem
_MAX_CANONICAL_BYTES = MAX_STEM_BYTES + 42
MAX_EXT = 10
_HASH_SUFFIX = re.compile(rf"~[0-9a-f]{{{HASH_CHARS}}}\Z")
_EXT = re.compile(rf"[A-Za-z0-9]{{1,{MAX_EXT}}}\Z")


def valid_tenant(name: str) -> bool:
    return bool(TENANT_NAME.match(name))


def _keep(ch: str) -> bool:
    """Characters a canonical name may hold: letters, marks and digits of any script, `.`, `_`, `-`."""
    return ch in "._-" or unicodedata.category(ch)[0] in "LMN"


def _split_ext(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if dot and stem and _EXT.match(ext):
        return stem, ext
    return name, ""


def _canonical(name: str) -> bool:
    if not name or unicodedata.normalize("NFKC", name) != name or name[0] in ".-" or name[-1] in ".-":
        return False
    stem, _ext = _split_ext(name)
    m = _HASH_SUFFIX.search(stem)
    body = stem[: m.start()] if m else stem
    return bool(body) and all(_keep(c) for c in body) and len(body.encode()) <= _MAX_CANONICAL_BYTES


def is_doc_id(name: str) -> bool:
    """True for a name `doc_id_for` can return (so it is safe as a file name: no path, not hidden)."""
    return _canonical(name)


def clean_file_name(raw: str | None) -> str:
    """The last path component of `raw` as a safe, readable file name: unchanged when canonical, else
    cleaned (NFKC, control characters dropped, other characters -> `-`, bounded) with `~<hash>` added."""
    base = re.split(r"[/\\]", raw or "")[-1]
    if _canonical(base):
        return base
    name = unicodedata.normalize("NFKC", base)
    name = re.split(r"[/\\]", name)[-1]  # NFKC turns fullwidth slashes into real ones
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    stem, ext = _split_ext(name)
    stem = re.sub(r"-{2,}", "-", "".join(c if _keep(c) else "-" for c in stem)).strip(".-")
    while len(stem.encode()) > MAX_STEM_BYTES:
        stem = stem[:-1]
    stem = stem.rstrip(".-") or "upload"
    digest = hashlib.sha256(base.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{stem}~{digest}" + (f".{ext}" if ext else "")


def tenant_file_name(tenant: str, raw: str | None) -> str:
    """The staged name of a tenant's upload, which is also its document id."""
    if not valid_tenant(tenant):
        raise ValueError(f"invalid tenant name {tenant!r}: {TENANT_RULE}")
    return f"{tenant}{SEPARATOR}{clean_file_name(raw)}"


def doc_id_for(path: Path | str) -> str:
    """A document's id: its (clean) file name. Staged tenant uploads are already clean, so they keep
    their `<tenant>--` prefix."""
    return clean_file_name(Path(path).name)

