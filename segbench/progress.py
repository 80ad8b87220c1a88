"""Progress display for long loops: rich bars on a terminal, plain lines in a log file (a SLURM job,
`nohup`, `> log`), nothing when silenced."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


SPEED_WINDOW = 300.0
LINE_INTERVAL = 30.0  # seconds between two progress lines of a task in a log file


class Bar:
    """One task's bar: `step(completed, loss=...)`."""

    def __init__(self, progress: RichProgress | None, task_id: int | None) -> None:
        self._progress, self._task = progress, task_id

    def step(self, completed: float, loss: float | None = None) -> None:
        if self._progress is not None:
            fields = {"loss": f"loss {loss:.4f}"} if loss is not None else {}
            self._progress.update(self._task, completed=completed, **fields)


class LineBar:
    """One task's progress as plain lines, for output that is not a terminal: "unet train (1 of 2): 120/300
    steps (40%), loss 0.1234, elapsed 0:01:05, ETA 0:01:38", at most one every LINE_INTERVAL seconds and
    one when the task completes; numbers are never cut."""

    def __init__(self, print_line: Callable[[str], None], description: str, total: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._print, self._description, self._total, self._clock = print_line, description, total, clock
        self._start = self._last = clock()
        self._printed = -1.0

    def step(self, completed: float, loss: float | None = None) -> None:
        now = self._clock()
        if completed >= self._total or now - self._last >= LINE_INTERVAL:
            if completed == self._printed:
                return
            self._last, self._printed = now, completed
            elapsed = now - self._start
            parts = [f"{self._description}: {completed:,.0f}/{self._total:,.0f}"
                     + (f" ({100 * completed / self._total:.0f}%)" if self._total else "")]
            if loss is not None:
                parts.append(f"loss {loss:.4f}")
            parts.append(f"elapsed {_clock_time(elapsed)}")
            if 0 < completed < self._total:
                parts.append(f"ETA {_clock_time(elapsed / completed * (self._total - completed))}")
            self._print(", ".join(parts))


def _clock_time(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


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
    def task(self, description: str, total: float) -> Iterator[Bar | LineBar]:
        """A bar for one loop; opened inside another's block (a run's bar over its models), it is a row
        beneath that one in the same display."""
        if self.quiet:
            yield Bar(None, None)
            return
        if not self.console.is_terminal:
            yield LineBar(lambda line: self.console.print(line, soft_wrap=True, markup=False, highlight=False),
                          description, total)
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
