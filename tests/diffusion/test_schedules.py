"""Noise schedule values and the forward process q(x_t | x_0)."""

import math

import pytest
import torch

from segbench_backbone.schedules import alphas_cumprod, linear_betas, q_sample

T = 1000


def reference_alpha_cumprod(t: int) -> float:
    """abar_t in float64 from the definition: prod over s <= t of (1 - beta_s), beta linear in 1e-4..0.02."""
    return math.prod(1 - (1e-4 + s * (0.02 - 1e-4) / (T - 1)) for s in range(t + 1))


def test_linear_betas_endpoints_and_spacing():
    betas = linear_betas(T, 1e-4, 0.02)
    assert betas.shape == (T,) and betas.dtype == torch.float32
    assert betas[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert betas[-1].item() == pytest.approx(0.02, rel=1e-6)
    assert torch.allclose(betas.diff(), torch.full((T - 1,), (0.02 - 1e-4) / (T - 1)), rtol=1e-3)


@pytest.mark.parametrize("t", [0, 1, 10, 250, 500, 980, 999])
def test_alphas_cumprod_matches_definition(t):
    abar = alphas_cumprod(linear_betas(T, 1e-4, 0.02))
    assert abar[t].item() == pytest.approx(reference_alpha_cumprod(t), rel=1e-4)


def test_alphas_cumprod_known_values():
    abar = alphas_cumprod(linear_betas(T, 1e-4, 0.02))
    assert abar[0].item() == pytest.approx(1 - 1e-4, rel=1e-7)
    # the last value of the standard linear schedule, as quoted for DDPM
    assert abar[-1].item() == pytest.approx(4.0358e-5, rel=1e-3)
    assert bool((abar.diff() < 0).all())


@pytest.mark.parametrize("t", [0, 300, 999])
def test_q_sample_moments(t):
    abar = alphas_cumprod(linear_betas(T, 1e-4, 0.02))
    n = 200_000
    x0 = torch.full((n, 1), 0.7)
    generator = torch.Generator().manual_seed(t)
    x_t = q_sample(x0, torch.full((n,), t), torch.randn(n, 1, generator=generator), abar)
    mean, var = abar[t].sqrt().item() * 0.7, 1 - abar[t].item()
    # tolerance: 5 standard errors of the sample mean / variance
    assert x_t.mean().item() == pytest.approx(mean, abs=5 * math.sqrt(var / n) + 1e-7)
    assert x_t.var().item() == pytest.approx(var, abs=5 * var * math.sqrt(2 / n) + 1e-7)


def test_q_sample_per_sample_timesteps():
    abar = alphas_cumprod(linear_betas(T, 1e-4, 0.02))
    x0, noise = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    x_t = q_sample(x0, torch.tensor([0, 999]), noise, abar)
    assert torch.allclose(x_t[0], abar[0].sqrt().expand(1, 4, 4))
    assert torch.allclose(x_t[1], abar[999].sqrt().expand(1, 4, 4))
