"""The conditional DDPM head on the mask, shared by every Gaussian-DDPM segmenter (SegDiff-style diff-add /
diff-concat, MedSegDiff): schedule, training loss, eps from the network's output, and sampling with
per-sample generators through the shared samplers.

Masks {0, 1} are diffused as x_0 in {-1, 1}. A subclass provides the network:
`encode(images)` -> a condition computed once per image (it does not depend on t), and
`network_output(x_t, t, condition)` -> the raw output (B, 1, H, W).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segbench import Prediction
from segbench.losses import bce_dice_loss
from segbench.noise import randn_per_sample, sample_generators
from segbench_backbone.ddpm_hyperparameters import DDPMHyperparameters
from segbench_backbone.samplers import ddim_sample, ddpm_sample, dpmpp_2m_sample
from segbench_backbone.schedules import alphas_cumprod, linear_betas, q_sample


class DDPMSegmenter(nn.Module):
    """Conditional DDPM/DDIM segmenter (eps- or x0-predicting network); implements segbench's Segmenter.

    A mixin before the network class: `class M(DDPMSegmenter, Network)`, whose __init__ builds the network
    and then calls `self.init_schedule(hparams)`.
    """

    hparams: DDPMHyperparameters
    alphas_cumprod: Tensor
    # from the network class: encode(images) -> condition; network_output(x_t, t, condition) -> (B, 1, H, W)
    encode: Callable[[Tensor], Tensor]
    network_output: Callable[[Tensor, Tensor, Tensor], Tensor]

    def init_schedule(self, hparams: DDPMHyperparameters) -> None:
        """Keep the hyperparameters and register abar_t of the linear schedule."""
        self.hparams = hparams
        betas = linear_betas(hparams.timesteps, hparams.beta_start, hparams.beta_end)
        # derived from the hyperparameters, so not saved in checkpoints
        self.register_buffer("alphas_cumprod", alphas_cumprod(betas), persistent=False)

    def noise_prediction(self, x_t: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        """epsilon_theta(x_t, t, condition) (B, 1, H, W), whatever the network predicts."""
        out = self.network_output(x_t, t, condition)
        if self.hparams.prediction == "epsilon":
            return out
        # a logit of the mask: x0 = 2 sigmoid(out) - 1 = tanh(out / 2), in (-1, 1)
        x0 = torch.tanh(out.float() / 2) if self.hparams.loss == "bce_dice" else out.float()
        # x0-prediction: the eps that x_t and x0_hat imply (Ho et al. Eq. 4 solved for eps)
        abar = self.alphas_cumprod[t].view(-1, *([1] * (x_t.ndim - 1)))
        return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()

    def training_loss(self, images: Tensor, masks: Tensor) -> Tensor:
        """L_simple = E ||eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t)||^2 (Ho et al. Eq. 14),
        or with prediction="x0" E ||x_0 - x0_theta(x_t, t)||^2 (the same objective weighted by 1/SNR(t)),
        or with loss="bce_dice" BCE + soft Dice of the output as the mask's logit (the U-Nets' loss).

        t ~ U{0..T-1} and eps ~ N(0, I) come from the global torch RNG, which the engine seeds.
        """
        x0 = masks * 2 - 1
        t = torch.randint(0, self.hparams.timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = q_sample(x0, t, noise, self.alphas_cumprod)
        out = self.network_output(x_t, t, self.encode(images))
        if self.hparams.loss == "bce_dice":
            return bce_dice_loss(out, masks)
        return F.mse_loss(out, noise if self.hparams.prediction == "epsilon" else x0)

    @torch.inference_mode()
    def sample(self, images: Tensor, seeds: Tensor, recompute_condition: bool = False) -> Tensor:
        """Sample x_0 (B, 1, H, W), roughly in [-1, 1], for images (B, 1, H, W) with one seed per sample.

        The condition does not depend on t, so it is encoded once and reused at
        every step; recompute_condition=True re-encodes it at every step instead
        (same result, for tests and benchmarks).
        """
        generators = sample_generators(seeds)
        x_T = randn_per_sample(images.shape[1:], generators, images.device)
        condition = None if recompute_condition else self.encode(images)

        def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
            c = self.encode(images) if recompute_condition else condition
            # samplers work in float32 whatever precision the network runs in
            return self.noise_prediction(x_t, t, c).float()

        if self.hparams.sampler == "ddpm":
            return ddpm_sample(eps_fn, x_T, self.alphas_cumprod, generators, self.hparams.clip_x0)
        if self.hparams.sampler == "dpmpp2m":
            return dpmpp_2m_sample(eps_fn, x_T, self.alphas_cumprod, self.hparams.sampling_steps, self.hparams.clip_x0)
        return ddim_sample(
            eps_fn,
            x_T,
            self.alphas_cumprod,
            self.hparams.sampling_steps,
            self.hparams.eta,
            generators,
            self.hparams.clip_x0,
        )

    def predict(self, images: Tensor, seeds: Tensor) -> Prediction:
        """Mask probabilities (B, 1, H, W) in [0, 1]: clamp((x_0 + 1) / 2, 0, 1) of one sample per seed."""
        x0 = self.sample(images, seeds)
        return Prediction(((x0 + 1) / 2).clamp(0, 1), None)
