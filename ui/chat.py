"""The chat page: questions answered by the VLM from glyph images, with the numbered sources under each answer.

A conversation: the chat so far goes with each question to kb.answer.prepare_answer, so the model receives
the earlier turns and a follow-up is searched with the questions before it. Each [n] in an answer opens its
source (ui.sources) with the lines that support the answer marked. When the model cannot answer, the reader
gets a plain sentence and the most relevant passages; the details go to an expander and the log.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

import streamlit as st

from kb.answer import conversation
from kb.answer.conversation import Turn
from kb.answer.prepare import PreparedAnswer, Scope, prepare_answer
from kb.errors import KbError
from kb.service import KnowledgeBase
from ui import sources as show

log = logging.getLogger(__name__)

HISTORY = "chat_messages"
RETRY = "chat_retry"  # a question to ask again (the Retry button after a failed answer)
EMPTY = (
    "The knowledge base is empty, so there is nothing to answer from. Next step: upload documents on the "
    "Admin page, or stop the UI and run `kb ingest PATH`."
)
DOWN = (
    "The assistant is not available right now. Here are the most relevant passages from your documents — "
    "try again in a moment (Retry in the sidebar)."
)
CUT = (
    "The assistant stopped before finishing, so the answer above is incomplete — do not rely on it. The most "
    "relevant passages are below; try again in a moment (Retry in the sidebar)."
)
NO_MODEL = (
    "No assistant is set up for this knowledge base, so there is no written answer. Here are the most "
    "relevant passages from your documents."
)
SEARCH_FAILED = "Searching the documents did not work just now. Try again in a moment (Retry in the sidebar)."


def turns(history: list[dict[str, Any]]) -> list[Turn]:
    """The chat so far as the answering code reads it (alerts, sources and notes are display only)."""
    return conversation.turns(history)


# -- one turn ----------------------------------------------------------------------------------------
def _source(n: int, label: str, hit: Any, *, sent: bool, cited: bool) -> dict[str, Any]:
    return {
        "n": n,
        "label": label,
        "doc": hit.doc,
        "image_keys": list(hit.image_keys),
        "text": hit.text,
        "sent": sent,
        "cited": cited,
    }


def _sources(prep: PreparedAnswer, cited: set[int]) -> list[dict[str, Any]]:
    srcs = [_source(s.n, s.label, s.hit, sent=True, cited=s.n in cited) for s in prep.prompt.sources]
    start = len(srcs) + 1
    srcs += [_source(n, h.label(n), h, sent=False, cited=False) for n, h in enumerate(prep.prompt.dropped, start)]
    return srcs


def _failed(msg: dict[str, Any], people: str, exc: KbError, question: str) -> None:
    """A plain sentence for the reader; what went wrong for the operator (an expander and the log)."""
    msg["alerts"].append(("error", people))
    msg["details"] = f"{exc.message}\n\nNext step: {exc.hint}" if exc.hint else exc.message
    msg["retry"] = question
    log.warning("chat: %s (%s)", exc.message, exc.hint)


def answer_turn(
    kb: KnowledgeBase, question: str, history: list[dict[str, Any]], opts: dict[str, Any]
) -> dict[str, Any]:
    """Run one question inside the current assistant chat message; returns the message to keep in history."""
    from kb.answer.backend import CONFIGURE_HINT
    from kb.answer.run import AnswerStream
    from kb.errors import VlmUnavailableError
    from ui.state import get_answerer, note_health

    turn = 1 + sum(m["role"] == "assistant" for m in history)
    msg: dict[str, Any] = {"role": "assistant", "content": "", "sources": [], "notes": [], "alerts": [], "turn": turn}
    if not kb.documents():
        msg["alerts"].append(("warning", EMPTY))
        _show_message(msg, kb)
        return msg
    try:
        with st.spinner("Searching the documents…"):
            scope = Scope(
                k=opts["k"], doc_ids=opts["doc_ids"] or None, cross_document=True if opts["compare"] else None
            )
            prep = prepare_answer(kb, question, scope, turns(history))
    except KbError as exc:
        _failed(msg, SEARCH_FAILED, exc, question)
        _show_message(msg, kb)
        return msg
    msg["notes"] = list(prep.notes)
    msg["docs"] = sorted({s.hit.doc for s in prep.sources})  # a follow-up keeps comparing these
    msg["cross_document"] = prep.cross_document

    try:
        answerer = get_answerer(kb.settings)
    except VlmUnavailableError as exc:
        answerer = None
        _failed(msg, DOWN, exc, question)
    else:
        if answerer is None:
            msg["alerts"].append(("info", NO_MODEL))
            msg["details"] = f"Answering is off (KB_VLM_BACKEND=none). To turn it on, {CONFIGURE_HINT}."
    if answerer is None:
        _finish(kb, msg, _sources(prep, set()))
        _show_message(msg, kb)
        return msg

    stream = AnswerStream(prep, answerer, kb.settings)
    failure: list[KbError] = []

    def pieces() -> Iterator[str]:
        try:
            yield from stream
        except KbError as exc:  # VLM down or failing mid-answer, an in-process model that cannot load
            failure.append(exc)

    live = st.empty()
    with live.container():
        text = st.write_stream(pieces)
    live.empty()
    msg["content"] = text if isinstance(text, str) else "".join(map(str, text))
    if failure:
        note_health(False, failure[0].message)
        _failed(msg, CUT if msg["content"] else DOWN, failure[0], question)
        _finish(kb, msg, _sources(prep, set()))
    else:
        note_health(True, "")
        ans = stream.answer
        assert ans is not None
        msg["notes"] = list(ans.notes) + [n for n in msg["notes"] if n not in ans.notes]
        u = ans.usage
        msg["meta"] = (
            f"{ans.model} · {u.images_sent} image(s), {u.visual_tokens} visual + "
            f"{u.text_tokens} text tokens in, {u.completion_tokens} out · {ans.timings.get('total', 0):.1f} s"
        )
        _finish(kb, msg, _sources(prep, {c.n for c in ans.citations if c.cited}))
    _show_message(msg, kb)
    return msg


def _finish(kb: KnowledgeBase, msg: dict[str, Any], srcs: list[dict[str, Any]]) -> None:
    """Keep the sources with their marked images and the overlays the answer's [n] links open."""
    msg["sources"] = srcs
    overlays = []
    for s in srcs:
        marked = show.mark(kb, s, msg["content"])
        s["images"] = marked.pngs
        s["marked"] = marked.marked
        overlays.append(show.overlay(msg["turn"], s, marked))
    msg["overlays"] = "\n".join(overlays)


# -- display -----------------------------------------------------------------------------------------
def _show_message(msg: dict[str, Any], kb: KnowledgeBase) -> None:
    kinds = {"error": st.error, "warning": st.warning, "info": st.info}
    for kind, text in msg.get("alerts", []):
        kinds.get(kind, st.error)(text)
    if msg.get("details"):
        with st.expander("Details (for the administrator)"):
            st.code(msg["details"], language=None, wrap_lines=True)
    if msg["content"] or msg.get("overlays"):
        body = show.linked_answer(msg["content"], msg.get("turn", 0), msg.get("sources", []))
        st.markdown(show.STYLE + body + msg.get("overlays", ""), unsafe_allow_html=True)
    if msg.get("sources"):
        show_sources(msg)
    for note in msg.get("notes", []):
        st.caption(f"Note: {note}")
    if msg.get("meta"):
        st.caption(msg["meta"])


def source_label(s: dict[str, Any], any_cited: bool) -> str:
    label = str(s["label"])
    if not s["sent"]:
        label += " · not sent to the model"
    elif any_cited and not s["cited"]:
        label += " · not cited"
    return label


def show_sources(msg: dict[str, Any]) -> None:
    sources = msg["sources"]
    st.markdown("**Sources** — click a number in the answer to open its source with the supporting lines marked")
    any_cited = any(s["cited"] for s in sources)
    for s in sources:
        with st.expander(source_label(s, any_cited)):
            imgs = s.get("images", [])
            if imgs:
                st.image(imgs, caption=[f"[{s['n']}] glyph image {i}" for i in range(1, len(imgs) + 1)])
            else:
                st.caption("The glyph image is no longer in the store (the document was deleted or re-ingested).")
            st.caption("Section text (copy with the button at its top right)")
            st.code(s["text"], language=None, wrap_lines=True)


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


_CHIPS = """<style>
section[data-testid="stSidebar"] [data-baseweb="tag"]{max-width:100%;height:auto}
section[data-testid="stSidebar"] [data-baseweb="tag"] span{max-width:none;white-space:normal;overflow:visible}
</style>"""


def _retry(history: list[dict[str, Any]]) -> None:
    """Check the model again now; when the last answer failed, ask its question again."""
    from ui.state import model_health

    model_health(force=True)
    if history and history[-1].get("retry"):
        st.session_state[RETRY] = history[-1]["retry"]
        del history[-2:]  # the failed question and its reply: the retry replaces them


def _sidebar(kb: KnowledgeBase, history: list[dict[str, Any]]) -> dict[str, Any]:
    s = kb.settings
    docs = sorted(kb.documents(), key=lambda d: d.title.lower())
    names = {d.doc_id: d.title for d in docs}
    with st.sidebar:
        st.markdown(_CHIPS, unsafe_allow_html=True)
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
        health_box = st.empty()
        _show_health(health_box, kb)
        st.button(
            "Retry",
            key="chat_retry_button",
            on_click=_retry,
            args=(history,),
            help="Check the assistant again, and ask the last question again if it could not be answered.",
        )
        st.caption(f"{len(docs)} document(s)")
        if st.button("New conversation", key="chat_clear"):
            st.session_state[HISTORY] = []
            st.rerun()
    return {"doc_ids": doc_ids, "compare": compare, "k": k, "health_box": health_box}


def _show_health(box: Any, kb: KnowledgeBase) -> None:
    """The assistant's state in the sidebar (redrawn after an answer, which may have just found it down)."""
    from ui.state import model_health

    s = kb.settings
    with box.container():
        if s.vlm_backend == "none":
            st.caption("Assistant: none set up (passages only)")
            return
        health = model_health()
        state = ":green[● available]" if health.ok else ":red[● not available right now]"
        st.markdown(f"**Assistant:** {state}", help=f"checked {health.age():.0f} s ago")
        st.caption(f"Model: `{s.vlm_model}`")


def render_chat(kb: KnowledgeBase) -> None:
    if not _reader_ok(kb):
        return
    history: list[dict[str, Any]] = st.session_state.setdefault(HISTORY, [])
    opts = _sidebar(kb, history)
    st.title("Ask the knowledge base")
    if not kb.documents():
        st.info(EMPTY)
    for msg in history:
        with st.chat_message(msg["role"]):
            if msg["role"] == "user":
                st.markdown(msg["content"])
            else:
                _show_message(msg, kb)
    question = st.chat_input("Ask a question about your documents")
    retry = st.session_state.pop(RETRY, None)
    if (not question or not question.strip()) and retry:
        question = retry
    if not question or not question.strip():
        return
    question = question.strip()
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        reply = answer_turn(kb, question, history, opts)
    history.append({"role": "user", "content": question})
    history.append(reply)
    _show_health(opts["health_box"], kb)
