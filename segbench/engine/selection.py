"""Checkpoint selection by validation Dice (`--select best`): a stage on the labelled training images keeps
the weights of its best validation score instead of its last ones.

The weights scored at a step are those training would keep if it ended there (the EMA's where the stage
keeps one); scoring runs the model's own `predict` (one sample, its configured sampler) as evaluation
does, and leaves the training's weights, modes and random state as they were, so the trajectory is the
one `--select last` trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from segbench.data.views import TrainingView
from segbench.engine.device import Runtime
from segbench.engine.evaluation import map_split
from segbench.metrics.confusion import confusion_counts
from segbench.metrics.definitions import dice
from segbench.plan.run_plan import SELECTION_SCORINGS
from segbench.specs import Stage


@dataclass(frozen=True)
class Selection:
    """What `segbench.engine.training.train` selects with: `score(model)` (higher is better) after every
    `every`-th step and after the last one."""

    every: int
    score: Callable[[nn.Module], float]

    def due(self, done: int, total: int) -> bool:
        """Whether the weights after `done` of `total` steps are scored."""
        return done % self.every == 0 or done == total


@dataclass
class Selected:
    """Selection so far: every scoring as (step, score), and the best one's step, score and weights (the
    model's state dict on the CPU); of equal scores the earliest is kept."""

    scores: list[tuple[int, float]] = field(default_factory=list)
    step: int | None = None
    score: float = -math.inf
    weights: dict[str, torch.Tensor] | None = None

    def record(self, step: int, score: float, model: nn.Module) -> None:
        self.scores.append((step, score))
        if score > self.score:
            self.step, self.score = step, score
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def to_checkpoint(self) -> dict[str, Any]:
        return {"scores": [list(s) for s in self.scores], "step": self.step, "score": self.score,
                "weights": self.weights or {}}

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any]) -> Selected:
        return cls([(int(step), float(score)) for step, score in saved["scores"]], saved["step"], saved["score"],
                   saved["weights"] or None)


@dataclass(frozen=True)
class ValidationSelection:
    """Selection by validation Dice for a model's stages that train on the labelled training images: the
    validation masks it scores on (`segbench.data.views.labelled_view` of the val split), every how many steps (None:
    SELECTION_SCORINGS times per stage) and the protocol's threshold."""

    view: TrainingView
    every: int | None
    threshold: float

    @staticmethod
    def applies(stage: Stage) -> bool:
        """Whether `stage` selects: one trained with an optimiser on the labelled training images."""
        return stage.needs_labels and stage.split == "train" and not stage.fit

    def steps_between(self, total_steps: int) -> int:
        return self.every or max(1, math.ceil(total_steps / SELECTION_SCORINGS))


def validation_dice(model: nn.Module, view: TrainingView, threshold: float, batch_size: int, *, run_seed: int,
                    runtime: Runtime, model_name: str) -> float:
    """Pooled Dice (2 TP / (2 TP + FP + FN) over every pixel of `view`'s masks, as nnU-Net's validation
    pseudo-Dice) of `model.predict`, one sample per image with the seeds and batch shape evaluation uses.
    Pooled, not the per-image mean: under the protocol's empty-mask policy a model that predicts nothing
    scores 1 on every healthy image, so a collapsed checkpoint would score about the share of healthy images."""
    images = torch.from_numpy(view.images).unsqueeze(1).float().div_(255)
    probabilities = map_split(model, view.ids, images, "predict", batch_size, run_seed=run_seed, runtime=runtime,
                              model_name=model_name)
    counts = confusion_counts(probabilities, torch.from_numpy(view.masks).unsqueeze(1), threshold)
    return dice(*(count.sum() for count in counts.as_float())).item()


__all__ = ["Selected", "Selection", "ValidationSelection", "validation_dice"]
