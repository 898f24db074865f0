"""LlamaIndex integration: Glyph KB search as a `BaseRetriever` that yields `ImageNode`s.

Nothing else in `kb` imports this module, so LlamaIndex stays an optional dependency::

    from kb.llama import GlyphRetriever
    retriever = GlyphRetriever(kb, k=5, doc_ids=["payments-api-spec-v2.txt"])
    engine = RetrieverQueryEngine.from_args(retriever, llm=my_llm)

We do not use LlamaIndex's vector stores (their Qdrant store overwrites a payload key named `doc_id`); the
document id is carried as metadata key `doc` and as the node's SOURCE relationship (`node.ref_doc_id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import ImageNode, NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo

from kb.hits import Hit
from kb.retrieve import SearchOptions
from kb.service import KnowledgeBase

# What the LLM sees next to each node's text (the rest is for code: scores, file paths, ids).
LLM_METADATA_KEYS = ("doc", "title", "section", "pages")
# What an embedding of the node would include, if someone re-embeds these nodes.
EMBED_METADATA_KEYS = ("title", "section")


def hit_metadata(hit: Hit, rank: int) -> dict[str, Any]:
    """The node metadata for one hit; `rank` is 1-based and only feeds the `[n] …` label."""
    return {
        "doc": hit.doc,
        "title": hit.title,
        "section": hit.section,
        "pages": list(hit.pages) if hit.pages else None,
        "scores": dict(hit.scores),
        "images": [str(p) for p in hit.images],
        "image_keys": list(hit.image_keys),
        "section_id": hit.section_id,
        "source_name": hit.source_name,
        "format": hit.format,
        "label": hit.label(rank),
    }


def hit_to_node(hit: Hit, rank: int = 1) -> NodeWithScore:
    """One search hit as a scored `ImageNode` whose id is the hit's (stable) Qdrant point id."""
    metadata = hit_metadata(hit, rank)
    node = ImageNode(
        id_=hit.point_id,
        text=hit.text,
        image_path=hit.images[0] if hit.images and "://" not in hit.images[0] else None,
        image_url=hit.images[0] if hit.images and "://" in hit.images[0] else None,
        metadata=metadata,
        excluded_llm_metadata_keys=[k for k in metadata if k not in LLM_METADATA_KEYS],
        excluded_embed_metadata_keys=[k for k in metadata if k not in EMBED_METADATA_KEYS],
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=hit.doc)} if hit.doc else {},
    )
    return NodeWithScore(node=node, score=hit.score)


class GlyphRetriever(BaseRetriever):
    """Retrieve Glyph KB sections (text + glyph images) for a LlamaIndex query.

    The keyword arguments are the defaults of every search (see `kb.retrieve.SearchOptions`); the tenant is the
    knowledge base's configured one.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        k: int | None = None,
        doc_ids: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        signals: Sequence[str] | None = None,
        diversify: bool | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.kb = kb
        self.k = k if k is not None else kb.settings.top_k
        self.doc_ids = list(doc_ids) if doc_ids else None
        self.tags = list(tags) if tags else None
        self.signals = list(signals) if signals else None
        self.diversify = diversify

    def options(self) -> SearchOptions:
        return SearchOptions(
            k=self.k, doc_ids=self.doc_ids, tags=self.tags, signals=self.signals, diversify=self.diversify
        )

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.kb.search(query_bundle.query_str, self.options())
        return [hit_to_node(h, i) for i, h in enumerate(hits, start=1)]
