"""Tables whose ids are never cut: the id column comes first and never wraps or shortens; at narrow widths
low-priority columns are dropped and text columns fold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class Col:
    name: str
    keep: int = 5  # higher stays longer when the terminal is narrow; the id column is never dropped
    justify: Literal["left", "right"] = "left"
    wrap: bool = False  # free text (titles) may fold over lines
    styles: dict[str, str] = field(default_factory=dict)  # cell value -> rich style


def fit_table(
    title: str | None, cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int, *, hint: str = ""
) -> Table:
    """A rich Table of `rows` (plain text cells) that fits `width`: the first column is the id."""
    from rich.table import Table
    from rich.text import Text

    def natural(i: int) -> int:
        return max([len(cols[i].name), *(len(r[i]) for r in rows)])

    def least(i: int) -> int:
        return min(natural(i), 12) if cols[i].wrap else natural(i)

    shown = list(range(len(cols)))
    while len(shown) > 1 and sum(least(i) + 3 for i in shown) + 1 > width:
        shown.remove(min(shown[1:], key=lambda i: (cols[i].keep, -i)))
    table = Table(title=title, title_justify="left")
    for n, i in enumerate(shown):
        c = cols[i]
        table.add_column(
            c.name,
            justify=c.justify,
            no_wrap=not c.wrap,
            overflow="fold",  # never an ellipsis: what is shown is whole
            min_width=natural(i) if n == 0 else None,
        )
    for r in rows:
        table.add_row(*(Text(r[i], style=cols[i].styles.get(r[i], "")) for i in shown))  # cells are text, not markup
    dropped = [cols[i].name for i in range(len(cols)) if i not in shown]
    if dropped:
        table.caption = f"(narrow terminal: {', '.join(dropped)} not shown" + (f"; {hint})" if hint else ")")
    return table
