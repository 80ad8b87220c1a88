"""Hyperparameters of berdiff (BerDiff, Chen et al. MICCAI 2023): presets, validation, summary.

The backbone (RRDB image condition added to the mask, NoiseUNet) and its training presets are
segbench_backbone's, exactly diff-add's, so that berdiff and diff-add differ in the noise only.
No torch import here, so registering the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segbench import Preset, SegbenchError
from segbench.presets import seed_paper_task_layers
from segbench_backbone.ddpm_hyperparameters import check_schedule
from segbench_backbone.hyperparameters import BACKBONE, TRAINING, BackboneHyperparameters

SAMPLERS = ("ddim", "ddpm")
PREDICTIONS = ("epsilon", "x0")
LOSSES = ("mix", "mix_dice", "kl", "bce")

# The paper: T = 1000, the linear schedule (their code's default, beta 1e-4..0.02), the network estimates the
# Bernoulli (flip) noise, x0_hat = |x_t - eps_hat|, loss L_KL + lambda L_BCE with lambda = 1 (Eq. 8), and
# the accelerated DDIM-like sampler. Departures: 50 sampling steps, the seed paper's DDIM count (the same
# network evaluations per mask as diff-add's paper preset); the seed paper's U-Net with diff-add's RRDB
# condition instead of their U-Net (scale-shift norm, 4 heads) on the image concatenated with x_t.
PAPER: dict[str, Any] = {
    "timesteps": 1000,
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "sampler": "ddim",
    "sampling_steps": 50,
    "prediction": "epsilon",
    "loss": "mix",
    "bce_weight": 1.0,
}

# The CPU default, with diff-add's small-preset choices where the formulation permits them:
# - prediction="x0" (their released code's default mean_type "xstart"): the output is x0_hat's logit;
# - loss="mix_dice": the paper's KL + BCE plus a soft Dice on x0_hat (diff-add's small preset trains with
#   BCE + soft Dice for the same reason: BCE alone under-weights small lesions);
# - 10 sampling steps, as diff-add's small preset.
SMALL: dict[str, Any] = {**PAPER, "sampling_steps": 10, "prediction": "x0", "loss": "mix_dice"}
TINY: dict[str, Any] = {**SMALL, "sampling_steps": 2}

PRESETS: dict[str, Preset] = {
    **{name: Preset({**BACKBONE[name], **head}, TRAINING[name])
       for name, head in (("tiny", TINY), ("small", SMALL), ("paper", PAPER))},
    **seed_paper_task_layers(),
}


@dataclass(frozen=True)
class BerDiffHyperparameters(BackboneHyperparameters):
    """Backbone plus the Bernoulli diffusion: schedule, prediction, loss and sampler (validated on creation)."""

    timesteps: int
    beta_start: float
    beta_end: float
    sampler: str
    sampling_steps: int
    prediction: str
    loss: str
    bce_weight: float

    def __post_init__(self) -> None:
        super().__post_init__()
        check_schedule(self)
        for name, valid in (("sampler", SAMPLERS), ("prediction", PREDICTIONS), ("loss", LOSSES)):
            if getattr(self, name) not in valid:
                raise SegbenchError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
        if not 1 <= self.sampling_steps <= self.timesteps:
            raise SegbenchError(
                f"sampling_steps={self.sampling_steps} out of range for timesteps={self.timesteps}; "
                f"valid: 1..{self.timesteps}"
            )
        if not self.bce_weight >= 0:
            raise SegbenchError(f"bce_weight={self.bce_weight} must be >= 0")

    @property
    def network_evaluations(self) -> int:
        """Network forward passes per predicted mask: every timestep for ddpm, else sampling_steps."""
        return self.timesteps if self.sampler == "ddpm" else self.sampling_steps

    def summary(self) -> str:
        output = "the flip noise eps (x0_hat = |x_t - eps_hat|)" if self.prediction == "epsilon" else "x0_hat"
        loss = {
            "mix": f"KL(posterior) + {self.bce_weight:g} BCE",
            "mix_dice": f"KL(posterior) + {self.bce_weight:g} BCE + soft Dice on x0_hat",
            "kl": "KL(posterior)",
            "bce": "BCE",
        }[self.loss]
        sampler = ("DDIM-like Bernoulli sampler" if self.sampler == "ddim"
                   else "ancestral sampler, x_{t-1} ~ B(theta_post(x_t, x0_hat))")
        steps = self.timesteps if self.sampler == "ddpm" else self.sampling_steps
        return (f"BerDiff: Bernoulli diffusion on the binary mask, q(x_t | x_0) = B(abar_t x_0 + (1 - abar_t) / 2), "
                f"{self.timesteps} linear steps (beta {self.beta_start:g} -> {self.beta_end:g}); the network gives "
                f"the logit of {output}; loss {loss}; {sampler}, {steps} steps = {self.network_evaluations} network "
                f"evaluations per mask; RRDB image condition added to the mask (as diff-add)")


def berdiff_summary(params: Mapping[str, Any]) -> str:
    """`segbench info`'s line for berdiff: formulation, sampler, network evaluations per mask."""
    return BerDiffHyperparameters.from_mapping({"image_size": 64, **params}).summary()


def berdiff_network_evaluations(params: Mapping[str, Any]) -> int:
    """Forward passes per predicted mask (ModelSpec.network_evaluations)."""
    return BerDiffHyperparameters.from_mapping({"image_size": 64, **params}).network_evaluations
