"""`kb tune-render`: search render settings on a sample of your documents and save the best as a profile."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kb.cli._common import ConfigOpt, app, err, fail, load_settings, out, run

# File names, paths and error texts are printed as they are (a "[" in one is not rich markup), and long
# progress lines are left to the terminal to wrap instead of being broken at 80 columns in a pipe.
PLAIN: dict[str, Any] = {"markup": False, "highlight": False, "soft_wrap": True}

if TYPE_CHECKING:
    from ingest.render_score import Judge
    from kb.settings import Settings


def pick_judge(settings: Settings, which: str) -> tuple[str, Judge]:
    """(name, judge) for --judge auto|tesseract|vlm; auto = the VLM when one is configured."""
    from ingest.render_score import tesseract_judge
    from kb.answer.transcribe import vlm_transcriber
    from kb.errors import ConfigError

    if which not in ("auto", "vlm", "tesseract"):
        raise ConfigError(f"unknown judge {which!r}", "use --judge auto, tesseract or vlm")
    if which in ("auto", "vlm"):
        judge = vlm_transcriber(settings)
        if judge is not None:
            return f"vlm:{settings.vlm_model or settings.vlm_backend}", judge
        if which == "vlm":
            raise ConfigError("--judge vlm needs a VLM", "set KB_VLM_BACKEND (and its model), or use --judge tesseract")
    return "tesseract", tesseract_judge


@app.command("tune-render")
def tune_render(
    paths: Annotated[list[Path], typer.Argument(help="documents or folders to tune on (a sample is taken)")],
    budget: Annotated[int, typer.Option("--budget", help="configurations to judge (each is OCR'd)")] = 12,
    name: Annotated[str, typer.Option("--name", help="profile name")] = "tuned",
    sample: Annotated[int, typer.Option("--sample", help="documents in the sample")] = 20,
    sections: Annotated[int, typer.Option("--sections", help="sections judged per document")] = 2,
    jobs: Annotated[int, typer.Option("--jobs", help="parallel OCR processes")] = 2,
    minutes: Annotated[
        float,
        typer.Option(
            "--minutes",
            help="time limit for the whole run: no judgement is started that the time left cannot fit "
            "(estimated from the slowest so far); the best found by then is saved",
        ),
    ] = 25.0,
    judge: Annotated[
        str, typer.Option("--judge", help="auto (the VLM when configured, else tesseract), tesseract or vlm")
    ] = "auto",
    activate: Annotated[
        bool, typer.Option("--activate/--no-activate", help="set render_profile in the config file")
    ] = True,
    config: ConfigOpt = None,
) -> None:
    """Maximise compression subject to word recall >= 0.97, >= 0.98 per identifier class (paths, options,
    numbers, code, CJK) and reading order >= 0.95, judged by OCR on a sample of your documents; save the
    winner as a render profile that `kb ingest` then uses (`kb reindex` re-renders what was drawn before)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from ingest.pipeline import iter_files
    from ingest.render_score import Targets, load_docs
    from ingest.render_tuning import tune
    from kb.render_profiles import RenderProfile, save_profile
    from kb.render_profiles import activate as activate_profile
    from kb.settings import DEFAULT_CONFIG_FILE, profile_path
    from kb.tokens import TokenCounter

    settings = run(lambda: load_settings(config))
    run(lambda: profile_path(name, settings.data_dir))  # a bad name fails before any work
    if budget < 1 or sample < 1 or sections < 1:
        fail("--budget, --sample and --sections must be at least 1")
    if not minutes > 0:
        fail("--minutes must be more than 0")
    files = list(iter_files(paths))
    if not files:
        fail("no supported documents under the given paths", "pass files or folders of PDF, HTML, Markdown, ...")
    if len(files) > sample:
        step = len(files) / sample
        files = [files[int(i * step)] for i in range(sample)]
    t0 = time.monotonic()
    deadline = t0 + minutes * 60

    def say(msg: str) -> None:
        err().print(f"[{time.monotonic() - t0:6.0f}s] {msg}", **PLAIN)

    docs = []
    for i, f in enumerate(files, 1):
        say(f"parsing {i}/{len(files)}: {f.name}")
        try:
            docs.extend(load_docs([f], settings, ocr_sections=sections))
        except Exception as exc:  # one unreadable file must not end the search
            say(f"  skipped {f.name}: {exc}")
    if not docs:
        fail("none of the sample documents could be parsed")
    counter = run(lambda: TokenCounter.load(settings.token_counter))
    judge_name, judge_fn = run(lambda: pick_judge(settings, judge))
    say(f"judge: {judge_name}; budget {budget} judgements, time limit {minutes:g} min")
    targets = Targets()
    workers = max(1, jobs) if judge_name == "tesseract" else 1  # one VLM request at a time
    with ThreadPoolExecutor(max_workers=workers) as pool:
        res = tune(
            docs,
            settings.render,
            counter,
            pool,
            budget=budget,
            targets=targets,
            judge=judge_fn,
            progress=say,
            deadline=deadline,
        )
    o = out()
    o.print(
        f"\njudged {len(res.judged)} configuration(s) on {len(docs)} document(s) in {time.monotonic() - t0:.0f} s; "
        f"text tokens by {counter.name}, judge: {judge_name}",
        **PLAIN,
    )
    if res.stopped == "time":
        o.print(f"stopped on time: the {minutes:g} min limit left no room for another judgement")
    o.print("Pareto front (compression, worst of recall / identifier recall / order):")
    for s in res.front():
        o.print(f"  {s.compression:5.2f}x  {min(s.recall, s.identifier_recall, s.order):.3f}  {s.name}", **PLAIN)
    best = res.best
    if best is None:
        more = "--minutes" if res.stopped == "time" else "--budget"
        o.print(f"no configuration cleared the bar; nothing saved (try a larger {more}, or see the front above)")
        raise typer.Exit(1)
    prof = RenderProfile(
        name=name,
        config=best.config,
        tokenizer=counter.name,
        judge=judge_name,
        sample=[d.name for d in docs],
        measured={
            "compression": round(best.compression, 3),
            "recall": round(best.recall, 4),
            "order": round(best.order, 4),
            "classes": {c: list(best.class_counts(c)) for c in ("path", "option", "number", "code", "cjk")},
            "start_compression": round(res.start.compression, 3),
            "judged": len(res.judged),
            "stopped": res.stopped,
        },
    )
    path = save_profile(prof, settings)
    o.print(
        f"best: {best.name}: {best.compression:.2f}x (start {res.start.compression:.2f}x), recall "
        f"{best.recall:.3f}, order {best.order:.3f}; saved {path}",
        **PLAIN,
    )
    if activate:
        cfg_file = config or Path(DEFAULT_CONFIG_FILE)
        activate_profile(name, cfg_file)
        o.print(
            f'{cfg_file}: render_profile = "{name}"; `kb ingest` now renders with it, '
            "`kb reindex` re-renders documents drawn before",
            **PLAIN,
        )
