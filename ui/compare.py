"""The Compare page: what changed between two documents (or a document and its previous version), each
change with both glyph images and the changed lines marked; and a contradictions report over several
documents. Both download as Markdown."""

from __future__ import annotations

import streamlit as st

from kb.service import KnowledgeBase

CATEGORIES = ["normative", "value", "text"]


def render_compare(kb: KnowledgeBase) -> None:
    from kb.compare.answering import doc_families

    st.title("Compare")
    docs = sorted(kb.documents(), key=lambda r: r.doc_id)
    if len(docs) < 2:
        st.info("Compare needs two documents. Add some on the Admin page or with `kb ingest PATH`.")
        return
    ids = [r.doc_id for r in docs]
    titles = {r.doc_id: f"{r.title} ({r.doc_id})" for r in docs}
    fams = doc_families(kb)
    default_b = next((f.latest for f in fams.values()), ids[1])
    default_a = (fams[default_b].previous(default_b) if default_b in fams else None) or ids[0]
    changes_tab, contradictions_tab = st.tabs(["Changes", "Contradictions"])
    with changes_tab:
        _changes(kb, ids, titles, default_a, default_b)
    with contradictions_tab:
        _contradictions(kb, ids, titles)


def _changes(kb: KnowledgeBase, ids: list[str], titles: dict[str, str], default_a: str, default_b: str) -> None:
    from kb.compare.answering import cached_compare, doc_families
    from kb.compare.report import markdown

    c1, c2 = st.columns(2)
    a = c1.selectbox("A (older)", ids, index=ids.index(default_a), format_func=titles.get, key="cmp_a")
    b = c2.selectbox("B (newer)", ids, index=ids.index(default_b), format_func=titles.get, key="cmp_b")
    fam = doc_families(kb).get(b)
    if fam is not None and a in fam.docs:
        st.caption(f"Versions of one document, oldest to newest: {' → '.join(fam.docs)}")
    if a is None or b is None:
        return
    cmp = cached_compare(kb.get(a), kb.get(b))
    r = cmp.result
    m1, m2, m3 = st.columns(3)
    m1.metric("changes", len(r.changes))
    m2.metric("sections only in A", len(r.only_in_a))
    m3.metric("sections only in B", len(r.only_in_b))
    cats = st.multiselect("Categories", CATEGORIES, default=CATEGORIES, key="cmp_cats")
    shown = [(n, c) for n, c in enumerate(r.changes, 1) if c.category in cats]
    if shown:
        rows = [
            {
                "#": n,
                "kind": c.kind,
                "category": c.category,
                "summary": c.summary,
                "section A": c.section_a.split(" › ")[-1],
                "section B": c.section_b.split(" › ")[-1],
                "pages A": ", ".join(map(str, c.pages_a)),
                "pages B": ", ".join(map(str, c.pages_b)),
            }
            for n, c in shown
        ]
        st.dataframe(rows, hide_index=True, width="stretch")
        first = next((k for k, (_, c) in enumerate(shown) if c.category == "normative"), 0)
        pick = st.selectbox(
            "Open a change",
            [n for n, _ in shown],
            index=first,
            format_func=lambda n: f"{n}. {r.changes[n - 1].summary}",
            key="cmp_pick",
        )
        change = r.changes[pick - 1]
        left, right = st.columns(2)
        left.markdown(f"**A** · {change.section_a}\n\n> {change.text_a or '—'}")
        right.markdown(f"**B** · {change.section_b}\n\n> {change.text_b or '—'}")
        st.image(cmp.change_image(change, kb.images.open_rgb), caption="A left, B right; changed lines marked")
    elif r.changes:
        st.info("No change in the chosen categories.")
    else:
        st.success("No changes.")
    for name, refs in (("Only in A", r.only_in_a), ("Only in B", r.only_in_b)):
        if refs:
            st.markdown(f"**{name}:** " + "; ".join(s.section for s in refs))
    st.download_button("Download report (Markdown)", markdown(cmp), file_name=f"diff-{a}-{b}.md", mime="text/markdown")


def _contradictions(kb: KnowledgeBase, ids: list[str], titles: dict[str, str]) -> None:
    from kb.compare_jobs.crosscheck import crosscheck, markdown

    chosen = st.multiselect("Documents", ids, format_func=titles.get, key="xc_docs")
    topic = st.text_input("Topic (optional)", key="xc_topic") or None
    if len(chosen) < 2:
        st.caption("Pick two or more documents.")
        return
    res = crosscheck([kb.get(d) for d in chosen], topic=topic)
    st.caption("Deterministic findings (no model verdicts on this page; `kb crosscheck` asks the VLM).")
    report = markdown(res)
    st.markdown(report)
    st.download_button("Download report (Markdown)", report, file_name="crosscheck.md", mime="text/markdown")
