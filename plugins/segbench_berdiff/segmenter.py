"""berdiff: Bernoulli diffusion on the binary mask (BerDiff, Chen et al. MICCAI 2023) on diff-add's network, the
RRDB image condition added to the noisy mask before the U-Net.

x_t in {0, 1} enters the network as 2 x_t - 1 in {-1, 1}, the range diff-add's masks have. The network's
output is a logit: of the flip noise eps_hat (prediction="epsilon", the paper) or of x0_hat ("x0"). For a
binary x_t, x0_hat = |x_t - sigmoid(out)| = sigmoid(out (1 - 2 x_t)), so both give x0_hat's logit exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from segbench import Prediction
from segbench.losses import soft_dice_loss
from segbench.noise import sample_generators
from segbench_backbone.conditional import ConditionalUNet
from segbench_backbone.schedules import alphas_cumprod, linear_betas
from segbench_berdiff.bernoulli import (
    ancestral_sample,
    bernoulli_kl,
    bernoulli_per_sample,
    ddim_sample,
    posterior_probability,
    q_probability,
)
from segbench_berdiff.hyperparameters import BerDiffHyperparameters


class BerDiffSegmenter(ConditionalUNet):
    """Conditional Bernoulli diffusion segmenter; implements segbench's Segmenter."""

    def __init__(self, hparams: BerDiffHyperparameters) -> None:
        super().__init__(hparams, "add")
        self.hparams = hparams
        betas = linear_betas(hparams.timesteps, hparams.beta_start, hparams.beta_end)
        # derived from the hyperparameters, so not saved in checkpoints
        self.register_buffer("alphas", 1 - betas, persistent=False)
        self.register_buffer("alphas_cumprod", alphas_cumprod(betas), persistent=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> BerDiffSegmenter:
        """Build from a factory's input (the hyperparameters and image_size)."""
        return cls(BerDiffHyperparameters.from_mapping(values))

    def x0_logit(self, x_t: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        """The logit of x0_hat = P(x_0 = 1 | x_t) (B, 1, H, W), float32, for x_t (B, 1, H, W) in {0, 1}."""
        out = self.network_output(x_t * 2 - 1, t, condition).float()
        # eps-prediction: x0_hat = |x_t - sigmoid(out)| (BerDiff Sec. 2.2) = sigmoid(out) for x_t = 0,
        # 1 - sigmoid(out) = sigmoid(-out) for x_t = 1
        return out if self.hparams.prediction == "x0" else out * (1 - 2 * x_t)

    def _step_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """alpha_t and abar_{t-1} (B, 1, 1, 1) of the posterior at index t; abar = 1 before index 0."""
        shape = (-1, 1, 1, 1)
        abar_prev = torch.where(t > 0, self.alphas_cumprod[(t - 1).clamp(min=0)], torch.ones_like(self.alphas[t]))
        return self.alphas[t].view(shape), abar_prev.view(shape)

    def training_loss(self, images: Tensor, masks: Tensor) -> Tensor:
        """L_KL + lambda L_BCE (Eq. 8), per-pixel means: KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))
        (Eq. 6) with p_theta = B(theta_post(x_t, x0_hat)), and BCE of the flip noise eps = |x_t - x_0| (Eq. 7),
        which for a binary x_t equals BCE(x0_hat, x_0). At index 0 the posterior is the point mass on x_0
        (abar = 1 before it), so the KL is the decoder's -log p_theta(x_0 | x_1) there.
        loss="mix_dice" adds a soft Dice on x0_hat; "kl" and "bce" are either term alone.

        t ~ U{0..T-1} and the Bernoulli draws of x_t come from the global torch RNG, which the engine seeds.
        """
        t = torch.randint(0, self.hparams.timesteps, (masks.shape[0],), device=masks.device)
        abar_t = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = (torch.rand_like(masks) < q_probability(masks, abar_t)).to(masks.dtype)  # Eq. 2
        logit = self.x0_logit(x_t, t, self.encode(images))
        terms = []
        if self.hparams.loss != "bce":
            alpha_t, abar_prev = self._step_coefficients(t)
            target = posterior_probability(x_t, masks, alpha_t, abar_prev)
            model = posterior_probability(x_t, torch.sigmoid(logit), alpha_t, abar_prev)
            terms.append(bernoulli_kl(target, model).mean())
        if self.hparams.loss != "kl":
            terms.append(self.hparams.bce_weight * F.binary_cross_entropy_with_logits(logit, masks))
        if self.hparams.loss == "mix_dice":
            terms.append(soft_dice_loss(logit, masks))
        return torch.stack(terms).sum()

    @torch.inference_mode()
    def sample(self, images: Tensor, seeds: Tensor) -> Tensor:
        """Mask probabilities x0_hat (B, 1, H, W) in [0, 1] of the last step, one trajectory per seed: x_T ~ B(1/2)
        and every Bernoulli draw from the sample's own generator."""
        generators = sample_generators(seeds)
        condition = self.encode(images)  # does not depend on t: encoded once
        x_T = bernoulli_per_sample(torch.full_like(images, 0.5), generators)

        def x0_fn(x_t: Tensor, t: Tensor) -> Tensor:
            return torch.sigmoid(self.x0_logit(x_t, t, condition))

        if self.hparams.sampler == "ddpm":
            return ancestral_sample(x0_fn, x_T, self.alphas, self.alphas_cumprod, generators)
        return ddim_sample(x0_fn, x_T, self.alphas_cumprod, self.hparams.sampling_steps, generators)

    def predict(self, images: Tensor, seeds: Tensor) -> Prediction:
        """Mask probabilities (B, 1, H, W) in [0, 1]: the final x0_hat of one sampled trajectory per seed."""
        return Prediction(self.sample(images, seeds).float().clamp(0, 1), None)


def berdiff(values: Mapping[str, Any]) -> BerDiffSegmenter:
    """Factory of `berdiff`."""
    return BerDiffSegmenter.from_mapping(values)
