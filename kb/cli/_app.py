"""The full command line: the typer app with every command group registered.

Every module in kb/cli whose name does not start with `_` registers its commands on the shared `app` from
`kb.cli._common` with `@app.command()`; importing this module imports them all, so a new command group
is a new file.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from kb.cli._common import app, main

# `kb --help` lists commands in import order: the everyday ones first, then the rest by name.
_FIRST = ("ingest", "search", "docs", "render")
_HERE = [os.path.dirname(__file__)]  # the kb.cli folder, without importing kb.cli (an import cycle)
_names = [m.name for m in pkgutil.iter_modules(_HERE) if not m.name.startswith("_")]
for _mod in sorted(_names, key=lambda n: (_FIRST.index(n) if n in _FIRST else len(_FIRST), n)):
    importlib.import_module(f"kb.cli.{_mod}")

__all__ = ["app", "main"]
