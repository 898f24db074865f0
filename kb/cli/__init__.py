"""The `kb` command line.

One module per command group (`kb/cli/ingest.py`, `kb/cli/search.py`, ...). Each module registers
its commands on the shared `app` from `kb.cli._common` with `@app.command()`; every module here
whose name does not start with `_` is imported below, so a new command group is a new file.

Startup time is a feature: a module here imports only typer and the standard library at its top;
everything else (settings, the service, models, rich) is imported inside the command that uses it.
"""

from __future__ import annotations

import importlib
import pkgutil

from kb.cli._common import app, main

# `kb --help` lists commands in import order: the everyday ones first, then the rest by name.
_FIRST = ("ingest", "search", "docs", "render")
_names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
for _mod in sorted(_names, key=lambda n: (_FIRST.index(n) if n in _FIRST else len(_FIRST), n)):
    importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["app", "main"]
