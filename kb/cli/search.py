"""`kb search` and `kb ask`: retrieval and answers."""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager
from typing import Annotated, Any

import typer

from kb.cli._client import ServerOpt, server_url
from kb.cli._common import ConfigOpt, app, err, load_settings, note, note_once, out, run
from kb.cli._common import fail as fail_with


def snippet(text: str, limit: int = 300) -> str:
    """The start of a passage on one line, cut at a word."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + " …"


def one_shot_process() -> AbstractContextManager[None]:
    """This process answers one question and exits: embed it in numpy on one BLAS thread (tiny matrices; more
    threads only contend) instead of importing torch for it."""
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from kb.embed.dense import numpy_queries

    return numpy_queries()


def check_input(question: str, k: int | None) -> None:
    """Refuse a blank question or k < 1 before anything loads."""
    if not question.strip():
        fail_with("the question is empty", 'ask something, e.g. kb search "p99 latency of POST /payments"')
    if k is not None and k < 1:
        fail_with(f"--k must be at least 1 (got {k})", "pass --k 1 or more (default: KB_TOP_K, 8)")


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int | None, typer.Option("--k", "-k", help="number of hits")] = None,
    doc: Annotated[list[str] | None, typer.Option("--doc", "-d", help="limit to these document ids")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="limit to documents with these tags")] = None,
    signal: Annotated[
        list[str] | None, typer.Option("--signal", help="use only these signals: image, text, bm25")
    ] = None,
    diverse: Annotated[
        bool | None, typer.Option("--diverse/--no-diverse", help="per-document quota (default: automatic)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable hits")] = False,
    server: ServerOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Retrieve the best sections across all documents."""
    check_input(question, k)
    from rich.markup import escape

    url = server_url(server)
    if url:
        from kb.cli._client import Server

        with Server(url) as remote:
            hits = remote.search(question, k=k, doc_ids=doc, tags=tag, signals=signal, diverse=diverse)
        used = f"the kb server at {url}"
    else:
        from kb.retrieve import SearchOptions
        from kb.service import KnowledgeBase

        settings = load_settings(config)
        with one_shot_process(), KnowledgeBase(settings) as kb:
            profile = run(lambda: kb.resolve_models(announce=note_once(kb.settings.data_dir)))
            opts = SearchOptions(
                k=settings.top_k if k is None else k, doc_ids=doc, tags=tag, signals=signal, diversify=diverse
            )
            hits = run(lambda: kb.search(question, opts))
        used = profile.describe()
    if as_json:
        sys.stdout.write(json.dumps([h.to_json() for h in hits], ensure_ascii=False, indent=1) + "\n")
        return
    if not hits:
        out().print("No matching sections.")
    for n, h in enumerate(hits, 1):
        sig = " ".join(f"{s}={v:.3f}" for s, v in sorted(h.scores.items()))
        out().print(f"[bold]{escape(h.label(n))}[/]  [dim]score {h.score:.4f}  {sig}[/]", highlight=False)
        out().print(f"    {snippet(h.text)}", markup=False, highlight=False, soft_wrap=True)
        for p in h.images:
            out().print(f"    [dim]{escape(str(p))}[/]", highlight=False, soft_wrap=True)  # a path stays whole
    err().print(f"[dim]models: {escape(used)}[/]", highlight=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question")],
    doc: Annotated[list[str] | None, typer.Option("--doc", "-d", help="limit to these document ids")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="limit to documents with these tags")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="number of sections to retrieve")] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="what the model reads: image, text or image+text (default: setting)")
    ] = None,
    cross: Annotated[
        bool | None,
        typer.Option("--cross/--no-cross", help="answer document by document, then agreements (default: automatic)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable answer, citations, usage, timings")] = False,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="print the answer only when complete")] = False,
    server: ServerOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Answer a question from the documents with a vision-language model, citing the sources as [n]."""
    check_input(question, k)
    from kb.answer.backend import CONFIGURE_HINT, make_answerer
    from kb.answer.prepare import Scope, prepare_answer
    from kb.answer.run import AnswerStream, generate
    from kb.errors import KbError, VlmError
    from kb.service import KnowledgeBase

    if mode not in (None, "image", "text", "image+text"):
        fail_with(f"unknown --mode {mode!r}", "use image, text or image+text")
    url = server_url(server)
    if url:
        body = {"question": question, "k": k, "doc_ids": doc, "tags": tag, "mode": mode, "cross": cross}
        _ask_remote(url, body, as_json=as_json, stream=not (as_json or no_stream))
        return
    settings = load_settings(config)
    scope = Scope(k=k, doc_ids=doc, tags=tag, cross_document=cross, mode=mode)  # type: ignore[arg-type]
    with one_shot_process(), KnowledgeBase(settings) as kb:
        run(lambda: kb.resolve_models(announce=note_once(kb.settings.data_dir)))
        prep = run(lambda: prepare_answer(kb, question, scope))
    hits = prep.hits

    def fail(message: str, hint: str, partial: bool = False) -> None:
        if as_json:
            sys.stdout.write(
                json.dumps(
                    {
                        "answer": None,
                        "error": message,
                        "hint": hint,
                        "citations": [{"n": n, **h.to_json()} for n, h in enumerate(hits, 1)],
                        "notes": prep.prompt.notes,
                        "timings": prep.timings,
                    },
                    ensure_ascii=False,
                    indent=1,
                )
                + "\n"
            )
            raise typer.Exit(2)
        if partial:
            sys.stdout.write("\n")
            err().print("[bold red]the answer was cut off[/] — do not rely on the text above.")
        from rich.markup import escape

        err().print(f"[bold red]no answer:[/] {escape(message)}")  # a server's words are text, not markup
        if hint:
            err().print(f"[yellow]hint:[/] {escape(hint)}")
        _print_sources(hits, prep.prompt.notes, cited=set(), passages=True)
        raise typer.Exit(2)

    try:
        answerer = make_answerer(settings)
    except KbError as exc:  # unknown backend, or one that cannot be imported
        fail(exc.message, exc.hint or CONFIGURE_HINT)
        return
    if answerer is None:
        fail("no vision-language model is configured (KB_VLM_BACKEND=none), so there is no answer", CONFIGURE_HINT)
        return

    printed = False
    try:
        if as_json or no_stream:
            answer = generate(prep, answerer, settings)
            if not as_json:
                out().print(answer.text, markup=False, highlight=False)
        else:
            st = AnswerStream(prep, answerer, settings)
            for piece in st:
                printed = True
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            assert st.answer is not None
            answer = st.answer
    except VlmError as exc:
        fail(exc.message, exc.hint, partial=printed)
        return
    finally:
        answerer.close()
    if as_json:
        sys.stdout.write(json.dumps(answer.to_json(), ensure_ascii=False, indent=1) + "\n")
        return
    _print_sources(
        [c.hit for c in answer.citations],
        answer.notes,
        cited={c.n for c in answer.citations if c.cited},
        unsent=prep.prompt.dropped,
    )
    u = answer.usage
    err().print(
        f"[dim]{answer.backend} · {answer.model} · {u.images_sent} image(s), {u.visual_tokens} visual + "
        f"{u.text_tokens} text tokens in, {u.completion_tokens} out · {answer.timings.get('total', 0):.1f}s[/]"
    )


def _print_sources(
    hits: list[Any], notes: list[str], *, cited: set[int], unsent: list[Any] | None = None, passages: bool = False
) -> None:
    from rich.markup import escape

    if not hits:
        out().print("No matching sections in the knowledge base.")
    else:
        out().print("\n[bold]Sources[/]")
    for n, h in enumerate(hits, 1):
        mark = "" if not cited or n in cited else "[dim](not cited)[/] "
        out().print(f"{mark}[bold]{escape(h.label(n))}[/]", highlight=False)
        if passages:  # no answer to read: the passages are what the user gets
            out().print(f"    {snippet(h.text)}", markup=False, highlight=False, soft_wrap=True)
        for p in h.images:
            out().print(f"    [dim]{escape(str(p))}[/]", highlight=False, soft_wrap=True)
    for n, h in enumerate(unsent or [], len(hits) + 1):
        out().print(f"[dim](not sent to the model) {escape(h.label(n))}[/]", highlight=False)
    for line in notes:
        note(line)


def _ask_remote(url: str, body: dict[str, Any], *, as_json: bool, stream: bool) -> None:
    """`kb ask` through a running `kb serve`: the same answer, sources and errors as a local run."""
    from kb.cli._client import NoVlm, Server

    with Server(url) as remote:
        try:
            answer: dict[str, Any] | None = None
            if stream:
                for event, data in remote.ask_stream(body):
                    if event == "delta":
                        sys.stdout.write(data["text"])
                        sys.stdout.flush()
                    elif event == "answer":
                        sys.stdout.write("\n")
                        answer = data
                    elif event == "error":
                        sys.stdout.write("\n")
                        err().print("[bold red]the answer was cut off[/] — do not rely on the text above.")
                        fail_with(str(data.get("error")), "try again later")
            else:
                res = remote.http.post("/v1/ask", json=body)
                if res.status_code >= 400:
                    remote._raise(res)
                answer = res.json()
        except NoVlm as exc:
            hits = remote.search(
                str(body["question"]),
                k=body["k"],
                doc_ids=body["doc_ids"],
                tags=body["tags"],
                signals=None,
                diverse=None,
            )
            if as_json:
                cites = [{"n": n, **h.to_json()} for n, h in enumerate(hits, 1)]
                doc = {"answer": None, "error": exc.message, "hint": exc.hint, "citations": cites}
                sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
                raise typer.Exit(2) from None
            err().print(f"[bold red]no answer:[/] {exc.message}", highlight=False)
            err().print("[yellow]hint:[/] the server has no vision-language model: set KB_VLM_BACKEND there")
            _print_sources(hits, [], cited=set(), passages=True)
            raise typer.Exit(2) from None
        assert answer is not None
        if as_json:
            sys.stdout.write(json.dumps(answer, ensure_ascii=False, indent=1) + "\n")
            return
        if not stream:
            out().print(answer.get("answer") or answer.get("text") or "", markup=False, highlight=False)
        cites = answer.get("citations") or []
        _print_sources(
            [remote.hit(c) for c in cites],
            list(answer.get("notes") or []),
            cited={c["n"] for c in cites if c.get("cited")},
        )
