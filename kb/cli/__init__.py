"""The `kb` command line.

One module per command group (`kb/cli/ingest.py`, `kb/cli/search.py`, ...), registered on one typer app
by kb/cli/_app.py. Startup time is a feature:

- `main()` first offers the command to the fast lane (kb/cli/_fast.py), which answers `kb --help`, bare
  `kb` and `kb docs [--json]` on the standard library alone when it can give exactly the full path's output;
- otherwise it imports the typer app. A command module imports only typer and the standard library at
  its top; everything else (settings, the service, models, rich) is imported inside the command that uses it.

This module imports nothing at its top; `app` is loaded on first access (`from kb.cli import app`).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs more to import than the fast lane
if TYPE_CHECKING:
    from typing import Any

    from kb.cli._app import app as app


def main() -> None:
    from kb.cli import _fast

    if _fast.handle(sys.argv[1:]):
        return
    from kb.cli._app import main as full

    full()


def __getattr__(name: str) -> Any:
    if name == "app":
        from kb.cli._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
