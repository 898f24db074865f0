"""The API side of uploads: stream each `UploadFile` into staging through kb.uploads (names, limits,
content checks, cleanup all live there)."""

from __future__ import annotations

from pathlib import Path

from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from kb import uploads
from kb.errors import RejectedUploadError
from kb.names import tenant_file_name
from kb.settings import Settings

CHUNK = 1 << 20


async def receive(upload: UploadFile, dest: Path, limits: uploads.UploadLimits) -> Path:
    """Stream one upload to `dest`, refusing it once it passes the size limit; nothing stays on failure."""
    with uploads.StagedFile(dest, limits) as staged:
        while chunk := await upload.read(CHUNK):
            staged.write(chunk)
        staged.finish_quick()
        # parsing page trees, zip directories and HTML is blocking work: off the event loop
        await run_in_threadpool(uploads.check_content, dest, limits)
    return dest


async def stage_all(files: list[UploadFile], tenant: str, root: Path, settings: Settings) -> uploads.StagedBatch:
    """Stage a request's files under the tenant's `root` (each in its own folder of one new batch) as
    `<tenant>--<clean name>`; on any refusal the whole batch goes and the error says which file and why."""
    limits = uploads.UploadLimits.for_api(settings)
    limits.check_count(len(files))
    batch = uploads.new_batch(root)
    staged: list[Path] = []
    try:
        for i, f in enumerate(files):
            name = tenant_file_name(tenant, f.filename)  # also its document id (kb.names)
            if any(p.name == name for p in staged):
                raise RejectedUploadError(f"two files in one upload share the name {name!r}", "rename one of them")
            staged.append(await receive(f, batch / str(i) / name, limits))
    except BaseException:
        uploads.discard(batch, root)
        raise
    return uploads.StagedBatch(batch, staged)
