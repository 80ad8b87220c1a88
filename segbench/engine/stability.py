"""Catching unstable training: a non-finite loss or gradient, or a loss far above its running median."""

from __future__ import annotations

import math
import statistics
from collections import deque

# Steps of history the running median needs before an explosion is judged, and how many it keeps.
MIN_HISTORY = 20
WINDOW = 100


class TrainingDiverged(RuntimeError):
    """Training became unstable; the message names the epoch, the step and what happened, and `stage` the
    training stage it happened in (set by the staged training that ran it)."""

    stage: str = ""


class DivergenceGuard:
    """Checks each step's loss and gradient norm; raises TrainingDiverged on trouble.

    explode_factor: a finite loss above `explode_factor` times the median of the last
    WINDOW losses (once MIN_HISTORY are known) counts as diverged; 0 turns that check off.
    """

    def __init__(self, explode_factor: float, history: list[float] | None = None) -> None:
        self.explode_factor = explode_factor
        self.recent: deque[float] = deque(history or [], maxlen=WINDOW)

    def check_loss(self, loss: float, epoch: int, step: int) -> None:
        where = f"at epoch {epoch + 1}, step {step + 1}"
        if not math.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss} {where}")
        if self.explode_factor > 0 and len(self.recent) >= MIN_HISTORY:
            median = statistics.median(self.recent)
            if loss > self.explode_factor * median:
                raise TrainingDiverged(
                    f"loss exploded {where}: {loss:.4g} is more than {self.explode_factor:g} times its running "
                    f"median {median:.4g} (lower the learning rate, or raise --set MODEL.explode_factor)"
                )

    def check_gradient(self, norm: float, epoch: int, step: int) -> None:
        if not math.isfinite(norm):
            raise TrainingDiverged(f"gradient norm is {norm} at epoch {epoch + 1}, step {step + 1}")

    def record(self, loss: float) -> None:
        self.recent.append(loss)
