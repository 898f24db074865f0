import json
from pathlib import Path

import pytest

from kb.evaluation import Chunk, Question, eval_json, first_hit_rank, markdown, norm, run_eval
from kb.settings import Settings
from tests.tiny_models import settings_fields

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


def _q(*evidence: tuple[str, int, str]) -> Question:
    return Question("q", "cross", "?", [{"doc": d, "page": p, "quote": t} for d, p, t in evidence])


def test_norm_matches_the_eval_set() -> None:
    assert norm("  “Quoted”\n ﬁle  ") == '"quoted" file'


def test_hit_needs_every_quote_in_a_chunk_of_the_right_document() -> None:
    q = _q(("a.pdf", 2, "alpha beta"), ("b.md", 1, "gamma delta"))
    chunks = [
        Chunk("b.md", None, "x gamma  delta y"),
        Chunk("c.md", None, "alpha beta"),
        Chunk("a.pdf", (2, 3), "Alpha Beta"),
    ]
    assert first_hit_rank(q, chunks) == 3
    assert first_hit_rank(q, chunks[:2]) is None  # right text, wrong document
    assert first_hit_rank(q, [Chunk("a.pdf", (4, 5), "alpha beta"), chunks[0]], strict_pages=True) is None
    split = [Chunk("a.pdf", (2, 2), "alpha"), Chunk("a.pdf", (2, 2), "beta"), chunks[0]]
    assert first_hit_rank(q, split) is None  # a quote split across chunks is a miss


def test_run_eval_on_examples(tmp_path: Path, model_env: dict[str, str]) -> None:
    qs = tmp_path / "q.jsonl"
    rows = [
        {
            "id": "e1",
            "type": "spec",
            "question": "What p99 latency does v1 require for POST /payments?",
            "evidence": [{"doc": "payments-api-spec-v1.html", "page": 1, "quote": "MUST be below 200 ms"}],
        },
        {
            "id": "e2",
            "type": "cross",
            "question": "Do v1 and v2 agree on how long payment records are retained?",
            "evidence": [
                {"doc": "payments-api-spec-v1.html", "page": 1, "quote": "retained for 7 years"},
                {"doc": "payments-api-spec-v2.txt", "page": 1, "quote": "retained for 10 years"},
            ],
        },
        {"id": "e3", "type": "unanswerable", "question": "Who is the CEO?", "evidence": []},
    ]
    qs.write_text("\n".join(json.dumps(r) for r in rows))
    settings = Settings(**settings_fields(model_env))
    res = run_eval(
        settings, qs, EXAMPLES, ks=[1, 3, 5], signals=["bm25", "text", "fused"], baseline=True, store=tmp_path / "store"
    )
    names = [r.name for r in res.reports]
    assert names[:3] == ["bm25", "text", "fused"] and names[3].startswith("baseline")
    assert res.extra["answerable"] == 2 and res.extra["documents"] == 3 and res.extra["sections_per_second"] > 0
    fused = res.reports[2]
    assert fused.recall[5] == pytest.approx(1.0)
    assert len(fused.latency_ms) == 2
    js = eval_json(res, [1, 3, 5])
    assert set(js["summary"]) == set(names)
    q2 = next(q for q in js["questions"] if q["id"] == "e2")
    assert q2["signals"]["fused"]["hits"][0].keys() >= {"doc", "section", "text", "scores", "images"}
    assert "| fused |" in markdown(res.reports, [1, 3, 5], res.extra)


def test_answer_metrics_with_an_openai_compatible_server(tmp_path: Path, model_env: dict[str, str]) -> None:
    from tests.test_answer_openai import FakeVlm

    vlm = FakeVlm()
    answers = {
        "latency": "v1 requires below 200 ms [1].",
        "retained": "v1 keeps records 7 years [1], v2 keeps them 10 years [2].",
        "CEO": "I cannot find this in the knowledge base.",
    }

    def reply(body: dict[str, object]) -> tuple[int, str, bytes]:
        blob = json.dumps(body["messages"])
        text = next(v for k, v in answers.items() if k in blob.rsplit("Question:", 1)[-1])
        return FakeVlm.answer_with(text)(body)  # type: ignore[arg-type]

    vlm.reply = reply
    qs = tmp_path / "q.jsonl"
    rows = [
        {
            "id": "e1",
            "type": "spec",
            "question": "What p99 latency does v1 require?",
            "must_include": ["200 ms"],
            "evidence": [{"doc": "payments-api-spec-v1.html", "page": 1, "quote": "MUST be below 200 ms"}],
        },
        {
            "id": "e2",
            "type": "cross",
            "question": "How long are payment records retained in v1 and v2?",
            "must_include": ["7 years", "10 years"],
            "evidence": [
                {"doc": "payments-api-spec-v1.html", "page": 1, "quote": "retained for 7 years"},
                {"doc": "payments-api-spec-v2.txt", "page": 1, "quote": "retained for 10 years"},
            ],
        },
        {"id": "e3", "type": "unanswerable", "question": "Who is the CEO?", "evidence": []},
    ]
    qs.write_text("\n".join(json.dumps(r) for r in rows))
    settings = Settings(
        **settings_fields(model_env),
        vlm_backend="openai",
        vlm_base_url=vlm.url,
        vlm_model="tiny",
        vlm_retries=0,
    )
    try:
        res = run_eval(settings, qs, EXAMPLES, ks=[1, 5], signals=["bm25"], baseline=False, store=tmp_path / "s")
    finally:
        vlm.close()
    x = res.extra
    assert x["evidence_in_context_rate"] == 1.0
    assert x["answer_accuracy_must_include"] == 1.0
    assert x["unanswerable_handled"] == "1/1" and x["false_refusal_rate"] == 0.0
    assert x["citations_cover_evidence"] > 0
    assert len(vlm.requests) == 3
