"""The thin client: with KB_SERVER_URL (or --server) set, `kb search`, `ask`, `ingest` and `docs` call a
running `kb serve` over HTTP instead of opening the store and loading models here. The server holds the
models warm, so a search answers in well under a second; the output is the local one.

Imports httpx and the standard library only; the server's key comes from KB_SERVER_KEY.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kb.cli._common import fail

if TYPE_CHECKING:
    import httpx

    from kb.hits import Hit

SERVER_ENV = "KB_SERVER_URL"
KEY_ENV = "KB_SERVER_KEY"
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help=f"URL of a running `kb serve` to use instead of the local store (or {SERVER_ENV})"),
]


def server_url(option: str | None) -> str | None:
    url = option or os.environ.get(SERVER_ENV) or ""
    return url.rstrip("/") or None


@dataclass
class RemoteResult:
    """One file of an upload job, shaped like ingest's IngestResult for the same summary table."""

    path: Path
    status: str
    doc_id: str | None = None
    sections: int = 0
    images: int = 0
    pages: int | None = None
    text_tokens: int = 0
    visual_tokens: int = 0
    error: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


class Server:
    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        key = os.environ.get(KEY_ENV, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(300.0, connect=5.0))

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        import httpx

        try:
            res = self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            fail(
                f"cannot reach the kb server at {self.url} ({type(exc).__name__})",
                f"start it with `kb serve`, or unset {SERVER_ENV} to use the local store",
            )
        if res.status_code in (401, 403):
            fail(
                f"the kb server at {self.url} refused the request ({res.status_code})",
                f"set {KEY_ENV} to a key from the server's KB_API_KEYS (an admin key for ingest)",
            )
        if res.status_code >= 400:
            try:
                body = res.json().get("error", {})
                message, hint = str(body.get("message") or res.text), str(body.get("hint") or "")
            except ValueError:
                message, hint = res.text[:300], ""
            fail(f"the kb server says: {message}", hint or "see the server's log")
        return res

    # -- the commands ----------------------------------------------------------------------------
    def search(self, question: str, *, k: int | None, doc_ids: Any, tags: Any, signals: Any, diverse: Any) -> list[Hit]:
        body = {"query": question, "k": k, "doc_ids": doc_ids, "tags": tags, "signals": signals, "diverse": diverse}
        hits = self.call("POST", "/v1/search", json=body).json()["hits"]
        return [self.hit(h) for h in hits]

    def hit(self, js: dict[str, Any]) -> Hit:
        from kb.hits import Hit

        pages = js.get("pages")
        return Hit(
            doc=js["doc"],
            title=js["title"],
            heading_path=list(js.get("heading_path") or []),
            pages=(int(pages[0]), int(pages[1])) if pages else None,
            text=js["text"],
            score=float(js["score"]),
            scores=dict(js.get("scores") or {}),
            image_keys=[],
            images=[self.url + u if u.startswith("/") else u for u in js.get("images") or []],
            section_id=js.get("section_id", ""),
            point_id="",
        )

    def documents(self) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = self.call("GET", "/v1/documents").json()["documents"]
        return docs

    def ask_stream(self, body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """SSE events of /v1/ask: ("delta", {"text"}), then ("answer", {...}) or ("error", {...})."""
        import json

        with self.http.stream("POST", "/v1/ask", json={**body, "stream": True}) as res:
            if res.status_code >= 400:
                res.read()
                self._raise(res)
            event = "message"
            for line in res.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    yield event, json.loads(line[5:])
                    event = "message"

    def _raise(self, res: httpx.Response) -> None:
        try:
            body = res.json().get("error", {})
        except ValueError:
            body = {"message": res.text[:300]}
        if res.status_code == 503 and "vision-language" in str(body.get("message", "")):
            raise NoVlm(str(body.get("message")), str(body.get("hint") or ""))
        fail(f"the kb server says: {body.get('message')}", str(body.get("hint") or "see the server's log"))

    def ingest(self, files: Sequence[Path], tags: list[str] | None, on_file: Any) -> list[RemoteResult]:
        """Upload in batches (the server takes a bounded number per request) and wait for each job."""
        results: list[RemoteResult] = []
        batch = 10
        for i in range(0, len(files), batch):
            part = files[i : i + batch]
            t0 = time.perf_counter()
            handles = [open(p, "rb") for p in part]  # noqa: SIM115 - closed below
            try:
                job = self.call(
                    "POST",
                    "/v1/documents",
                    files=[("files", (p.name, h)) for p, h in zip(part, handles, strict=True)],
                    data={"tags": tags or []},
                ).json()
            finally:
                for h in handles:
                    h.close()
            while job["status"] in ("queued", "running"):
                on_file(part[min(len(job["results"]), len(part) - 1)], i + len(job["results"]), len(files))
                time.sleep(0.2)
                job = self.call("GET", f"/v1/jobs/{job['id']}").json()
            by_name = {r.get("file"): r for r in job["results"]}
            for p in part:
                r = next((v for k, v in by_name.items() if k and str(k).endswith(p.name)), None) or {
                    "status": "failed",
                    "error": job.get("error") or "the server did not report this file",
                }
                results.append(
                    RemoteResult(
                        path=p,
                        status=r["status"],
                        doc_id=r.get("document"),
                        sections=int(r.get("sections") or 0),
                        images=int(r.get("images") or 0),
                        pages=r.get("pages"),
                        text_tokens=int(r.get("text_tokens") or 0),
                        visual_tokens=int(r.get("visual_tokens") or 0),
                        error=r.get("error"),
                        seconds=(time.perf_counter() - t0) / len(part),
                    )
                )
        return results


class NoVlm(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint
