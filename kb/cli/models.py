"""`kb models` and `kb models pull`: which models are configured, where they come from, and copying them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from kb.cli._common import ConfigOpt, Group, app, load_settings, out, run

models_app = Group(help="The configured models: where each comes from and whether this machine has it.")
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config: ConfigOpt = None,
) -> None:
    """List the configured models, where each comes from and whether it is available here."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.markup import escape
    from rich.table import Table

    from kb.modelhub import hub_cache, hub_reachable, model_refs, resolve_profile

    settings = load_settings(config)
    refs = run(lambda: model_refs(settings))
    online = hub_reachable()
    if as_json:
        rows = [
            {"signal": r.signal, "setting": r.setting, "name": r.name, "source": r.source, "available": r.available,
             "path": r.path, "explicit": r.explicit}
            for r in refs
        ]  # fmt: skip
        sys.stdout.write(json.dumps({"models": rows, "bm25": settings.bm25, "hub_reachable": online}, indent=1) + "\n")
        return
    table = Table(title="Configured models", show_lines=False)
    for col in ("signal", "model", "from", "available"):
        table.add_column(col, overflow="fold")
    for r in refs:
        here = "[green]yes[/]" if r.available else ("[yellow]downloads on first use[/]" if online else "[red]no[/]")
        table.add_row(r.signal, escape(r.name), escape(r.source), here)
    table.add_row("bm25", "in-house tokenizer" if settings.bm25 else "off (KB_BM25=false)", "this package", "yes")
    out().print(table)
    out().print(
        f"model cache: {hub_cache(settings)}   model hub: {'reachable' if online else 'not reachable'}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    try:
        profile = resolve_profile(settings)
    except Exception as exc:  # a KbError: the models named above cannot run here
        out().print(f"[red]cannot run here:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    out().print(f"will use: {escape(profile.describe())}" + (" (the bundled profile)" if profile.note else ""))


@models_app.command()
def pull(
    to: Annotated[
        Path | None, typer.Option("--to", help="folder to put them in (default: the model cache in use)")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Fetch the configured models, to copy to a machine without a model hub (then set KB_MODELS_DIR there)."""
    from kb.modelhub import pull as pull_models

    settings = load_settings(config)
    for p in run(lambda: pull_models(settings, to)):
        out().print(f"{p.ref.signal}: {p.ref.name}: {p.outcome}", markup=False, highlight=False)
    if to is not None:
        out().print(
            f"copy {to} to the other machine and set KB_MODELS_DIR to its path there",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
