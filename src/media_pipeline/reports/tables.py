"""Tables for a person at a terminal: as wide as the terminal, long names folded onto
a second line rather than cut, states in colour (none under NO_COLOR).

Output that is not a terminal (a pipe, a file, a test) keeps the plain tables of each
report, which scripts read; only a terminal gets these. Every cell goes in as plain
text with control characters escaped: a title such as "[red]x" styles nothing.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Sequence

from media_pipeline.items.names import printable


def terminal_table(
    title: str | None,
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    title_style: str = "bold",
    styles: Sequence[str] = (),
    fold: Sequence[str] = ("item", "note"),
) -> str:
    """The table as a terminal shows it: ANSI styles, the terminal's width. styles:
    one style per row (for its first cell), or none. fold: the columns whose long text
    goes on over more lines."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=Text(title, style=title_style) if title else None,
        title_justify="left",
        show_edge=False,
        pad_edge=False,
        header_style="bold",
    )
    for header in headers:
        table.add_column(header, overflow="fold" if header in fold else "ellipsis")
    for index, row in enumerate(rows):
        cells = [Text(printable("" if cell is None else str(cell))) for cell in row]
        if index < len(styles) and styles[index] and cells:
            cells[0].stylize(styles[index])
        table.add_row(*cells)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=True,
        width=shutil.get_terminal_size().columns,
        no_color="NO_COLOR" in os.environ,
        highlight=False,
    )
    console.print(table)
    return buffer.getvalue().rstrip("\n")
