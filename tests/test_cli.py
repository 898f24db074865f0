"""The command line as a user meets it: help text, startup imports, errors."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from kb.cli import app

runner = CliRunner()


def test_help_shows_citation_marker_and_plain_usage() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    ask = runner.invoke(app, ["ask", "--help"])
    assert ask.exit_code == 0
    assert "[n]" in ask.stdout  # not eaten as rich markup
    ingest = runner.invoke(app, ["ingest", "--help"])
    assert re.search(r"Usage: \S+ ingest \[OPTIONS\] PATHS\.\.\.", ingest.stdout), ingest.stdout
    for res in (top, ask, ingest, runner.invoke(app, ["search", "--help"])):
        assert "{" not in res.stdout and "<bool>" not in res.stdout and "<int>" not in res.stdout
    assert "-k, --k INTEGER" in runner.invoke(app, ["search", "--help"]).stdout
