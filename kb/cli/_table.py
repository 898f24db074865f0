"""Tables whose ids are never cut: the id column comes first and never wraps or shortens; at narrow widths
low-priority columns are dropped (a caption says which) and text columns fold. No ellipsis: what is shown
is whole.

Standard library only: `kb docs` renders its table in the fast lane (kb/cli/_fast.py), before typer or rich
is imported, and every path that prints a table (docs local and remote, ingest) uses this one renderer, so
their output is the same byte for byte.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing and dataclasses cost more to import than this whole lane
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Literal

# The look of rich's default table (box.HEAVY_HEAD), which these tables replaced.
_TOP = "┏━┳┓"
_HEAD = "┃┃┃"
_RULE = "┡━╇┩"
_BODY = "│││"
_BOTTOM = "└─┴┘"
_ANSI = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33"}


class Col:
    """One column: `keep` higher stays longer when the terminal is narrow (the id column, the first, is never
    dropped); `wrap` lets free text (titles) fold over lines; `styles` maps a cell value to a style name."""

    __slots__ = ("justify", "keep", "name", "styles", "wrap")

    def __init__(
        self,
        name: str,
        keep: int = 5,
        justify: Literal["left", "right"] = "left",
        wrap: bool = False,
        styles: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.keep = keep
        self.justify = justify
        self.wrap = wrap
        self.styles = dict(styles or {})


def term_width() -> int:
    """Columns for output: COLUMNS if set, else the terminal's, else 80 (shutil.get_terminal_size's rule,
    without importing shutil)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def use_color() -> bool:
    """ANSI styles only on a terminal, and never with NO_COLOR set or TERM=dumb."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, style: str, color: bool) -> str:
    codes = ";".join(_ANSI[s] for s in style.split() if s in _ANSI)
    return f"\x1b[{codes}m{text}\x1b[0m" if color and codes and text else text


def cell_len(text: str) -> int:
    """Terminal cells `text` takes (East Asian wide and full-width characters take two)."""
    if text.isascii():
        return len(text)
    from unicodedata import combining, east_asian_width

    return sum(0 if combining(c) else 2 if east_asian_width(c) in "WF" else 1 for c in text)


def fold(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` cells: breaks at spaces, and inside words longer than a line."""
    width = max(width, 1)
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        line = ""
        for word in para.split(" "):
            if not word:
                continue
            candidate = f"{line} {word}" if line else word
            if cell_len(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for ch in word:  # a word longer than the line is folded
                if cell_len(line + ch) > width and line:
                    lines.append(line)
                    line = ""
                line += ch
        lines.append(line)
    return lines


def fit_table(
    title: str | None,
    cols: Sequence[Col],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    hint: str = "",
    color: bool = False,
) -> str:
    """The table of `rows` (plain text cells) as text that fits `width` (lines end in newlines): the first
    column is the id. `color` adds ANSI styles (bold header, column styles)."""

    def natural(i: int) -> int:
        return max([cell_len(cols[i].name), *(cell_len(r[i]) for r in rows)])

    def least(i: int) -> int:
        return min(natural(i), 12) if cols[i].wrap else natural(i)

    shown = list(range(len(cols)))
    while len(shown) > 1 and sum(least(i) + 3 for i in shown) + 1 > width:
        shown.remove(min(shown[1:], key=lambda i: (cols[i].keep, -i)))
    widths = {i: natural(i) for i in shown}
    excess = sum(w + 3 for w in widths.values()) + 1 - width
    while excess > 0:  # fold the widest text column that can still give a cell
        give = [i for i in shown if widths[i] > least(i)]
        if not give:
            break
        widest = max(give, key=lambda i: (widths[i], -i))
        widths[widest] -= 1
        excess -= 1

    def line(chars: str, fill: str) -> str:
        left, mid, right = chars[0], chars[-2], chars[-1]
        return left + mid.join(fill * (widths[i] + 2) for i in shown) + right

    def row_lines(cells: Sequence[str], edge: str, header: bool) -> list[str]:
        folded = {i: fold(cells[i], widths[i]) if cols[i].wrap else [cells[i]] for i in shown}
        out = []
        for n in range(max(len(v) for v in folded.values())):
            parts = []
            for i in shown:
                text = folded[i][n] if n < len(folded[i]) else ""
                pad = " " * max(widths[i] - cell_len(text), 0)
                style = "bold" if header else cols[i].styles.get(cells[i], "")
                text = paint(text, style, color)
                parts.append(f" {pad}{text} " if cols[i].justify == "right" else f" {text}{pad} ")
            out.append(edge + edge.join(parts) + edge)
        return out

    out = [title] if title else []
    out.append(line(_TOP, _TOP[1]))
    out += row_lines([c.name for c in cols], _HEAD[0], header=True)
    out.append(line(_RULE, _RULE[1]))
    for r in rows:
        out += row_lines(r, _BODY[0], header=False)
    out.append(line(_BOTTOM, _BOTTOM[1]))
    dropped = [cols[i].name for i in range(len(cols)) if i not in shown]
    if dropped:
        out.append(f"(narrow terminal: {', '.join(dropped)} not shown" + (f"; {hint})" if hint else ")"))
    return "".join(s + "\n" for s in out)
