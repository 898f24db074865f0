"""Streamed responses that stop the model's work when the client goes away.

Starlette runs a sync body iterator in the thread pool and, on disconnect, only cancels the `await` around the
next chunk: the sync generator is left suspended, so its `finally` (close the VLM server's stream, stop the
in-process generation) runs only when the garbage collector gets to it, and the upstream keeps generating.
`cancellable_stream` checks for the disconnect between chunks and always closes the sync generator, in the
thread pool, once the response ends for any reason (done, client gone, cancelled).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.responses import StreamingResponse

_END = object()


def _next(it: Iterator[str]) -> object:
    return next(it, _END)


async def cancellable_stream(request: Request, chunks: Iterator[str]) -> AsyncIterator[str]:
    try:
        while not await request.is_disconnected():
            # not abandoned on cancel: the thread finishes its `next` (one chunk away) before we close the generator
            chunk = await anyio.to_thread.run_sync(_next, chunks)
            if chunk is _END:
                return
            assert isinstance(chunk, str)
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):  # close even when the response task is being cancelled
            await anyio.to_thread.run_sync(getattr(chunks, "close", lambda: None))


def event_stream(request: Request, chunks: Iterator[str]) -> StreamingResponse:
    """An SSE response over `chunks` whose generator is closed as soon as the client leaves."""
    return StreamingResponse(
        cancellable_stream(request, chunks), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
