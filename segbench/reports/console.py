"""Rich tables printed whole: no cell is cut to "…", on a terminal of any width or in a pipe."""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

UNBOUNDED = 1_000_000  # columns offered to a table measured for output that is not a terminal


def print_table(console: Console, table: Table) -> None:
    """Print `table` with every cell whole: on a terminal, a cell too wide for its column folds onto more
    lines; in a pipe or a file (a log, `| less`, `> plan.txt`), whose width nobody chose, the table has its
    own width and each cell stays on one line."""
    for column in table.columns:
        column.overflow, column.no_wrap = "fold", False
    if not console.is_terminal:
        table.width = Measurement.get(console, console.options.update_width(UNBOUNDED), table).maximum
    console.print(table, crop=console.is_terminal)
