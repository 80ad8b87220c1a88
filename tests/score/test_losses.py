"""Denoising score matching is minimised by the true score of a Gaussian target."""

import pytest
import torch

from segbench_score.losses import dsm_loss
from segbench_score.schedules import VPSDE, expand

MU, S = 0.5, 0.3
N = 400_000


def perturbed(a: float, std: float):
    g = torch.Generator().manual_seed(0)
    x0 = MU + S * torch.randn(N, 1, generator=g, dtype=torch.float64)
    z = torch.randn(N, 1, generator=g, dtype=torch.float64)
    return a * x0 + std * z, z, torch.full((N,), std, dtype=torch.float64)


def true_score(x, a, std):
    return -(x - a * MU) / (a**2 * S**2 + std**2)


def test_dsm_loss_is_the_weighted_distance_to_the_kernel_score():
    x, z, std = perturbed(1.0, 0.7)
    score = torch.randn_like(x)
    kernel_score = -z / expand(std, x)  # grad log N(x; x0, sigma^2) = -(x - x0) / sigma^2
    literal = (expand(std, x) ** 2 * (score - kernel_score) ** 2).mean()
    torch.testing.assert_close(dsm_loss(score, z, std), literal)


@pytest.mark.parametrize("a, std", [(1.0, 0.05), (1.0, 0.5), (1.0, 5.0), *[
    tuple(v.item() for v in VPSDE().marginal(torch.tensor(t, dtype=torch.float64))) for t in (0.05, 0.3, 0.9)
]])
def test_true_score_minimises_dsm(a, std):
    """At the optimum the loss is a^2 S^2 / (a^2 S^2 + s^2) per element (the part of the noise no score
    can explain); scaling or shifting the score raises it."""
    x, z, std_t = perturbed(a, std)
    best = dsm_loss(true_score(x, a, std), z, std_t).item()
    v = a**2 * S**2 + std**2
    assert best == pytest.approx(a**2 * S**2 / v, rel=0.02)
    for wrong in (1.1 * true_score(x, a, std), 0.9 * true_score(x, a, std), true_score(x, a, std) + 0.1 / std):
        assert dsm_loss(wrong, z, std_t).item() > best
