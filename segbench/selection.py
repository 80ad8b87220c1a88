"""What checkpoint selection (`--select best`) keeps, in words every layer may read (no torch): the
file name of a stage's kept weights and the record of where it selected."""

from __future__ import annotations

from dataclasses import dataclass

BEST = "best.pt"  # beside a stage's last.pt: the weights it kept under `--select best` (EMA applied), step, score


@dataclass(frozen=True)
class SelectionRecord:
    """A stage's checkpoint selection by validation Dice (`--select best`): scored after every `every`-th
    step and the last, `scorings` times, on `validation_masks` masks, each costing `network_evaluations`
    forward passes where the model declares them (one sample of its configured sampler); the weights kept
    are those after step `step`, of pooled validation Dice `dice`."""

    every: int
    scorings: int
    validation_masks: int
    step: int
    dice: float
    network_evaluations: int | None = None
