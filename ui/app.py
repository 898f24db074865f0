"""Glyph KB in the browser: `kb ui` (or `streamlit run ui/app.py`). Chat and Admin pages over one KnowledgeBase."""

from __future__ import annotations

import streamlit as st

from kb.errors import KbError
from kb.service import KnowledgeBase
from ui import state


def _chat(kb: KnowledgeBase) -> None:
    from ui.chat import render_chat

    render_chat(kb)


def _compare(kb: KnowledgeBase) -> None:
    from ui.compare import render_compare

    render_compare(kb)


def _admin(kb: KnowledgeBase) -> None:
    try:
        from ui.admin import render_admin
    except ImportError as exc:
        st.title("Admin")
        st.warning(f"Admin page unavailable: {exc}")
        return
    render_admin(kb)


def main() -> None:
    st.set_page_config(page_title="Glyph KB", page_icon=":material/menu_book:", layout="wide")
    try:
        kb = state.get_kb()
    except KbError as exc:
        st.error(f"Glyph KB cannot start: {exc.message}")
        if exc.hint:
            st.info(f"Next step: {exc.hint}")
        return
    pages = [
        st.Page(lambda: _chat(kb), title="Chat", icon=":material/chat:", url_path="chat", default=True),
        st.Page(lambda: _compare(kb), title="Compare", icon=":material/difference:", url_path="compare"),
        st.Page(lambda: _admin(kb), title="Admin", icon=":material/folder_managed:", url_path="admin"),
    ]
    st.navigation(pages).run()


main()
