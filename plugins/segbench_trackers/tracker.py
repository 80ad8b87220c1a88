"""What a tracker implements, and the names every tracker gives what it logs.

Per model: `train/loss` and `train/lr` at every optimiser step (x: steps done), `epoch/loss` (the epoch's
mean loss, as models.json holds it), and after evaluation `eval/<metric>` (the per-image mean) with
`eval/<metric>_ci_low`, `_ci_high` and `_pooled`, as summary.csv holds them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from segbench.results import RunRecord, load_run

TRAIN_LOSS, TRAIN_LR, EPOCH_LOSS = "train/loss", "train/lr", "epoch/loss"
SUMMARY_PARTS = ("ci_low", "ci_high", "pooled")  # beside the mean, which is `eval/<metric>` itself


def summary_scalars(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    """`on_evaluation_end`'s summary as scalar names and values: eval/<metric> and eval/<metric>_<part>."""
    scalars = {}
    for metric, values in summary.items():
        scalars[f"eval/{metric}"] = float(values["mean"])
        scalars.update({f"eval/{metric}_{part}": float(values[part]) for part in SUMMARY_PARTS})
    return scalars


def as_text(values: dict[str, Any]) -> dict[str, str]:
    """Each value as config.json writes it (JSON; text as it is): how the trackers store settings."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def model_settings(record: RunRecord, model: str) -> dict[str, str]:
    """A model's resolved hyperparameters and training settings, as text."""
    plan = record.plan.model(model)
    return as_text({**plan.hyperparameters, **plan.training.to_json()})


def report_figures(run_dir: Path) -> list[tuple[str, np.ndarray]]:
    """The report's figures of the run (qualitative grid, metric distribution, losses) as (name, RGB uint8
    (H, W, 3)); those the results do not allow are left out."""
    from PIL import Image

    from segbench.reports.comparison import compared_metric
    from segbench.reports.figures import make_figures

    results = load_run(run_dir)
    figures = []
    for figure in make_figures(results, compared_metric(results))[0]:
        with Image.open(io.BytesIO(figure.image)) as image:
            figures.append((figure.name, np.asarray(image.convert("RGB"))))
    return figures


class Tracker:
    """One tracker of one run, told what the run does in order; a method that raises turns the tracker
    off for the rest of the run (one warning). Its constructor raises ImportError when its package is missing."""

    name = ""

    def __init__(self, run_dir: Path, record: RunRecord) -> None:
        self.run_dir, self.record = run_dir, record

    def step_of_epoch(self, model: str, epoch: int) -> int:
        """The steps done when `model`'s epoch `epoch` (from 1) ends: the x of its epoch/loss."""
        training, samples = self.record.plan.model(model).training, self.record.train_samples or 0
        return min(epoch * training.batches_per_epoch(samples), training.total_steps(samples))

    def total_steps(self, model: str) -> int:
        """`model`'s training steps in all: the x of its eval/ scalars."""
        return self.record.plan.model(model).training.total_steps(self.record.train_samples or 0)

    def train_step(self, model: str, step: Any) -> None:
        """After each optimiser step (`segbench.engine.training.TrainingStep`)."""

    def epoch_end(self, model: str, epoch: int, loss: float) -> None:
        """After each epoch (from 1) with its mean loss."""

    def evaluation_end(self, model: str, summary: dict[str, dict[str, float]]) -> None:
        """After a model's results are written."""

    def run_end(self) -> None:
        """After the run wrote its results and report."""

    def close(self) -> None:
        """Release files and connections; called after run_end, and when a run ends without it."""
