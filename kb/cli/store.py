"""`kb reindex` and `kb gc`: maintenance of the store."""

from __future__ import annotations

from kb.cli._common import ConfigOpt, app, load_settings, note, out, run


@app.command()
def reindex(config: ConfigOpt = None) -> None:
    """Rebuild the vector index with the configured models (after changing models)."""
    from kb.service import KnowledgeBase

    with KnowledgeBase(load_settings(config)) as kb:
        run(lambda: kb.resolve_models(announce=note))
        n = run(kb.reindex)
    out().print(f"indexed {n} section(s)")


@app.command()
def gc(config: ConfigOpt = None) -> None:
    """Remove images no document references (left over by an interrupted ingest)."""
    from kb.service import KnowledgeBase

    with KnowledgeBase(load_settings(config)) as kb:
        n = run(kb.gc)
    out().print(f"removed {n} unreferenced image(s)")
