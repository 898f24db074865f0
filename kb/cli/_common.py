"""What every command shares: the app, the consoles, common options and the error boundary.

Only typer and the standard library are imported here; rich, settings and the service load on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from rich.console import Console

    from kb.settings import Settings

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_TYPE_WORDS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "Path": "PATH", "bool": ""}


def _value_word(param: TyperOption | TyperArgument) -> str:
    """The plain placeholder for a value: INTEGER, TEXT, PATH (not typer's `<list[str]>`)."""
    if param.metavar:
        return param.metavar
    if isinstance(param, TyperArgument):
        return (param.name or "value").upper()
    label = param.bare_type().removeprefix("list[").removesuffix("]")
    return _TYPE_WORDS.get(label, label.upper())


class PlainCommand(TyperCommand):
    """Help in the classic form: `Usage: kb ingest [OPTIONS] PATHS...`, `-k, --k INTEGER`."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if isinstance(p, TyperArgument):
                word = _value_word(p) + ("..." if p.nargs != 1 else "")
                pieces.append(word if p.required else f"[{word}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_params(self, ctx, formatter)


class PlainGroup(TyperGroup):
    """The same plain help for a command group (`kb models`)."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_params(self, ctx, formatter)
        self.format_commands(ctx, formatter)


def _format_params(cmd: TyperCommand | TyperGroup, ctx: Any, formatter: Any) -> None:
    args: list[tuple[str, str]] = []
    opts: list[tuple[str, str]] = []
    for p in cmd.get_params(ctx):
        record = p.get_help_record(ctx)
        if record is None:
            continue
        if isinstance(p, TyperArgument):
            args.append((_value_word(p) + ("..." if p.nargs != 1 else ""), record[1]))
        elif isinstance(p, TyperOption):
            names = ", ".join(sorted(p.opts, key=len))
            if p.secondary_opts:
                names += " / " + ", ".join(p.secondary_opts)
            word = "" if p.is_flag else _value_word(p)
            opts.append((f"{names} {word}".rstrip(), record[1]))
    for title, rows in (("Arguments", args), ("Options", opts)):
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)


class Group(typer.Typer):
    """Every command gets the plain help form unless it asks for another class."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(cls=PlainGroup, **kw)

    def command(  # type: ignore[override]
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kw: Any
    ) -> Callable[[F], F]:
        return super().command(name, cls=cls or PlainCommand, **kw)


# Plain click help: "[n]" stays literal (rich markup would eat it), usage lines read `PATHS...`, and
# --help never imports rich.
app = Group(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Glyph KB: documents as glyph images, searchable.",
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="kb.toml to read (default: ./kb.toml if present)")
]
HostOpt = Annotated[str, typer.Option("--host", help="address to bind (0.0.0.0 exposes it on the network)")]


@cache
def out() -> Console:
    """The console for results (stdout)."""
    from rich.console import Console

    return Console()


@cache
def err() -> Console:
    """The console for progress, notes and errors (stderr)."""
    from rich.console import Console

    return Console(stderr=True)


def fail(message: str, hint: str = "", code: int = 2) -> NoReturn:
    """Print a user-facing error with the next step, and exit."""
    from rich.markup import escape

    err().print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err().print(f"[yellow]hint:[/] {escape(hint)}")
    raise typer.Exit(code)


def run(fn: Callable[[], T]) -> T:
    """Turn user-fixable errors into a clear message and exit code 2; bugs keep their traceback."""
    from kb.errors import KbError

    try:
        return fn()
    except KbError as exc:
        fail(exc.message, exc.hint)


def note(message: str) -> None:
    """One line on stderr that the user should see (a fallback taken, a signal switched off)."""
    from rich.markup import escape

    err().print(f"[yellow]note:[/] {escape(message)}", highlight=False)


NOTES_FILE = ".notes"  # under the data dir: notes already shown for it, one a line


def note_once(data_dir: Path, *, create: bool = False) -> Callable[[str], None]:
    """`note`, but a note already shown for this data dir (the bundled-profile note, say) is not repeated on
    every search: it is recorded in data_dir/.notes. `create`: make the data dir to record it (ingest, which
    is about to make it anyway); a reader never creates one, and a note it cannot record is shown again."""

    def announce(message: str) -> None:
        path = data_dir / NOTES_FILE
        try:
            seen = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            seen = []
        if message in seen:
            return
        note(message)
        try:
            if create:
                data_dir.mkdir(parents=True, exist_ok=True)
            if data_dir.is_dir():
                with path.open("a", encoding="utf-8") as f:
                    f.write(message.replace("\n", " ") + "\n")
        except OSError:
            pass  # a read-only store: the note shows again next time

    return announce


def load_settings(config: Path | None) -> Settings:
    """The settings for this command (a bad config is a clear error)."""
    from kb import settings

    return run(lambda: settings.load_settings(config))


def main() -> None:
    import os

    # Progress is ours (rich, on stderr): third-party bars ("Loading weights", downloads) stay quiet.
    for var in ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE", "TRANSFORMERS_NO_ADVISORY_WARNINGS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
