"""Score-based segmenters: NCSN and score-SDE on the mask, conditioned on the image.

The backbone is segbench_backbone's, as the diffusion models': masks {0, 1} are mapped to x_0 in {-1, 1},
an RRDB encodes the image, and the condition is added to (or concatenated with)
the noisy mask x = a x_0 + sigma z, scaled to unit variance, before the U-Net. The U-Net's time input is a
noise label in [0, 999]: 999 t for the SDEs and, for NCSN, the same affine map
of log sigma that VE's sigma(t) implies, 999 log(sigma / sigma_L) / log(sigma_1 / sigma_L).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from segbench import Prediction
from segbench.losses import bce_dice_loss
from segbench.noise import randn_per_sample, sample_generators
from segbench_backbone.conditional import ConditionalUNet
from segbench_score.hyperparameters import T_MIN, NCSNHyperparameters, ScoreHyperparameters, SDEHyperparameters
from segbench_score.losses import dsm_loss
from segbench_score.samplers import (
    ScoreFn,
    annealed_langevin,
    euler_maruyama,
    predictor_corrector,
    probability_flow_heun,
)
from segbench_score.schedules import VESDE, VPSDE, expand, geometric_sigmas


class ScoreSegmenter(ConditionalUNet, ABC):
    """A score network on the mask; subclasses give the noise process and the sampler."""

    hparams: ScoreHyperparameters

    def __init__(self, hparams: ScoreHyperparameters, conditioning: str) -> None:
        super().__init__(hparams, conditioning)
        self.hparams = hparams

    @abstractmethod
    def noise_levels(self, n: int, device: torch.device) -> Tensor:
        """Per-sample t (B,) for training, from the global torch RNG."""

    @abstractmethod
    def marginal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(a_t, s_t), each (B,): the perturbation kernel p(x_t | x_0) = N(a_t x_0, s_t^2 I)."""

    @abstractmethod
    def noise_label(self, t: Tensor) -> Tensor:
        """The U-Net's time input (B,) for t."""

    @abstractmethod
    def run_sampler(self, score_fn: ScoreFn, shape: torch.Size, generators: list[torch.Generator],
                    device: torch.device) -> Tensor:
        """x_0 (B, 1, H, W) from the prior, one generator per sample."""

    def scaled_output(self, x: Tensor, t: Tensor, a: Tensor, std: Tensor, condition: Tensor) -> Tensor:
        """The U-Net's raw output for x at t, with (a, std) = marginal(t) broadcastable against x.
        x enters divided by sqrt(a^2 + std^2), its scale for x_0 in {-1, 1} (EDM's c_in, Karras et
        al. 2022): 1 for VP, ~sigma for NCSN and VE, whose noisy mask would otherwise drown the
        image condition it is added to at large sigma."""
        return self.network_output(x * torch.rsqrt(a**2 + std**2), self.noise_label(t), condition)

    def score(self, x: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        """s_theta(x, t | image) (B, 1, H, W) in float32, for x (B, 1, H, W) and t (B,)."""
        a, std = (expand(v, x) for v in self.marginal(t))
        out = self.scaled_output(x, t, a, std, condition).float()
        if self.hparams.parameterisation == "score":
            if not self.hparams.clip_x0:
                return out / std
            denoised = (x + std * out) / a  # Tweedie: E[x_0 | x] = (x + s^2 score) / a
        else:
            denoised = torch.tanh(out / 2) if self.hparams.loss == "bce_dice" else out
        if self.hparams.clip_x0:
            denoised = denoised.clamp(-1, 1)
        return (a * denoised - x) / std**2

    def training_loss(self, images: Tensor, masks: Tensor) -> Tensor:
        """Denoising score matching at t drawn per sample (see `dsm_loss`), or with parameterisation
        "denoiser" ||D - x_0||^2 (loss "x0_mse") or BCE + soft Dice of D as a mask logit ("bce_dice").

        t and z ~ N(0, I) come from the global torch RNG, which the engine seeds.
        """
        x0 = masks * 2 - 1
        t = self.noise_levels(x0.shape[0], x0.device)
        noise = torch.randn_like(x0)
        a, std = (expand(v, x0) for v in self.marginal(t))
        x = a * x0 + std * noise
        out = self.scaled_output(x, t, a, std, self.encode(images))
        if self.hparams.loss == "bce_dice":
            return bce_dice_loss(out, masks)
        if self.hparams.loss == "x0_mse":
            return F.mse_loss(out.float(), x0)
        out = out.float()
        if self.hparams.parameterisation == "score":
            score = out / std
        else:
            score = (a * out - x) / std**2
        return dsm_loss(score, noise, std.flatten())

    @torch.inference_mode()
    def sample(self, images: Tensor, seeds: Tensor) -> Tensor:
        """Sample x_0 (B, 1, H, W), roughly in [-1, 1], for images (B, 1, H, W) with one seed per sample."""
        generators = sample_generators(seeds)
        condition = self.encode(images)  # independent of t: encoded once

        def score_fn(x: Tensor, t: Tensor) -> Tensor:
            return self.score(x, t, condition)

        return self.run_sampler(score_fn, images.shape, generators, images.device)

    def predict(self, images: Tensor, seeds: Tensor) -> Prediction:
        """Mask probabilities (B, 1, H, W) in [0, 1]: clamp((x_0 + 1) / 2, 0, 1) of one sample per seed."""
        return Prediction(((self.sample(images, seeds) + 1) / 2).clamp(0, 1), None)


class NCSNSegmenter(ScoreSegmenter):
    """NCSN (Song & Ermon 2019, 2020): t is the noise level sigma itself, one of L geometric levels."""

    hparams: NCSNHyperparameters

    def __init__(self, hparams: NCSNHyperparameters, conditioning: str) -> None:
        super().__init__(hparams, conditioning)
        self.register_buffer(
            "sigmas", geometric_sigmas(hparams.sigma_max, hparams.sigma_min, hparams.num_scales).float(), persistent=False
        )

    def noise_levels(self, n: int, device: torch.device) -> Tensor:
        """sigma_i with i ~ U{1..L} (the 1/L sum of the NCSN objective)."""
        return self.sigmas[torch.randint(0, len(self.sigmas), (n,), device=device)]

    def marginal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return torch.ones_like(t), t

    def noise_label(self, t: Tensor) -> Tensor:
        span = math.log(self.hparams.sigma_max / self.hparams.sigma_min)
        return 999 * torch.log(t / self.hparams.sigma_min) / span

    def run_sampler(self, score_fn: ScoreFn, shape: torch.Size, generators: list[torch.Generator],
                    device: torch.device) -> Tensor:
        x = self.hparams.sigma_max * randn_per_sample(shape[1:], generators, device)
        return annealed_langevin(
            score_fn, x, self.sigmas.tolist(), self.hparams.steps_per_level, self.hparams.step_size, generators
        )


class SDESegmenter(ScoreSegmenter):
    """Score-SDE (Song et al. 2021): continuous t ~ U(t_min, 1) of a VP or VE SDE."""

    hparams: SDEHyperparameters

    def __init__(self, hparams: SDEHyperparameters, conditioning: str) -> None:
        super().__init__(hparams, conditioning)
        if hparams.sde == "vp":
            self.sde: VESDE | VPSDE = VPSDE(hparams.beta_min, hparams.beta_max, T_MIN["vp"])
        else:
            self.sde = VESDE(hparams.sigma_min, hparams.sigma_max, T_MIN["ve"])

    def noise_levels(self, n: int, device: torch.device) -> Tensor:
        return self.sde.t_min + (1 - self.sde.t_min) * torch.rand(n, device=device)

    def marginal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return self.sde.marginal(t)

    def noise_label(self, t: Tensor) -> Tensor:
        return 999 * t

    def run_sampler(self, score_fn: ScoreFn, shape: torch.Size, generators: list[torch.Generator],
                    device: torch.device) -> Tensor:
        x = self.sde.prior_std * randn_per_sample(shape[1:], generators, device)
        steps = self.hparams.sampling_steps
        if self.hparams.sampler == "euler_maruyama":
            return euler_maruyama(score_fn, x, self.sde, steps, generators)
        if self.hparams.sampler == "pc":
            return predictor_corrector(
                score_fn, x, self.sde, steps, generators, self.hparams.snr, self.hparams.corrector_steps
            )
        return probability_flow_heun(score_fn, x, self.sde, steps)


def ncsn_add(values: Mapping[str, Any]) -> NCSNSegmenter:
    """Factory of `ncsn-add`."""
    return NCSNSegmenter(NCSNHyperparameters.from_mapping(values), "add")


def ncsn_concat(values: Mapping[str, Any]) -> NCSNSegmenter:
    """Factory of `ncsn-concat`."""
    return NCSNSegmenter(NCSNHyperparameters.from_mapping(values), "concat")


def sde_add(values: Mapping[str, Any]) -> SDESegmenter:
    """Factory of `sde-add`."""
    return SDESegmenter(SDEHyperparameters.from_mapping(values), "add")


def sde_concat(values: Mapping[str, Any]) -> SDESegmenter:
    """Factory of `sde-concat`."""
    return SDESegmenter(SDEHyperparameters.from_mapping(values), "concat")
