"""Focused sources: evidence-in-context rate and visual tokens sent per question, per relevance cut-off.

    .venv/bin/python eval/focus_sweep.py --data /tmp/kb-pub --cutoffs 0,0.4,0.5,0.6,0.7 --questions ../shared/eval/public/questions.jsonl

Uses an existing store (`kb ingest ../shared/eval/public/docs` with KB_DATA_DIR=/tmp/kb-pub and the same
models as `kb eval`; ingest it first). For each cut-off (KB_ANSWER_MIN_RELEVANCE) it builds the prompts
exactly as `kb ask` does and prints the share of answerable questions whose evidence reaches the model and
the mean visual tokens and sources sent. Cut-off 0 is the behaviour before focusing (all k hits)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kb.answer.prepare import prepare_answer
from kb.evaluation import first_hit_rank, hit_chunks, load_questions
from kb.service import KnowledgeBase
from kb.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="data dir of an ingested store")
    ap.add_argument("--questions", type=Path, default=Path("../shared/eval/public/questions.jsonl"))
    ap.add_argument("--cutoffs", default="0,0.4,0.5,0.6,0.7")
    args = ap.parse_args()
    questions = load_questions(args.questions)
    answerable = [q for q in questions if q.evidence]
    base = load_settings().model_copy(update={"data_dir": args.data})
    print(f"{len(answerable)} answerable of {len(questions)} questions · store {args.data}")
    print("| cut-off | evidence in context | visual tokens / question | sources / question |")
    print("|---|---|---|---|")
    for c in (float(x) for x in args.cutoffs.split(",")):
        with KnowledgeBase(base.model_copy(update={"answer_min_relevance": c})) as kb:
            ok = tokens = sources = 0
            for q in questions:
                p = prepare_answer(kb, q.question).prompt
                tokens += p.visual_tokens
                sources += len(p.sources)
                if q.evidence:
                    ok += first_hit_rank(q, hit_chunks([s.hit for s in p.sources])) is not None
        n = len(questions)
        print(f"| {c:g} | {ok / len(answerable):.3f} ({ok}/{len(answerable)}) | {tokens / n:.0f} | {sources / n:.1f} |")


if __name__ == "__main__":
    main()
