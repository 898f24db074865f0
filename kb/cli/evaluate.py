"""`kb eval`: retrieval (and answer) quality on a question set."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from kb.cli._common import ConfigOpt, app, err, fail, load_settings, note, run


@app.command("eval")
def eval_cmd(
    questions: Annotated[Path | None, typer.Option("--questions", "-q", help="questions.jsonl")] = None,
    docs_dir: Annotated[
        Path | None, typer.Option("--docs", help="folder of documents to ingest into a scratch store")
    ] = None,
    crosscheck: Annotated[
        Path | None,
        typer.Option(
            "--crosscheck",
            help="crosscheck.json: planted changes `kb diff` finds, false ones it reports (files: --docs or its docs/)",
        ),
    ] = None,
    k: Annotated[str, typer.Option("--k", help="comma-separated k values")] = "1,3,5,10",
    signals: Annotated[
        str,
        typer.Option(
            "--signals",
            help="comma-separated signals, 'a+b' fusions and 'fused' (default: each configured, then fused)",
        ),
    ] = "",
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="add the plain text-RAG reference row")
    ] = True,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write JSON here (+ .md table and .png plot beside it)")
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="keep the scratch store here; re-runs skip unchanged documents")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Evidence recall@k and MRR per signal and fused, on a question set (ingests into a scratch store);
    with --crosscheck, planted changes found and false differences reported by `kb diff`."""
    if crosscheck is not None:
        from kb.compare_jobs.commands import print_eval, run_crosscheck_eval

        res_x = run(lambda: run_crosscheck_eval(load_settings(config), crosscheck, docs_dir, err()))
        print_eval(res_x, json_out)
        return
    if questions is None or docs_dir is None:
        fail("--questions and --docs are needed", "or --crosscheck FILE.json")
    from kb.evaluation import eval_json, markdown, plot, run_eval

    ks = sorted({int(x) for x in k.split(",") if x.strip()})
    sigs = [s.strip() for s in signals.split(",") if s.strip()] or None
    from kb.modelhub import resolve_profile

    profile = run(lambda: resolve_profile(load_settings(config)))
    if profile.note:
        note(profile.note)
    settings = profile.settings
    res = run(
        lambda: run_eval(
            settings, questions, docs_dir, ks=ks, signals=sigs, baseline=baseline, store=store, log=err().print
        )
    )
    table = markdown(res.reports, ks, res.extra)
    sys.stdout.write(table + "\n")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(eval_json(res, ks), ensure_ascii=False, indent=1))
        json_out.with_suffix(".md").write_text(table + "\n")
        plot(res.reports, ks, json_out.with_suffix(".png"))
        err().print(
            f"wrote {json_out}, {json_out.with_suffix('.md')}, {json_out.with_suffix('.png')}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
