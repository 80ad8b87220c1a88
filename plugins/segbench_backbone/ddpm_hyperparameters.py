"""Hyperparameters of a conditional DDPM on the mask (the head `segbench_backbone.ddpm.DDPMSegmenter`
implements): schedule, what the network predicts, loss, sampler. Shared by every Gaussian-DDPM segmenter
(diff-add, diff-concat, medsegdiff), so their heads are configured, validated and summarised alike.

No torch import here, so registering a plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segbench import SegbenchError
from segbench_backbone.hyperparameters import BackboneHyperparameters

SAMPLERS = ("ddim", "ddpm", "dpmpp2m")
PREDICTIONS = ("epsilon", "x0")
LOSSES = ("mse", "bce_dice")

# The seed paper: 1000 steps, linear betas 1e-4..0.02, eps-prediction, DDIM 50 steps.
PAPER_HEAD: dict[str, Any] = {
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
SMALL_HEAD: dict[str, Any] = {**PAPER_HEAD, "sampling_steps": 10, "clip_x0": True, "prediction": "x0", "loss": "bce_dice"}
TINY_HEAD: dict[str, Any] = {**SMALL_HEAD, "sampling_steps": 2}

DDPM_HEAD: dict[str, dict[str, Any]] = {"tiny": TINY_HEAD, "small": SMALL_HEAD, "paper": PAPER_HEAD}

_SAMPLER_NAMES = {"ddim": "DDIM", "ddpm": "ancestral DDPM", "dpmpp2m": "DPM-Solver++(2M)"}


def check_schedule(hparams: Any) -> None:
    """A DDPM's schedule fields: timesteps and sampling_steps positive integers, 0 < beta_start < beta_end < 1."""
    for name in ("timesteps", "sampling_steps"):
        if getattr(hparams, name) < 1:
            raise SegbenchError(f"{name}={getattr(hparams, name)} must be a positive integer")
    if not 0 < hparams.beta_start < hparams.beta_end < 1:
        raise SegbenchError(
            f"beta_start={hparams.beta_start}, beta_end={hparams.beta_end}: need 0 < beta_start < beta_end < 1"
        )


@dataclass(frozen=True)
class DDPMHyperparameters(BackboneHyperparameters):
    """Backbone plus the DDPM head: schedule, prediction, loss and sampler (validated on creation)."""

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
        check_schedule(self)
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

    @property
    def network_evaluations(self) -> int:
        """Network forward passes per predicted mask: every timestep for ancestral DDPM, else sampling_steps."""
        return self.timesteps if self.sampler == "ddpm" else self.sampling_steps

    def head_summary(self) -> str:
        """Schedule, prediction, loss and sampler in one phrase, for `segbench info`."""
        prediction = {"epsilon": "eps-prediction", "x0": "x0-prediction"}[self.prediction]
        loss = "MSE" if self.loss == "mse" else "BCE + soft Dice on the mask logit"
        sampler = _SAMPLER_NAMES[self.sampler]
        if self.sampler == "ddim":
            sampler += f" (eta {self.eta:g})"
        steps = self.timesteps if self.sampler == "ddpm" else self.sampling_steps
        clip = ", x0 clipped to [-1, 1]" if self.clip_x0 else ""
        return (f"DDPM, {self.timesteps} linear steps (beta {self.beta_start:g} -> {self.beta_end:g}), {prediction}, "
                f"loss {loss}; sampler {sampler}, {steps} steps{clip} = {self.network_evaluations} network "
                f"evaluations per mask")


def ddpm_network_evaluations(cls: type[DDPMHyperparameters]):
    """A ModelSpec `network_evaluations` function for a DDPMHyperparameters class (hyperparameters with
    image_size -> forward passes per mask)."""

    def count(params: Mapping[str, Any]) -> int:
        return cls.from_mapping({"image_size": 64, **params}).network_evaluations

    return count
