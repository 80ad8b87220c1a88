"""Denoising score matching (Vincent 2011), the objective of NCSN and score-SDE."""

from __future__ import annotations

from torch import Tensor

from segbench_score.schedules import expand


def dsm_loss(score: Tensor, noise: Tensor, std: Tensor) -> Tensor:
    """lambda(sigma) E||s_theta(x~) - grad log p(x~ | x)||^2 with lambda(sigma) = sigma^2
    (Song & Ermon 2019, Eq. 2 and 5; Song et al. 2021, Eq. 7).

    For x~ = a x + sigma z the kernel's score is -z / sigma, so each term is
    ||sigma s_theta + z||^2. score, noise: (B, ...); std: sigma per sample (B,).
    Averaged over samples and elements (the papers sum over elements: a constant factor).
    """
    return (expand(std, score) * score + noise).square().mean()
