"""Noise levels and the VE / VP SDEs: closed forms, consistency of kernel, drift and discretisation."""

import math

import pytest
import torch

from segbench_score.schedules import VESDE, VPSDE, geometric_sigmas, time_grid

SDES = {"vp": VPSDE(0.1, 20.0, 1e-3), "ve": VESDE(0.01, 50.0, 1e-5)}


def test_geometric_sigmas():
    sigmas = geometric_sigmas(60.0, 0.01, 259)
    assert sigmas.shape == (259,) and sigmas.dtype == torch.float64
    assert sigmas[0].item() == pytest.approx(60.0) and sigmas[-1].item() == pytest.approx(0.01)
    ratios = sigmas[:-1] / sigmas[1:]
    # NCSNv2's technique 2 ratio for 64 x 64 masks
    assert torch.allclose(ratios, torch.full_like(ratios, 1.0343), atol=1e-4)
    one = geometric_sigmas(5.1, 0.1, 1)
    assert one.dtype == torch.float64 and one.tolist() == [5.1]
    assert geometric_sigmas(5.1, 0.1, 2).tolist() == pytest.approx([5.1, 0.1], rel=1e-14)


def test_time_grid():
    grid = time_grid(4, 1e-3)
    assert grid[0] == 1.0 and grid[-1] == pytest.approx(1e-3) and len(grid) == 5
    # in float64: each time within rounding of 1 - k (1 - t_min) / steps
    assert grid == pytest.approx([1 - k * (1 - 1e-3) / 4 for k in range(5)], rel=1e-14, abs=1e-15)


def test_vp_marginal_closed_form():
    """log a_1 = -(beta_max - beta_min) / 4 - beta_min / 2 for beta linear on [0, 1]."""
    a, std = VPSDE(0.1, 20.0).marginal(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert a.tolist() == pytest.approx([1.0, math.exp(-19.9 / 4 - 0.05)])
    assert std.tolist() == pytest.approx([0.0, math.sqrt(1 - math.exp(-19.9 / 2 - 0.1))])


def test_ve_sigma_is_geometric_in_t():
    sde = SDES["ve"]
    sigma = sde.sigma(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    assert sigma.tolist() == pytest.approx([0.01, math.sqrt(0.01 * 50.0), 50.0])


@pytest.mark.parametrize("sde", ["vp", "ve"])
@pytest.mark.parametrize("t", [0.05, 0.5, 0.95])
def test_kernel_solves_the_sdes_moment_equations(sde, t):
    """For the linear SDE dx = f(t) x dt + g(t) dw: da/dt = f a and d(s^2)/dt = 2 f s^2 + g^2."""
    sde, h = SDES[sde], 1e-5
    times = torch.tensor([t - h, t, t + h], dtype=torch.float64)
    a, std = sde.marginal(times)
    x = torch.ones(1, 1, dtype=torch.float64)
    f, g = sde.drift_diffusion(x, times[1:2])
    f, g2 = f.item(), g.item() ** 2  # f(x, t) = f x at x = 1
    assert (a[2] - a[0]).item() / (2 * h) == pytest.approx(f * a[1].item(), rel=1e-5, abs=1e-9)
    assert (std[2] ** 2 - std[0] ** 2).item() / (2 * h) == pytest.approx(2 * f * std[1].item() ** 2 + g2, rel=1e-5)


def test_vp_discretisation_composes_to_the_kernel():
    """The DDPM chain's sqrt(1 - beta_i) multiply to a_1 / a_{t_min}, whatever the grid."""
    sde = SDES["vp"]
    grid = time_grid(7, sde.t_min)
    x = torch.ones(1, 1, dtype=torch.float64)
    product = 1.0
    for t, t_next in zip(grid, grid[1:]):
        f, _ = sde.discretize(x, torch.tensor([t], dtype=torch.float64), t - t_next)
        product *= 1 + f.item()  # f_i = (sqrt(1 - beta_i) - 1) x
    a = sde.marginal(torch.tensor([1.0, sde.t_min], dtype=torch.float64))[0]
    assert product == pytest.approx((a[0] / a[1]).item(), rel=1e-9)


def test_ve_discretisation_adds_up_to_the_kernel_variance():
    sde = SDES["ve"]
    grid = time_grid(7, sde.t_min)
    x = torch.ones(1, 1, dtype=torch.float64)
    total = sum(
        sde.discretize(x, torch.tensor([t], dtype=torch.float64), t - t_next)[1].item() ** 2
        for t, t_next in zip(grid, grid[1:])
    )
    sigma = sde.sigma(torch.tensor([1.0, sde.t_min], dtype=torch.float64))
    assert total == pytest.approx((sigma[0] ** 2 - sigma[1] ** 2).item(), rel=1e-9)


def test_corrector_alpha():
    t = torch.tensor([0.5])
    assert SDES["ve"].corrector_alpha(t, 0.01).item() == 1.0
    assert SDES["vp"].corrector_alpha(t, 0.01).item() == pytest.approx(1 - SDES["vp"].discrete_beta(t, 0.01).item())
