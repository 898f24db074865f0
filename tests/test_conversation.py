"""Conversations: earlier turns reach the model within a budget, follow-ups are searched with the earlier
questions, and a comparison carries over while it stays on the same documents."""

from __future__ import annotations

from pathlib import Path

from kb.answer.conversation import Turn, carries_comparison, fit, retrieval_query, turns
from kb.answer.hf import build_messages
from kb.answer.openai_backend import chat_messages
from kb.answer.prompt import build_prompt
from tests.test_prompt import make_hit, settings

Q1 = "What changed between v1 and v2 of the payments API?"
A1 = "v2 relaxes the p99 latency to 500 ms [1][2]."


def test_model_receives_earlier_turns_before_the_question_and_its_sources(tmp_path: Path) -> None:
    hits = [make_hit(tmp_path, 1, doc="v1"), make_hit(tmp_path, 2, doc="v2")]
    history = [Turn("user", Q1), Turn("assistant", A1, ("v1", "v2"), True)]
    p = build_prompt("what about retention?", hits, settings(tmp_path), history=history)
    assert p.history == history and "This is a conversation" in p.system
    msgs = chat_messages(p)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1]["content"] == Q1 and msgs[2]["content"] == A1
    last = msgs[3]["content"]
    assert last[0]["text"].startswith("[1] ") and last[-1]["text"] == "Question: what about retention?"
    # the in-process backend sends the same turns
    hf = build_messages(p)
    assert [m["role"] for m in hf] == ["system", "user", "assistant", "user"]
    assert hf[2]["content"][0]["text"] == A1
    # no history: one user message, and the system prompt says nothing about a conversation
    alone = build_prompt("what about retention?", hits, settings(tmp_path))
    assert [m["role"] for m in chat_messages(alone)] == ["system", "user"] and "conversation" not in alone.system


def test_history_is_trimmed_to_its_token_budget_newest_first(tmp_path: Path) -> None:
    long = [Turn("user" if i % 2 == 0 else "assistant", f"turn {i} " + "word " * 50) for i in range(20)]
    kept = fit(long, 200, lambda s: len(s.split()))
    assert kept and kept[-1] == long[-1] and kept[0].role == "user" and len(kept) < len(long)
    assert sum(len(t.text.split()) + 4 for t in kept) <= 200
    p = build_prompt("and then?", [make_hit(tmp_path, 1)], settings(tmp_path, vlm_history_tokens=0), history=long)
    assert p.history == [] and [m["role"] for m in chat_messages(p)] == ["system", "user"]


def test_follow_up_is_searched_with_the_earlier_questions() -> None:
    history = [Turn("user", Q1), Turn("assistant", A1)]
    assert retrieval_query("what about retention?", history) == f"{Q1}\nwhat about retention?"
    # a new topic stands on its own
    q = "Which severity levels does the incident response SOP define for outages?"
    assert retrieval_query(q, history) == q
    assert retrieval_query("what about retention?", []) == "what about retention?"


def test_comparison_carries_over_while_on_the_same_documents(tmp_path: Path) -> None:
    both = [make_hit(tmp_path, 1, doc="v1"), make_hit(tmp_path, 2, doc="v2")]
    other = [make_hit(tmp_path, 1, doc="v1"), make_hit(tmp_path, 2, doc="sop")]
    history = [Turn("user", Q1), Turn("assistant", A1, ("v1", "v2"), True)]
    assert carries_comparison("what about retention?", history, both)
    assert not carries_comparison("what about retention?", history, other)  # the sources moved on
    assert not carries_comparison("what about retention?", history, both[:1])
    assert not carries_comparison("what about retention?", [Turn("user", "What is the p99?")], both)
    # known only from the client's messages (OpenAI-compatible clients send no flags): the question compared
    assert carries_comparison("what about retention?", [Turn("user", Q1), Turn("assistant", A1)], both)


def test_turns_from_client_messages_skip_system_turns_and_our_source_lists() -> None:
    msgs = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": Q1},
        {"role": "assistant", "content": A1 + "\n\nSources:\n[1] Payments v1\n[2] Payments v2", "docs": ["v1"]},
        {"role": "tool", "content": "x"},
        {"role": "user", "content": "  "},
    ]
    assert turns(msgs) == [Turn("user", Q1), Turn("assistant", A1, ("v1",))]
