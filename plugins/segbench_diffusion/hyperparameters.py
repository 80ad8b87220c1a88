"""Hyperparameters of the diffusion segmenters diff-add and diff-concat: presets and validation.

The backbone and its training presets are segbench_backbone's, shared with the score-based models.
No torch import here, so registering the plugin stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segbench import Preset, SegbenchError
from segbench.presets import seed_paper_task_layers
from segbench_backbone.hyperparameters import BACKBONE, TRAINING, BackboneHyperparameters

SAMPLERS = ("ddim", "ddpm", "dpmpp2m")
PREDICTIONS = ("epsilon", "x0")
LOSSES = ("mse", "bce_dice")

# The seed paper: 1000 steps, linear betas 1e-4..0.02, eps-prediction, DDIM 50 steps.
PAPER: dict[str, Any] = {
    "timesteps": 1000,
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "sampler": "ddim",
    "sampling_steps": 50,
    "eta": 0.0,
    "clip_x0": False,
    "prediction": "epsilon",
    "loss": "mse",
}

# The CPU default, designed for fast convergence (the report states these choices):
# - prediction="x0": the network predicts the clean mask and the samplers use the
#   eps it implies. With eps-prediction a few-step DDIM sample is only as good as
#   x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) at high t, where the
#   eps error is amplified ~80x; an x0-predicting net learns "read the mask off the
#   image" directly. Phantom lungs: Dice 0.986 after 300 steps (eps-prediction:
#   0.61 after 400 steps);
# - loss="bce_dice": the output is the mask's logit (x0 = tanh(out / 2)), trained with
#   BCE + soft Dice like the U-Nets; MSE on x0 under-weights small lesions. Phantom
#   infection, validation split, 12 epochs (benchmarks/preset_sweep.py, one seed): per-image
#   Dice 0.71 vs 0.59 with MSE; 16 epochs 0.78 (on a GPU) and 0.74 (2-core CPU);
# - clip_x0 and 10 DDIM steps: evaluation costs 10 U-Net forwards per mask.
SMALL: dict[str, Any] = {**PAPER, "sampling_steps": 10, "clip_x0": True, "prediction": "x0", "loss": "bce_dice"}
TINY: dict[str, Any] = {**SMALL, "sampling_steps": 2}

PRESETS: dict[str, Preset] = {
    **{name: Preset({**BACKBONE[name], **head}, TRAINING[name])
       for name, head in (("tiny", TINY), ("small", SMALL), ("paper", PAPER))},
    **seed_paper_task_layers(),
}


@dataclass(frozen=True)
class DiffusionHyperparameters(BackboneHyperparameters):
    """Network, schedule and sampler hyperparameters of diff-add / diff-concat (validated on creation)."""

    timesteps: int
    beta_start: float
    beta_end: float
    sampler: str
    sampling_steps: int
    eta: float
    clip_x0: bool
    prediction: str
    loss: str

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("timesteps", "sampling_steps"):
            if getattr(self, name) < 1:
                raise SegbenchError(f"{name}={getattr(self, name)} must be a positive integer")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise SegbenchError(
                f"beta_start={self.beta_start}, beta_end={self.beta_end}: need 0 < beta_start < beta_end < 1"
            )
        if self.prediction not in PREDICTIONS:
            raise SegbenchError(f"unknown prediction {self.prediction!r}; valid: {', '.join(PREDICTIONS)}")
        if self.loss not in LOSSES:
            raise SegbenchError(f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        if self.loss == "bce_dice" and self.prediction != "x0":
            raise SegbenchError(f"loss='bce_dice' needs prediction='x0' (the output is the mask's logit), not {self.prediction!r}")
        if self.sampler not in SAMPLERS:
            raise SegbenchError(f"unknown sampler {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
        if not 1 <= self.sampling_steps <= self.timesteps:
            raise SegbenchError(
                f"sampling_steps={self.sampling_steps} out of range for timesteps={self.timesteps}; "
                f"valid: 1..{self.timesteps}"
            )
        if self.eta < 0:
            raise SegbenchError(f"eta={self.eta} must be >= 0 (0: deterministic DDIM, 1: DDPM-like)")
