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


def test_q_sample_is_eq_4_for_the_given_noise():
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, sample by sample, against abar_t from its definition."""
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(3, 1, 4, 4, generator=g) * 2 - 1, torch.randn(3, 1, 4, 4, generator=g)
    t = [5, 400, 999]
    x_t = q_sample(x0, torch.tensor(t), noise, alphas_cumprod(linear_betas(T, 1e-4, 0.02)))
    for i, step in enumerate(t):
        abar = reference_alpha_cumprod(step)
        assert torch.allclose(x_t[i], math.sqrt(abar) * x0[i] + math.sqrt(1 - abar) * noise[i], rtol=1e-4, atol=1e-6)


def test_q_sample_moves_the_schedule_to_the_device_of_x0():
    """The schedule lives on the CPU; x_0 and t on the training device (meta stands in for an accelerator)."""
    x0 = torch.zeros(2, 1, 4, 4, device="meta")
    x_t = q_sample(x0, torch.tensor([0, 999], device="meta"), torch.zeros_like(x0),
                   alphas_cumprod(linear_betas(T, 1e-4, 0.02)))
    assert x_t.device.type == "meta" and x_t.shape == x0.shape


def test_linear_betas_are_float32_whatever_the_default_dtype():
    """float32 like diffusers' schedule (DDIM parity to the bit), also where a caller made float64 the default."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert linear_betas(T, 1e-4, 0.02).dtype == torch.float32
    finally:
        torch.set_default_dtype(dtype)
