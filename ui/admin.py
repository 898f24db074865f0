"""The admin page: sign in with the admin token, upload and ingest files, manage documents, corpus stats.

`render_admin(kb)` draws the page; `handle_uploads` is the upload logic without Streamlit, so it
can be tested (and reused) on its own. Uploaded files are kept under `<data_dir>/uploads/<batch>/`
while they are the source of a document, so "re-ingest" works for them too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from ingest.formats import supported_extensions
from kb import uploads
from kb import uploads as uploads_mod  # `uploads` is the file list inside _render_upload
from kb.errors import KbError
from kb.labels import clean_tags, page_label, page_span, parse_tags

if TYPE_CHECKING:
    from kb.catalog import DocumentRecord
    from kb.ingest_commit import IngestResult
    from kb.service import KnowledgeBase
    from kb.settings import Settings

log = logging.getLogger(__name__)

_STAGES = {
    "parse": (0.1, "parsing"),
    "section": (0.25, "sectioning"),
    "render": (0.4, "rendering glyph images"),
    "store": (0.6, "storing images"),
    "index": (0.75, "embedding and indexing"),
    "done": (1.0, "done"),
}
_AUTH_KEY = "admin_auth"
_FLASH_KEY = "admin_flash"
_RESULTS_KEY = "admin_upload_results"
_DOC_KEY = "admin_doc"  # the document opened from the table
_UPLOADER_GEN = "admin_uploader_gen"


def upload_types() -> list[str]:
    """The file types the uploader accepts: every registered format's extensions, without the dot."""
    return [ext.lstrip(".") for ext in supported_extensions()]


# -- auth ------------------------------------------------------------------------------------------
def admin_token(settings: Settings) -> str | None:
    secret = getattr(settings, "ui_admin_token", None)
    value = secret.get_secret_value() if secret is not None else None
    return value or None


def token_ok(settings: Settings, given: str) -> bool:
    expected = admin_token(settings)
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- uploads (no Streamlit) ------------------------------------------------------------------------
def handle_uploads(
    kb: KnowledgeBase,
    files: Sequence[tuple[str, bytes]],
    tags: Sequence[str] | None = None,
    *,
    on_file: Callable[[str, int, int], None] | None = None,
    on_stage: Callable[[str, str], None] | None = None,
) -> list[IngestResult]:
    """Save uploads (sanitised names, size-checked first) in a fresh batch folder and ingest them one by one.

    One result per upload, in order: ingested, unchanged or failed with the reason. A failing file never
    stops the others; the service writes a document's manifest last, so a failure leaves no half document."""
    from kb.ingest_commit import IngestResult

    root = uploads.uploads_root(kb.settings)
    limits = uploads.UploadLimits.for_admin(kb.settings)
    batch = uploads.new_batch(root)
    results: list[IngestResult] = []
    seen: set[str] = set()
    tag_list = clean_tags(tags)
    for i, (raw_name, data) in enumerate(files):
        name = uploads.clean_name(raw_name)
        if on_file:
            on_file(name, i, len(files))
        if name.casefold() in seen:
            results.append(IngestResult(path=Path(name), status="failed", error=f"{name} appears twice in this upload"))
            continue
        seen.add(name.casefold())
        try:
            dest = uploads.stage_bytes(data, batch / name, limits)
        except KbError as exc:  # too large, unsupported, content not of its type: nothing was kept
            results.append(IngestResult(path=Path(name), status="failed", error=str(exc)))
            continue
        results.append(_ingest_one(kb, dest, tag_list, on_stage))
    if batch.is_dir() and not any(batch.iterdir()):
        uploads.discard(batch, root)
    return results


def _ingest_one(
    kb: KnowledgeBase, path: Path, tags: list[str], on_stage: Callable[[str, str], None] | None
) -> IngestResult:
    from kb.catalog import doc_id_for
    from kb.ingest_commit import IngestResult

    doc_id = doc_id_for(path)
    old = kb.catalog.get(doc_id)
    stage_cb = (lambda p, s: on_stage(p.name, s)) if on_stage else None
    try:
        (result,) = kb.ingest([path], tags=tags or None, on_stage=stage_cb)
    except KbError as exc:  # e.g. another process holds the store
        result = IngestResult(path=path, status="failed", error=str(exc))
    except Exception as exc:  # a parser bug on one file must not stop the batch
        log.exception("ingest of %s failed", path)
        result = IngestResult(path=path, status="failed", error=f"internal error: {type(exc).__name__}: {exc}")
    new = kb.catalog.get(doc_id)
    if result.status == "unchanged" and new is not None and tags and not set(tags) <= set(new.tags):
        # the same bytes with new tags: the tags apply at once, nothing is parsed or embedded again
        new = kb.set_tags(doc_id, sorted({*new.tags, *tags}))
        result.warnings.append(f"tags now: {', '.join(new.tags)}")
    root = uploads.uploads_root(kb.settings)
    if new is None or Path(new.source_path) != path.resolve():
        uploads.discard(path, root)  # failed, unchanged: the stored document keeps its own source
    elif old is not None and Path(old.source_path) != path.resolve():
        uploads.discard(Path(old.source_path), root)  # replaced by this upload
    return result


# -- actions (callbacks: they run before the page redraws, so tables are current) ---------------------
def _flash(kind: str, text: str) -> None:
    st.session_state[_FLASH_KEY] = (kind, text)


def _delete(kb: KnowledgeBase, doc_id: str) -> None:
    try:
        rec = kb.delete(doc_id)
    except KbError as exc:
        _flash("error", f"Could not delete {doc_id}: {exc}")
        return
    uploads.discard(Path(rec.source_path), uploads.uploads_root(kb.settings))
    _flash("success", f"Deleted **{rec.title}** ({rec.source_name}).")


def _reingest(kb: KnowledgeBase, doc_id: str) -> None:
    rec = kb.catalog.get(doc_id)
    if rec is None:
        _flash("error", f"No document {doc_id} any more.")
        return
    src = Path(rec.source_path)
    if not src.is_file():
        _flash(
            "warning",
            f"The source file {rec.source_name} is no longer kept, so it cannot be re-ingested. Upload it again.",
        )
        return
    try:
        (result,) = kb.ingest([src])
    except KbError as exc:
        _flash("error", f"Re-ingest of {rec.source_name} failed: {exc}")
        return
    _flash(*_result_message(result))


def _save_tags(kb: KnowledgeBase, doc_id: str, key: str) -> None:
    try:
        rec = kb.set_tags(doc_id, parse_tags(st.session_state.get(key, "")))
    except KbError as exc:
        _flash("error", f"Could not save tags: {exc}")
        return
    _flash("success", f"Tags of **{rec.title}**: {', '.join(rec.tags) or '(none)'}")


def _sign_in(settings: Settings) -> None:
    given = st.session_state.get("admin_token_input", "")
    if token_ok(settings, given):
        st.session_state[_AUTH_KEY] = _digest(given)
        st.session_state["admin_token_input"] = ""
        st.session_state.pop("admin_login_error", None)
    else:
        st.session_state["admin_login_error"] = True


def _sign_out() -> None:
    st.session_state.pop(_AUTH_KEY, None)


# -- rendering -------------------------------------------------------------------------------------
def _result_message(r: IngestResult) -> tuple[str, str]:
    name = r.path.name
    if r.status == "ingested":
        return "success", f"**{name}** — ingested: {_plural(r.sections, 'section')}, {_plural(r.images, 'image')}"
    if r.status == "unchanged":
        tags = next((w for w in r.warnings if w.startswith("tags now: ")), "")
        return "info", f"**{name}** — unchanged (already current)" + (f"; {tags}" if tags else "")
    return "error", f"**{name}** — failed: {_no_paths(r.error or '', r.path)}"


def _no_paths(message: str, path: Path) -> str:
    """An error for the page: the file's name where the message names a server path."""
    for p in (str(path.resolve()), str(path), str(path.resolve().parent), str(path.parent)):
        if p not in ("", "."):
            message = message.replace(p, path.name if p.endswith(path.name) else "…")
    return message


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _show(kind: str, text: str) -> None:
    {"success": st.success, "info": st.info, "warning": st.warning}.get(kind, st.error)(text)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _authorised(settings: Settings) -> bool:
    expected = admin_token(settings)
    if expected is None:
        st.warning(
            "The admin page is disabled: no admin token is configured. "
            "Set `KB_UI_ADMIN_TOKEN` (or `ui_admin_token` in kb.toml) and restart `kb ui`."
        )
        return False
    got = st.session_state.get(_AUTH_KEY)
    if got and hmac.compare_digest(got, _digest(expected)):
        return True
    st.text_input("Admin token", type="password", key="admin_token_input")
    st.button("Sign in", key="admin_sign_in", on_click=_sign_in, args=(settings,), type="primary")
    if st.session_state.get("admin_login_error"):
        st.error("Wrong admin token.")
    return False


def render_admin(kb: KnowledgeBase) -> None:
    st.header("Admin")
    if not _authorised(kb.settings):
        return
    st.button("Sign out", key="admin_sign_out", on_click=_sign_out)
    stats_box = st.container()  # filled last, so it counts this run's uploads and deletes
    _render_upload(kb)
    _render_documents(kb)
    with stats_box:
        _render_stats(kb)


def _render_stats(kb: KnowledgeBase) -> None:
    s = kb.stats()
    st.subheader("Corpus")
    cols = st.columns(5)
    cols[0].metric("Documents", s.documents)
    cols[1].metric("Sections", s.sections)
    cols[2].metric("Images", s.images)
    cols[3].metric("Store size", _human_bytes(s.image_bytes), help="glyph images on disk")
    cols[4].metric(
        "Compression",
        f"{s.compression:.2f}×" if s.visual_tokens else "—",
        help=f"text tokens ÷ visual tokens ({s.text_tokens:,} ÷ {s.visual_tokens:,})",
    )


def _render_upload(kb: KnowledgeBase) -> None:
    st.subheader("Upload")
    gen = st.session_state.setdefault(_UPLOADER_GEN, 0)
    uploads = st.file_uploader(
        f"Documents (up to {kb.settings.max_file_mb:g} MB each)",
        type=upload_types(),
        accept_multiple_files=True,
        key=f"admin_uploader_{gen}",
    )
    tags_text = st.text_input("Tags for this upload (comma-separated, optional)", key="admin_upload_tags")
    if st.button("Ingest", key="admin_ingest", type="primary", disabled=not uploads):
        files = [(u.name, u.getvalue()) for u in uploads or []]
        names = [uploads_mod.clean_name(n) for n, _ in files]
        waiting = "queued" if kb.models_loaded else "Loading models… (the first upload after a start)"
        bars = [st.progress(0.0, text=f"{name}: {waiting if i == 0 else 'queued'}") for i, name in enumerate(names)]
        current = {"i": 0}

        def on_file(name: str, i: int, n: int) -> None:
            current["i"] = i
            bars[i].progress(0.02, text=f"{name}: {'starting' if kb.models_loaded else 'Loading models…'}")

        def on_stage(name: str, stage: str) -> None:
            frac, label = _STAGES.get(stage, (0.0, stage))
            if stage == "index" and not kb.models_loaded:
                label = "Loading models…"
            bars[current["i"]].progress(min(1.0, frac), text=f"{name}: {label}")

        results = handle_uploads(kb, files, parse_tags(tags_text), on_file=on_file, on_stage=on_stage)
        for bar, r in zip(bars, results, strict=False):
            bar.progress(1.0, text=f"{r.path.name}: {r.status}")
        messages = [_result_message(r) for r in results]
        st.session_state[_RESULTS_KEY] = messages
        _save_results(kb.settings, messages)
        st.session_state[_UPLOADER_GEN] = gen + 1  # a fresh, empty uploader, so nothing is ingested twice
        st.rerun()
    shown = st.session_state.get(_RESULTS_KEY) or _load_results(kb.settings)
    if shown:
        st.caption("Last upload")
    for kind, text in shown:
        _show(kind, text)


_LAST_BATCH = "last-admin-batch.json"


def _save_results(settings: Settings, messages: list[tuple[str, str]]) -> None:
    """The last batch's results, kept in the data dir so a reload (or another admin) still sees them."""
    from kb.fsutil import atomic_write_bytes

    root = uploads_mod.uploads_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(root / _LAST_BATCH, json.dumps(messages).encode())


def _load_results(settings: Settings) -> list[tuple[str, str]]:
    path = uploads_mod.uploads_root(settings) / _LAST_BATCH
    try:
        return [(str(k), str(t)) for k, t in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return []


def _doc_label(rec: DocumentRecord) -> str:
    return f"{rec.title} — {rec.source_name}" if rec.title != rec.source_name else rec.source_name


def _render_documents(kb: KnowledgeBase) -> None:
    st.subheader("Documents")
    flash = st.session_state.pop(_FLASH_KEY, None)
    if flash:
        _show(*flash)
    docs = kb.documents()
    if not docs:
        st.info("No documents yet. Upload some above.")
        return
    rows: list[dict[str, Any]] = [
        {
            "title": d.title,
            "file": d.source_name,
            "format": d.format,
            "pages": str(d.pages) if d.pages is not None else "–",  # formats without pages
            "sections": len(d.sections),
            "images": len(d.image_keys),
            "ingested": d.ingested_at,
            "tags": ", ".join(d.tags),
        }
        for d in docs
    ]
    picked = st.dataframe(
        rows, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="admin_table"
    )
    chosen = list(picked.selection.rows) if picked is not None else []
    if chosen and chosen[0] < len(docs):  # kept by id: a table redrawn after an edit keeps the document open
        st.session_state[_DOC_KEY] = docs[chosen[0]].doc_id
    found = next((d for d in docs if d.doc_id == st.session_state.get(_DOC_KEY)), None)
    if found is None:
        st.caption("Select a row to preview the document and edit, re-ingest or delete it.")
        return
    rec = found
    doc_id = rec.doc_id
    st.markdown(f"**{rec.title}**")
    st.caption(f"{rec.source_name} · id `{rec.doc_id}` · {_human_bytes(rec.file_bytes)}")

    c1, c2, c3 = st.columns([2, 1, 1])
    tags_key = f"admin_tags_{doc_id}"
    if tags_key not in st.session_state:
        st.session_state[tags_key] = ", ".join(rec.tags)
    with c1:
        st.text_input("Tags (comma-separated)", key=tags_key)
        st.button("Save tags", key="admin_save_tags", on_click=_save_tags, args=(kb, doc_id, tags_key))
    with c2:
        st.button(
            "Re-ingest",
            key="admin_reingest",
            on_click=_reingest,
            args=(kb, doc_id),
            help="re-read the source file; unchanged files are a no-op",
        )
    with c3:
        sure = st.checkbox("Confirm delete", key=f"admin_confirm_delete_{doc_id}")
        st.button("Delete", key="admin_delete", on_click=_delete, args=(kb, doc_id), disabled=not sure)

    others = [d.doc_id for d in docs if d.doc_id != doc_id]
    current = rec.revises if rec.revises in others else None
    st.selectbox(
        "New version of (revises)",
        ["", *others],
        index=0 if current is None else others.index(current) + 1,
        format_func=lambda d: d or "(none)",
        key=f"admin_revises_{doc_id}",
        on_change=_save_revises,
        args=(kb, doc_id, f"admin_revises_{doc_id}"),
        help="chat answers from the newest version; 'what changed' questions and the Compare page use the diff",
    )

    _render_preview(kb, rec)


def _save_revises(kb: KnowledgeBase, doc_id: str, key: str) -> None:
    try:
        rec = kb.set_revises(doc_id, st.session_state.get(key) or None)
    except KbError as exc:
        _flash("error", f"Could not save the previous version: {exc}")
        return
    _flash("success", f"**{rec.title}** revises {rec.revises or '(nothing)'}")


def _render_preview(kb: KnowledgeBase, rec: DocumentRecord) -> None:
    st.markdown("**Glyph images**")
    pages = [(s, img) for s in rec.sections for img in s.images]
    if not pages:
        st.info("This document has no images.")
        return
    i = 0
    if len(pages) > 1:
        i = st.slider("Image", 1, len(pages), 1, key=f"admin_preview_{rec.doc_id}") - 1
    sec, img = pages[i]
    span = page_span(sec.page_start, sec.page_end)
    where = f" · {page_label(span)}" if span else ""
    part = f" (part {sec.part}/{sec.parts})" if sec.parts > 1 else ""
    caption = f"{i + 1}/{len(pages)} · {' › '.join(sec.heading_path) or rec.title}{part}{where}"
    try:
        st.image(kb.images.read(img.key), caption=caption)
    except FileNotFoundError:
        st.warning(f"Image {img.key} is missing from the store (run `kb gc` / re-ingest). {caption}")
