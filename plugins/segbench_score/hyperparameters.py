"""Hyperparameters of the score-based segmenters (NCSN, score-SDE): presets, validation, summaries.

The backbone (U-Net widths, RRDB encoder) and its training presets are segbench_backbone's, the same
as the diffusion models', so the formulations compare on equal networks trained the same way. No torch
import here, so registering the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segbench import Preset, SegbenchError
from segbench.presets import seed_paper_task_layers
from segbench_backbone.hyperparameters import BACKBONE, TRAINING, BackboneHyperparameters

PARAMETERISATIONS = ("score", "denoiser")
LOSSES = ("dsm", "x0_mse", "bce_dice")
SDES = ("vp", "ve")
SDE_SAMPLERS = ("euler_maruyama", "pc", "ode")
# The paper's t_min (its eps): continuous t ~ U(t_min, 1), and the samplers stop there.
T_MIN = {"vp": 1e-3, "ve": 1e-5}

# sigma_1 for 64x64 masks in [-1, 1]: the largest distance between two phantom training masks
# is 59 (lung) and 50 (infection) (NCSNv2 technique 1).
SIGMA_MAX = 60.0

# The papers' formulation: s_theta = F_theta / sigma (NCSNv2's output scaling; for VP the same as
# score = -eps_theta / s_t), trained with the lambda(sigma) = sigma^2 weighted DSM loss.
_PAPER_SCORE = {"parameterisation": "score", "loss": "dsm", "clip_x0": False}

# The CPU default, for fast convergence as in the diffusion plugin's small preset: the network
# is a denoiser D_theta(x, sigma) ~ E[x_0 | x] read as a mask logit (D = tanh(F / 2)), trained
# with BCE + soft Dice; the samplers use the score it implies, s = (a D - x) / s^2 (Tweedie).
_SMALL_SCORE = {"parameterisation": "denoiser", "loss": "bce_dice", "clip_x0": True}

# NCSNv2 (Song & Ermon 2020) for D = 64 x 64: geometric ratio 1.0343 from technique 2, so
# L = 259 levels from sigma_1 = 60 to 0.01; n = 5 steps per level and eps = 6.2e-6 (its CIFAR-10
# values; technique 4 puts eps near 6e-6 for this ratio). 1296 network evaluations per mask.
NCSN_PAPER: dict[str, Any] = {
    **_PAPER_SCORE,
    "sigma_max": SIGMA_MAX,
    "sigma_min": 0.01,
    "num_scales": 259,
    "steps_per_level": 5,
    "step_size": 6.2e-6,
}
# 20 levels x 2 steps + the denoising step: 41 network evaluations. Annealed Langevin needs
# neighbouring levels close: a step at sigma_i fed a mask noisier than it was trained on reads the
# noise as mask, and from sigma_1 = 60 three levels (60, 0.77, 0.01) gave infection Dice 0.02 for
# two of three seeds (benchmarks/BENCHMARKS.md). Here the ratio is 1.4; sigma_L = 0.1 is small for
# a mask that is thresholded at 0 (a pixel flips with probability 1e-23). eps = sigma_L^2 makes
# alpha_i / (2 sigma_i^2) = 1/2: each step moves half-way to the denoised mask.
NCSN_SMALL: dict[str, Any] = {
    **_SMALL_SCORE,
    "sigma_max": SIGMA_MAX,
    "sigma_min": 0.1,
    "num_scales": 20,
    "steps_per_level": 2,
    "step_size": 0.01,
}
NCSN_TINY: dict[str, Any] = {**NCSN_SMALL, "num_scales": 10, "steps_per_level": 1}

# Song et al. 2021: VP-SDE with PC sampling (reverse diffusion + Langevin, r = 0.16), N = 1000.
SDE_PAPER: dict[str, Any] = {
    **_PAPER_SCORE,
    "sde": "vp",
    "beta_min": 0.1,
    "beta_max": 20.0,
    "sigma_min": 0.01,
    "sigma_max": SIGMA_MAX,
    "sampler": "pc",
    "sampling_steps": 1000,
    "corrector_steps": 1,
    "snr": 0.16,
}
# At about diff-add's 10 network evaluations, phantom lungs after 16 epochs (test Dice, 96 images):
# probability-flow ODE 5 Heun steps (9 evaluations) 0.987, reverse diffusion alone 10 steps 0.986,
# PC 5 steps 0.984, Euler-Maruyama 10 steps 0.901.
SDE_SMALL: dict[str, Any] = {
    **_SMALL_SCORE,
    **{k: SDE_PAPER[k] for k in ("sde", "beta_min", "beta_max", "sigma_min", "sigma_max", "corrector_steps", "snr")},
    "sampler": "ode",
    "sampling_steps": 5,
}
SDE_TINY: dict[str, Any] = {**SDE_SMALL, "sampling_steps": 2}


def _presets(tiny: dict[str, Any], small: dict[str, Any], paper: dict[str, Any]) -> dict[str, Preset]:
    """Each formulation's own keys on the shared backbone, with the shared training presets."""
    heads = {"tiny": tiny, "small": small, "paper": paper}
    return {**{name: Preset({**BACKBONE[name], **head}, TRAINING[name]) for name, head in heads.items()},
            **seed_paper_task_layers()}


NCSN_PRESETS = _presets(NCSN_TINY, NCSN_SMALL, NCSN_PAPER)
SDE_PRESETS = _presets(SDE_TINY, SDE_SMALL, SDE_PAPER)


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise SegbenchError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class ScoreHyperparameters(BackboneHyperparameters):
    """Backbone plus how the network gives the score and how it is trained."""

    parameterisation: str
    loss: str
    clip_x0: bool

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("parameterisation", self.parameterisation, PARAMETERISATIONS)
        _choice("loss", self.loss, LOSSES)
        if self.loss != "dsm" and self.parameterisation != "denoiser":
            raise SegbenchError(
                f"loss={self.loss!r} needs parameterisation='denoiser' (it scores the denoised mask), "
                f"not {self.parameterisation!r}; with 'score' use loss='dsm'"
            )

    def network_summary(self) -> str:
        if self.parameterisation == "score":
            network = "s = F / sigma"
        else:
            mask = "tanh(F / 2)" if self.loss == "bce_dice" else "F"
            network = f"s = (a D - x) / sigma^2 with D = {mask}"
        loss = {"dsm": "sigma^2-weighted DSM", "x0_mse": "||D - x0||^2", "bce_dice": "BCE + soft Dice on D"}[self.loss]
        return f"{network}, loss {loss}"


def _positive(hparams: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if not getattr(hparams, name) > 0:
            raise SegbenchError(f"{name}={getattr(hparams, name)} must be positive")


@dataclass(frozen=True)
class NCSNHyperparameters(ScoreHyperparameters):
    """ncsn-add / ncsn-concat: geometric noise levels and annealed Langevin dynamics."""

    sigma_max: float
    sigma_min: float
    num_scales: int
    steps_per_level: int
    step_size: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, ("sigma_min", "num_scales", "steps_per_level", "step_size"))
        if not self.sigma_max > self.sigma_min:
            raise SegbenchError(f"sigma_max={self.sigma_max} must exceed sigma_min={self.sigma_min}")

    @property
    def network_evaluations(self) -> int:
        """Per mask: L levels x n Langevin steps + the final denoising step."""
        return self.num_scales * self.steps_per_level + 1

    def summary(self) -> str:
        return (
            f"NCSN: {self.num_scales} geometric noise levels {self.sigma_max:g} -> {self.sigma_min:g}; "
            f"sampler annealed Langevin, {self.steps_per_level} steps per level (eps {self.step_size:g}) "
            f"+ denoising step = {self.network_evaluations} network evaluations per mask; {self.network_summary()}"
        )


@dataclass(frozen=True)
class SDEHyperparameters(ScoreHyperparameters):
    """sde-add / sde-concat: VP or VE SDE and a reverse-time sampler."""

    sde: str
    beta_min: float
    beta_max: float
    sigma_min: float
    sigma_max: float
    sampler: str
    sampling_steps: int
    corrector_steps: int
    snr: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("sde", self.sde, SDES)
        _choice("sampler", self.sampler, SDE_SAMPLERS)
        _positive(self, ("beta_min", "sigma_min", "sampling_steps", "snr"))
        if not self.beta_max > self.beta_min:
            raise SegbenchError(f"beta_max={self.beta_max} must exceed beta_min={self.beta_min}")
        if not self.sigma_max > self.sigma_min:
            raise SegbenchError(f"sigma_max={self.sigma_max} must exceed sigma_min={self.sigma_min}")
        if self.corrector_steps < 0:
            raise SegbenchError(f"corrector_steps={self.corrector_steps} must be 0 or more")

    @property
    def network_evaluations(self) -> int:
        """Per mask: EM one per step, PC (corrector_steps + 1) per step, Heun two per step but the last."""
        if self.sampler == "ode":
            return 2 * self.sampling_steps - 1
        return self.sampling_steps * (self.corrector_steps + 1 if self.sampler == "pc" else 1)

    def summary(self) -> str:
        if self.sde == "vp":
            process = f"VP-SDE, beta {self.beta_min:g} -> {self.beta_max:g}"
        else:
            process = f"VE-SDE, sigma {self.sigma_min:g} -> {self.sigma_max:g}"
        sampler = {
            "euler_maruyama": "Euler-Maruyama",
            "pc": f"predictor-corrector (reverse diffusion + {self.corrector_steps} Langevin, snr {self.snr:g})",
            "ode": "probability-flow ODE, Heun (last step Euler)",
        }[self.sampler]
        return (
            f"score-SDE: {process}, t in [{T_MIN[self.sde]:g}, 1]; sampler {sampler}, {self.sampling_steps} steps "
            f"= {self.network_evaluations} network evaluations per mask; {self.network_summary()}"
        )


def ncsn_summary(params: Mapping[str, Any]) -> str:
    """`segbench info`'s line for ncsn-*: formulation, sampler, steps, network evaluations per mask."""
    return NCSNHyperparameters.from_mapping({"image_size": 64, **params}).summary()


def sde_summary(params: Mapping[str, Any]) -> str:
    """`segbench info`'s line for sde-*."""
    return SDEHyperparameters.from_mapping({"image_size": 64, **params}).summary()


def ncsn_evaluations(params: Mapping[str, Any]) -> int:
    """Network evaluations per mask of ncsn-* (the reports' cost of a mask)."""
    return NCSNHyperparameters.from_mapping({"image_size": 64, **params}).network_evaluations


def sde_evaluations(params: Mapping[str, Any]) -> int:
    """Network evaluations per mask of sde-*."""
    return SDEHyperparameters.from_mapping({"image_size": 64, **params}).network_evaluations
