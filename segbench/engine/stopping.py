"""Stopping on request: SIGTERM or SIGUSR1 (what SLURM sends before preemption or the time limit) make the
run stop at the next training step or prediction batch, with everything done so far committed."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from segbench.errors import SegbenchError

SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s is not None)


class Stopped(SegbenchError):
    """A stop signal was honoured at a step or batch boundary; what was done is committed (--resume goes on)."""


class StopRequest:
    """Whether a stop signal arrived in this process (and which one)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""


REQUEST = StopRequest()


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """While inside, SIGTERM and SIGUSR1 set REQUEST instead of ending the process; the engine checks it at
    step and batch boundaries. The previous handlers come back on exit."""
    def note(signum, frame) -> None:  # noqa: ARG001 - the signal module's handler signature
        REQUEST.signal = signum

    previous = {s: signal.signal(s, note) for s in SIGNALS}
    try:
        yield REQUEST
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
