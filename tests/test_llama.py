"""GlyphRetriever: Glyph KB search as a LlamaIndex retriever, alone and inside a real query engine (no network)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Settings as LlamaSettings
from llama_index.core.base.response.schema import Response
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers import ResponseMode
from llama_index.core.schema import ImageNode, MetadataMode, QueryBundle

from kb.llama import GlyphRetriever
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.tiny_models import settings_fields

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"
V2 = "payments-api-spec-v2.txt"


@pytest.fixture(autouse=True)
def offline_llama_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """LlamaIndex would otherwise resolve OpenAI defaults (network + API key) on first use."""
    monkeypatch.setattr(LlamaSettings, "_llm", MockLLM())
    monkeypatch.setattr(LlamaSettings, "_embed_model", MockEmbedding(embed_dim=8))


@pytest.fixture(scope="module")
def kb(
    tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str], shared_embedders: object
) -> Iterator[KnowledgeBase]:
    """One ingest for the whole module: these tests only read."""
    tmp = tmp_path_factory.mktemp("llama")
    shutil.copytree(EXAMPLES, tmp / "docs")
    settings = Settings(data_dir=tmp / "data", **settings_fields(model_env))
    with KnowledgeBase(settings, embedders=shared_embedders) as k:  # type: ignore[arg-type]
        res = k.ingest([tmp / "docs"])
        assert all(r.status == "ingested" for r in res), [r.error for r in res]
        yield k


def test_retriever_returns_ranked_image_nodes(kb: KnowledgeBase) -> None:
    question = "How fast must POST /payments answer at p99?"
    retriever = GlyphRetriever(kb, k=3)
    results = retriever.retrieve(question)
    hits = kb.search(question, retriever.options())
    assert 1 <= len(results) <= 3 and len(results) == len(hits)
    scores = [r.get_score() for r in results]
    assert scores == sorted(scores, reverse=True)
    for rank, (r, h) in enumerate(zip(results, hits, strict=True), start=1):
        node = r.node
        assert isinstance(node, ImageNode)
        assert node.node_id == h.point_id and r.score == pytest.approx(h.score)  # stable ids, same ranking
        assert node.text == h.text and node.text.strip()
        assert node.image_path and Path(node.image_path).is_file() and node.image_mimetype == "image/png"
        md = node.metadata
        assert "doc_id" not in md and md["doc"] == h.doc and node.ref_doc_id == h.doc
        assert md["title"] == h.title and md["section"] == h.section
        assert md["images"][0] == node.image_path and all(Path(p).is_file() for p in md["images"])
        assert set(md["scores"]) <= {"image", "text", "bm25"} and "text" in md["scores"]
        assert md["label"] == h.label(rank) and md["label"].startswith(f"[{rank}] ")
        assert {"source_name", "format", "pages"} <= set(md)
        llm_view = node.get_content(MetadataMode.LLM)
        assert f"title: {h.title}" in llm_view and h.text in llm_view
        assert "scores" not in llm_view and node.image_path not in llm_view
        assert "doc:" not in node.get_content(MetadataMode.EMBED)
    assert results[0].node.metadata["doc"].startswith("payments-api-spec")
    # Async path goes through the same search.
    again = asyncio.run(retriever.aretrieve(QueryBundle(question)))
    assert [r.node.node_id for r in again] == [r.node.node_id for r in results]


def test_query_engine_cites_our_image_nodes(kb: KnowledgeBase) -> None:
    retriever = GlyphRetriever(kb, k=2)
    # MockLLM without max_tokens answers with the prompt it got, so we can see what the LLM was shown.
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query("What severity levels exist and what is the first response time?")
    assert isinstance(response, Response) and response.response
    assert response.source_nodes and len(response.source_nodes) <= 2
    assert all(isinstance(s.node, ImageNode) for s in response.source_nodes)
    top = response.source_nodes[0].node
    assert top.metadata["doc"] == "incident-response-sop.md"
    assert Path(str(top.metadata["images"][0])).is_file()
    prompt = str(response)
    assert top.get_content() in prompt and f"title: {top.metadata['title']}" in prompt
    assert "image_keys" not in prompt

    no_text = RetrieverQueryEngine.from_args(retriever, response_mode=ResponseMode.NO_TEXT).query("rollback deploy")
    assert isinstance(no_text, Response) and not no_text.response and no_text.source_nodes
    assert all(isinstance(s.node, ImageNode) and s.node.metadata["doc"] for s in no_text.source_nodes)


def test_doc_filter_passes_through(kb: KnowledgeBase) -> None:
    only = GlyphRetriever(kb, k=4, doc_ids=[V2]).retrieve("latency")
    assert only and {r.node.metadata["doc"] for r in only} == {V2}
    res = RetrieverQueryEngine.from_args(GlyphRetriever(kb, k=4, doc_ids=[V2]), llm=MockLLM()).query("latency")
    assert res.source_nodes and {s.node.metadata["doc"] for s in res.source_nodes} == {V2}


def test_kb_package_does_not_import_llama_module() -> None:
    code = (
        "import importlib, pkgutil, sys, kb\n"
        "for m in pkgutil.walk_packages(kb.__path__, 'kb.'):\n"
        "    if m.name != 'kb.llama':\n"
        "        importlib.import_module(m.name)\n"
        "assert 'kb.llama' not in sys.modules, 'something in kb/ imports kb.llama at import time'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
