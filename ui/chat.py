"""The chat page: questions answered by the VLM from glyph images, with the numbered sources under each answer.

Follow-ups: when a question looks like it refers back ("it", "that document", "they", ... or is only a few
words), the previous user questions (up to two) are prepended to the *retrieval* query, so the search finds
what "it" refers to; the model itself still sees only the new question with the retrieved sources.
"""

from __future__ import annotations

import contextlib
import hmac
import re
import time
from collections.abc import Iterator
from typing import Any

import streamlit as st

from kb.errors import KbError
from kb.images import ImageStore
from kb.service import KnowledgeBase

HISTORY = "chat_messages"
EMPTY = (
    "The knowledge base is empty, so there is nothing to answer from. Next step: upload documents on the "
    "Admin page, or stop the UI and run `kb ingest PATH`."
)
FOLLOW_UP_TURNS = 2
_REFERS_BACK = re.compile(
    r"\b(it|its|it's|this|that|these|those|they|them|their|theirs|he|she|his|her|the same|above|previous|"
    r"earlier|former|latter|the (?:document|doc|file|spec|section|one|other))\b",
    re.IGNORECASE,
)


# -- follow-ups ------------------------------------------------------------------------------------
def is_follow_up(question: str) -> bool:
    return len(question.split()) <= 4 or bool(_REFERS_BACK.search(question))


def retrieval_query(question: str, history: list[dict[str, Any]]) -> str:
    """The text to search with: the question, plus the last user turns when it refers back to them."""
    prior = [m["content"] for m in history if m["role"] == "user"][-FOLLOW_UP_TURNS:]
    if not prior or not is_follow_up(question):
        return question
    return "\n".join([*prior, question])


# -- one turn ----------------------------------------------------------------------------------------
def _prepare(kb: KnowledgeBase, question: str, query: str, doc_ids: list[str], k: int, compare: bool) -> Any:
    """Retrieve with `query`, build the prompt for `question` (kb.answer.run.prepare, with the two apart)."""
    from kb.answer.prompt import build_prompt
    from kb.answer.run import Prepared
    from kb.retrieve import SearchOptions, is_cross_document

    t0 = time.perf_counter()
    hits = kb.search(query, SearchOptions(k=k, doc_ids=doc_ids or None))
    t1 = time.perf_counter()
    cross = (compare or is_cross_document(question, doc_ids)) and len({h.doc for h in hits}) > 1
    prompt = build_prompt(question, hits, kb.settings, kb.images, cross_document=cross)
    return Prepared(question, hits, prompt, {"retrieve": t1 - t0, "prompt": time.perf_counter() - t1})


def _source(n: int, hit: Any, *, sent: bool, cited: bool) -> dict[str, Any]:
    pages = hit.pages
    where = "" if not pages else f"p. {pages[0]}" + (f"–{pages[1]}" if pages[1] != pages[0] else "")
    path = list(hit.heading_path)
    if path and path[0] == hit.title:  # a document's top heading usually repeats its title
        path = path[1:]
    return {
        "n": n,
        "title": hit.title,
        "section": " › ".join(path),
        "pages": where,
        "score": float(hit.score),
        "image_keys": list(hit.image_keys),
        "text": hit.text,
        "sent": sent,
        "cited": cited,
    }


def _sources(prep: Any, cited: set[int]) -> list[dict[str, Any]]:
    srcs = [_source(s.n, s.hit, sent=True, cited=s.n in cited) for s in prep.prompt.sources]
    start = len(srcs) + 1
    srcs += [_source(n, h, sent=False, cited=False) for n, h in enumerate(prep.prompt.dropped, start)]
    return srcs


def answer_turn(
    kb: KnowledgeBase, question: str, history: list[dict[str, Any]], opts: dict[str, Any]
) -> dict[str, Any]:
    """Run one question inside the current assistant chat message; returns the message to keep in history."""
    from kb.answer.run import CONFIGURE_HINT, AnswerStream
    from kb.errors import VlmUnavailableError
    from ui.state import get_answerer

    msg: dict[str, Any] = {"role": "assistant", "content": "", "sources": [], "notes": [], "alerts": []}
    query = retrieval_query(question, history)
    if not kb.documents():
        msg["alerts"].append(("warning", EMPTY))
        _show_message(msg, kb.images)
        return msg
    try:
        with st.spinner("Searching the documents…"):
            prep = _prepare(kb, question, query, opts["doc_ids"], opts["k"], opts["compare"])
    except KbError as exc:
        msg["alerts"].append(("error", _with_hint(exc.message, exc.hint)))
        _show_message(msg, kb.images)
        return msg
    msg["notes"] = list(prep.prompt.notes)
    if query != question:
        msg["notes"].append("searched together with the previous question(s), to resolve the follow-up")

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
