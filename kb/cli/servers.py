"""`kb ui` and `kb serve`: the Streamlit app and the HTTP API."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from kb.cli._common import ConfigOpt, HostOpt, app, err, load_settings, note, run


@app.command()
def ui(
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to serve on")] = 8501,
    config: ConfigOpt = None,
) -> None:
    """Start the Streamlit app (chat and admin). It owns the embedded store while it runs."""
    import os
    import signal
    import subprocess

    app_file = Path(__file__).resolve().parents[2] / "ui" / "app.py"
    if not app_file.is_file():
        from rich.markup import escape

        err().print(f"[bold red]error:[/] the UI is not installed ({escape(str(app_file))} is missing)")
        raise typer.Exit(2)
    settings = load_settings(config)  # a bad config fails here, clearly, not in the browser
    env = dict(os.environ)
    if config is not None:
        env["KB_CONFIG"] = str(config.resolve())
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
        # the browser-side cap must not be below our own size check (Streamlit defaults to 200 MB)
        "--server.maxUploadSize", str(max(1, math.ceil(settings.max_file_mb))),
    ]  # fmt: skip
    err().print(f"Glyph KB UI on http://{host}:{port}  (Ctrl+C to stop)")
    child = subprocess.Popen(cmd, env=env)

    def forward(signum: int, _frame: object) -> None:  # stopping `kb ui` stops the server it started
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    try:
        code = child.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to both; let streamlit shut down
        code = child.wait()
    raise typer.Exit(code if code >= 0 else 128 - code)


@app.command()
def serve(
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to serve on")] = 8000,
    torch_threads: Annotated[
        int,
        typer.Option(
            "--torch-threads",
            help="CPU threads per model call (0 = torch's default). Concurrent requests already run "
            "calls side by side, so 1 serves most requests per second on a CPU; GPUs ignore it",
        ),
    ] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="log every request")] = True,
    config: ConfigOpt = None,
) -> None:
    """Start the HTTP API (OpenAPI at /docs; OpenAI-compatible /v1/chat/completions). Needs KB_API_KEYS."""
    try:
        import uvicorn

        from kb.api import create_app
        from kb.service import KnowledgeBase
    except ImportError as exc:
        from rich.markup import escape

        err().print(
            f"[bold red]error:[/] the API needs fastapi and uvicorn ({escape(str(exc))}); install the api extra"
        )
        raise typer.Exit(2) from None
    settings = load_settings(config)
    if not settings.api_keys:
        err().print("[yellow]warning:[/] no API keys configured (KB_API_KEYS), so every /v1 call is refused")
    if torch_threads > 0:
        import torch

        torch.set_num_threads(torch_threads)
    with KnowledgeBase(settings) as kb:
        run(lambda: kb.resolve_models(announce=note))
        err().print(f"Glyph KB API on http://{host}:{port}  (OpenAPI: /docs, Ctrl+C to stop)")
        uvicorn.run(create_app(kb), host=host, port=port, log_level="info", access_log=access_log)
