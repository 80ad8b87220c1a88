"""Progress display for long loops: rich bars on a terminal, nothing when silenced."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


SPEED_WINDOW = 300.0


class Bar:
    """One task's bar: `step(completed, loss=...)`."""

    def __init__(self, progress: RichProgress | None, task_id: int | None) -> None:
        self._progress, self._task = progress, task_id

    def step(self, completed: float, loss: float | None = None) -> None:
        if self._progress is not None:
            fields = {"loss": f"loss {loss:.4f}"} if loss is not None else {}
            self._progress.update(self._task, completed=completed, **fields)


class Progress:
    """Shows bars with loss, rate and ETA on `console`; `quiet` shows only log lines."""

    def __init__(self, console: Console | None = None, quiet: bool = False, silent: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet or silent
        self.silent = silent
        self._bars: RichProgress | None = None

    def log(self, message: str) -> None:
        if not self.silent:
            self.console.print(message, soft_wrap=True)  # a path stays on one line

    def silenced(self) -> Progress:
        """No bars and no log lines: what every process of a run but rank 0 shows."""
        return Progress(self.console, silent=True)

    @contextmanager
    def task(self, description: str, total: float) -> Iterator[Bar]:
        """A bar for one loop; opened inside another's block (a run's bar over its models), it is a row
        beneath that one in the same display."""
        if self.quiet:
            yield Bar(None, None)
            return
        with self._display() as bars:
            yield Bar(bars, bars.add_task(description, total=total, loss=""))

    @contextmanager
    def _display(self) -> Iterator[RichProgress]:
        """The one live display: the open one, or a new one for this block. One display keeps every bar in the
        same columns, and works with rich versions that allow a single live display at a time."""
        if self._bars is not None:
            yield self._bars
            return
        columns = (
            TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        )
        # the ETA from the rate over the last SPEED_WINDOW s (rich's default, 30 s, swings with each epoch's end)
        with RichProgress(*columns, console=self.console, transient=False, speed_estimate_period=SPEED_WINDOW) as bars:
            self._bars = bars
            try:
                yield bars
            finally:
                self._bars = None
