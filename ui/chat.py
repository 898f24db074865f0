"""The chat page: questions answered by the VLM from glyph images, with the numbered sources under each answer.

Follow-ups: the chat so far goes with each question to kb.answer.prepare_answer, which folds earlier
questions into the retrieval query of a follow-up ("it", "that document", ...) so the search finds what
"it" refers to.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Iterator
from typing import Any

import streamlit as st

from kb.answer import conversation
from kb.answer.conversation import Turn
from kb.answer.prepare import PreparedAnswer, Scope, prepare_answer
from kb.errors import KbError
from kb.images import ImageStore
from kb.labels import page_label
from kb.service import KnowledgeBase

HISTORY = "chat_messages"
EMPTY = (
    "The knowledge base is empty, so there is nothing to answer from. Next step: upload documents on the "
    "Admin page, or stop the UI and run `kb ingest PATH`."
)


def turns(history: list[dict[str, Any]]) -> list[Turn]:
    """The chat so far as the answering code reads it (alerts, sources and notes are display only)."""
    return conversation.turns(history)


# -- one turn ----------------------------------------------------------------------------------------
def _source(n: int, hit: Any, *, sent: bool, cited: bool) -> dict[str, Any]:
    path = list(hit.heading_path)
    if path and path[0] == hit.title:  # a document's top heading usually repeats its title
        path = path[1:]
    return {
        "n": n,
        "title": hit.title,
        "section": " › ".join(path),
        "pages": page_label(hit.pages),
        "score": float(hit.score),
        "image_keys": list(hit.image_keys),
        "text": hit.text,
        "sent": sent,
        "cited": cited,
    }


def _sources(prep: PreparedAnswer, cited: set[int]) -> list[dict[str, Any]]:
    srcs = [_source(s.n, s.hit, sent=True, cited=s.n in cited) for s in prep.prompt.sources]
    start = len(srcs) + 1
    srcs += [_source(n, h, sent=False, cited=False) for n, h in enumerate(prep.prompt.dropped, start)]
    return srcs


def answer_turn(
    kb: KnowledgeBase, question: str, history: list[dict[str, Any]], opts: dict[str, Any]
) -> dict[str, Any]:
    """Run one question inside the current assistant chat message; returns the message to keep in history."""
    from kb.answer.backend import CONFIGURE_HINT
    from kb.answer.run import AnswerStream
    from kb.errors import VlmUnavailableError
    from ui.state import get_answerer

    msg: dict[str, Any] = {"role": "assistant", "content": "", "sources": [], "notes": [], "alerts": []}
    if not kb.documents():
        msg["alerts"].append(("warning", EMPTY))
        _show_message(msg, kb.images)
        return msg
    try:
        with st.spinner("Searching the documents…"):
            scope = Scope(
                k=opts["k"], doc_ids=opts["doc_ids"] or None, cross_document=True if opts["compare"] else None
            )
            prep = prepare_answer(kb, question, scope, turns(history))
    except KbError as exc:
        msg["alerts"].append(("error", _with_hint(exc.message, exc.hint)))
        _show_message(msg, kb.images)
        return msg
    msg["notes"] = list(prep.notes)

    try:
        answerer = get_answerer(kb.settings)
    except VlmUnavailableError as exc:
        answerer = None
        msg["alerts"].append(("error", _with_hint(f"No answer: {exc.message}", exc.hint or CONFIGURE_HINT)))
    else:
        if answerer is None:
            msg["alerts"].append(
                (
                    "warning",
                    "No vision-language model is configured (KB_VLM_BACKEND=none), so there is no written "
                    f"answer — the sources below are what the search found. Next step: {CONFIGURE_HINT}.",
                )
            )
    if answerer is None:
        msg["sources"] = _sources(prep, set())
        _show_message(msg, kb.images)
        return msg

    stream = AnswerStream(prep, answerer, kb.settings)
    failure: list[KbError] = []

    def pieces() -> Iterator[str]:
        try:
            yield from stream
        except KbError as exc:  # VLM down or failing mid-answer, an in-process model that cannot load
            failure.append(exc)

    text = st.write_stream(pieces)
    msg["content"] = text if isinstance(text, str) else "".join(map(str, text))
    if failure:
        err = failure[0]
        head = "The answer was cut off — do not rely on the text above. " if msg["content"] else "No answer: "
        msg["alerts"].append(("error", _with_hint(head + err.message, err.hint)))
        msg["sources"] = _sources(prep, set())
    else:
        ans = stream.answer
        assert ans is not None
        msg["sources"] = _sources(prep, {c.n for c in ans.citations if c.cited})
        msg["docs"] = sorted({s.hit.doc for s in prep.sources})  # a follow-up keeps comparing these
        msg["cross_document"] = prep.cross_document
        msg["notes"] = list(ans.notes) + [n for n in msg["notes"] if n not in ans.notes]
        u = ans.usage
        msg["meta"] = (
            f"{ans.backend} · {ans.model} · {u.images_sent} image(s), {u.visual_tokens} visual + "
            f"{u.text_tokens} text tokens in, {u.completion_tokens} out · {ans.timings.get('total', 0):.1f} s"
        )
    _show_extras(msg, kb.images)
    return msg


def _with_hint(message: str, hint: str) -> str:
    return f"{message}\n\nNext step: {hint}" if hint else message


# -- display -----------------------------------------------------------------------------------------
def _show_message(msg: dict[str, Any], store: ImageStore) -> None:
    if msg["content"]:
        st.markdown(msg["content"])
    _show_extras(msg, store)


def _show_extras(msg: dict[str, Any], store: ImageStore) -> None:
    for kind, text in msg.get("alerts", []):
        (st.error if kind == "error" else st.warning)(text)
    if msg.get("sources"):
        show_sources(msg["sources"], store)
    for note in msg.get("notes", []):
        st.caption(f"Note: {note}")
    if msg.get("meta"):
        st.caption(msg["meta"])


def source_label(s: dict[str, Any]) -> str:
    parts = [f"[{s['n']}] {s['title']}"]
    if s["section"]:
        parts.append(f" › {s['section']}")
    if s["pages"]:
        parts.append(f" · {s['pages']}")
    parts.append(f" · score {s['score']:.3f}")
    if not s["sent"]:
        parts.append(" · not sent to the model")
    return "".join(parts)


def show_sources(sources: list[dict[str, Any]], store: ImageStore) -> None:
    st.markdown("**Sources**")
    any_cited = any(s["cited"] for s in sources)
    for s in sources:
        label = source_label(s)
        if any_cited and not s["cited"]:
            label += " · not cited"
        with st.expander(label):
            imgs = _stored(store, s.get("image_keys", []))
            if imgs:
                st.image(imgs, caption=[f"[{s['n']}] glyph image {i}" for i in range(1, len(imgs) + 1)])
            else:
                st.caption("The glyph image is no longer in the store (the document was deleted or re-ingested).")
            st.caption("Section text")
            st.text(s["text"])


def _stored(store: ImageStore, keys: list[str]) -> list[bytes]:
    out = []
    for k in keys:
        with contextlib.suppress(FileNotFoundError):  # deleted or re-ingested since the answer
            out.append(store.read(k))
    return out


# -- the page ----------------------------------------------------------------------------------------
def _reader_ok(kb: KnowledgeBase) -> bool:
    token = kb.settings.ui_reader_token
    if token is None or st.session_state.get("reader_ok"):
        return True
    st.title("Glyph KB")
    st.info("This knowledge base is protected. Enter the reader token to continue.")
    given = st.text_input("Reader token", type="password", key="reader_token_input")
    if given:
        if hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            st.session_state["reader_ok"] = True
            st.rerun()
        st.error("That token is not right. Ask the administrator for the reader token (KB_UI_READER_TOKEN).")
    return False


def _sidebar(kb: KnowledgeBase) -> dict[str, Any]:
    s = kb.settings
    docs = sorted(kb.documents(), key=lambda d: d.title.lower())
    names = {d.doc_id: f"{d.title} ({d.source_name})" for d in docs}
    with st.sidebar:
        st.header("Ask")
        doc_ids = st.multiselect(
            "Documents",
            list(names),
            format_func=lambda d: names.get(d, d),
            placeholder="All documents",
            help="Limit the search to these documents. Choosing several answers document by document.",
            key="chat_docs",
        )
        compare = st.toggle(
            "Compare documents",
            key="chat_compare",
            help="Answer per document, then what they agree and disagree on (on by itself for several documents).",
        )
        k = st.slider("Sources (k)", 1, 20, min(s.top_k, 20), key="chat_k", help="How many sections to retrieve.")
        if len(doc_ids) > 1:
            st.caption("Cross-document mode: several documents are selected.")
        st.divider()
        if s.vlm_backend == "none":
            st.caption("Model: none (retrieval only)")
        else:
            where = f" at {s.vlm_base_url}" if s.vlm_backend == "openai" else ""
            st.caption(f"Model: `{s.vlm_model}` · {s.vlm_backend}{where}")
        st.caption(f"Context: {s.context_mode} · {len(docs)} document(s)")
        if st.button("New conversation", key="chat_clear"):
            st.session_state[HISTORY] = []
            st.rerun()
    return {"doc_ids": doc_ids, "compare": compare, "k": k}


def render_chat(kb: KnowledgeBase) -> None:
    if not _reader_ok(kb):
        return
    opts = _sidebar(kb)
    st.title("Ask the knowledge base")
    history: list[dict[str, Any]] = st.session_state.setdefault(HISTORY, [])
    if not kb.documents():
        st.info(EMPTY)
    for msg in history:
        with st.chat_message(msg["role"]):
            if msg["role"] == "user":
                st.markdown(msg["content"])
            else:
                _show_message(msg, kb.images)
    question = st.chat_input("Ask a question about your documents")
    if not question or not question.strip():
        return
    question = question.strip()
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        reply = answer_turn(kb, question, history, opts)
    history.append({"role": "user", "content": question})
    history.append(reply)
