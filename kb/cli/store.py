"""`kb reindex` and `kb gc`: maintenance of the store."""

from __future__ import annotations

from kb.cli._common import ConfigOpt, app, load_settings, note_once, out, run


@app.command()
def reindex(config: ConfigOpt = None) -> None:
    """Rebuild the vector index with the configured models (after changing models); documents rendered
    with another render profile are re-rendered from their source files."""
    from kb.service import KnowledgeBase

    settings = run(lambda: load_settings(config))
    with KnowledgeBase(settings) as kb:
        run(lambda: kb.resolve_models(announce=note_once(kb.settings.data_dir)))
        n = run(kb.reindex)
        out().print(f"indexed {n} section(s)")
        results, gone = run(kb.rerender)
    if results or gone:
        profile = settings.render_profile or "the [render] settings"
        ok = sum(r.status != "failed" for r in results)
        out().print(f"re-rendered {ok} document(s) with {profile}", markup=False, highlight=False, soft_wrap=True)
        for r in results:
            if r.status == "failed":
                out().print(f"  failed: {r.path}: {r.error}", markup=False, highlight=False, soft_wrap=True)
        for doc in gone:
            out().print(
                f"  {doc}: source file gone, re-ingest it to re-render", markup=False, highlight=False, soft_wrap=True
            )


@app.command()
def gc(config: ConfigOpt = None) -> None:
    """Remove images no document references (left over by an interrupted ingest)."""
    from kb.service import KnowledgeBase

    with KnowledgeBase(load_settings(config)) as kb:
        n = run(kb.gc)
    out().print(f"removed {n} unreferenced image(s)")
