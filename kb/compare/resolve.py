"""Which ingested document an argument names: a document id, or the path of an ingested file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kb.catalog import Catalog, DocumentRecord, doc_id_for
from kb.errors import DocumentNotFoundError, KbError


class NotIngestedError(KbError):
    """A file exists but is not in the knowledge base (or changed since it was ingested)."""


def resolve_document(catalog: Catalog, ref: str) -> DocumentRecord:
    """The document `ref` names. A file that exists but is not ingested (or changed since) is an error
    that names the command to run; anything else unknown is a clear not-found error."""
    path = Path(ref)
    if ("/" not in ref and "\\" not in ref) and not ref.startswith("."):
        try:
            rec = catalog.get(ref)
        except DocumentNotFoundError:
            rec = None
        if rec is not None:
            return rec
    if path.is_file():
        rec = catalog.get(doc_id_for(path))
        if rec is None:
            raise NotIngestedError(f"{ref} is not ingested yet", f"run `kb ingest {ref}` first")
        with path.open("rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
        if sha != rec.file_sha256:
            raise NotIngestedError(
                f"{ref} changed since it was ingested as {rec.doc_id!r}", f"run `kb ingest {ref}` to update it"
            )
        return rec
    raise DocumentNotFoundError(f"no document or file {ref!r}", "see `kb docs` for ids, or give the path of a file")
