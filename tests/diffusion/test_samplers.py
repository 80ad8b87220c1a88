"""DDIM, DDPM and DPM-Solver++(2M) samplers against closed forms, each other, and a Gaussian target with a known optimal eps."""

import math

import numpy as np
import pytest
import torch

from segbench_backbone.samplers import (
    ddim_sample,
    ddim_step,
    ddim_timesteps,
    ddpm_sample,
    ddpm_step,
    dpmpp_2m_sample,
    dpmpp_timesteps,
    randn_per_sample,
)
from segbench_backbone.schedules import alphas_cumprod, linear_betas

T = 1000
BETAS = linear_betas(T, 1e-4, 0.02)
ABAR = alphas_cumprod(BETAS)

# Data x_0 ~ N(MU, S^2) per element. Then x_t ~ N(sqrt(abar) MU, abar S^2 + 1 - abar) and the
# optimal noise prediction is E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) MU) / (abar S^2 + 1 - abar).
MU, S = 0.5, 0.3


def gaussian_eps(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    abar = ABAR[t].reshape(-1, *([1] * (x_t.dim() - 1)))
    return (1 - abar).sqrt() * (x_t - abar.sqrt() * MU) / (abar * S**2 + 1 - abar)


def generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_ddim_timesteps_leading_spacing():
    assert ddim_timesteps(T, 50) == list(range(980, -1, -20))
    assert ddim_timesteps(T, 1000) == list(range(999, -1, -1))
    assert ddim_timesteps(T, 1) == [0]


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("t, t_prev", [(980, 960), (500, 480), (20, 0)])
def test_ddim_step_matches_closed_form(eta, t, t_prev):
    g = torch.Generator().manual_seed(0)
    x_t, eps, z = (torch.randn(3, 1, 8, 8, generator=g) for _ in range(3))
    a_t, a_prev = ABAR[t].double().item(), ABAR[t_prev].double().item()
    # x_{t-1} = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) eps + sigma z, written out in float64
    x0 = (x_t.double() - math.sqrt(1 - a_t) * eps.double()) / math.sqrt(a_t)
    sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t)) * math.sqrt(1 - a_t / a_prev)
    expected = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev - sigma**2) * eps.double() + sigma * z.double()
    got = ddim_step(eps, x_t, ABAR[t], ABAR[t_prev], eta, z if eta > 0 else None)
    assert torch.allclose(got.double(), expected, rtol=1e-4, atol=1e-4)


def test_ddim_step_to_alpha_one_returns_predicted_x0():
    x_t, eps = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    got = ddim_step(eps, x_t, ABAR[0], torch.tensor(1.0), eta=1.0, noise=torch.randn(2, 1, 4, 4))
    assert torch.allclose(got, (x_t - (1 - ABAR[0]).sqrt() * eps) / ABAR[0].sqrt(), atol=1e-6)


def test_ddim_clip_x0_keeps_result_in_range():
    x_t, eps = 3 * torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    x0 = ddim_step(eps, x_t, ABAR[10], torch.tensor(1.0), clip_x0=True)
    assert x0.abs().max() <= 1.0


def test_ddim_eta0_is_deterministic_and_draws_nothing():
    x_T = torch.randn(4, 1, 8, 8)
    state = torch.get_rng_state()
    first = ddim_sample(gaussian_eps, x_T, ABAR, steps=20)
    second = ddim_sample(gaussian_eps, x_T, ABAR, steps=20)
    assert torch.equal(first, second)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("t", [999, 500, 100, 1, 0])
def test_ddim_eta1_full_grid_step_is_ddpm_posterior(t):
    """With consecutive timesteps and eta = 1, sigma_t^2 is the posterior variance beta_tilde_t and the
    DDIM mean is the posterior mean: DDIM(eta=1) and ancestral DDPM take the same step.
    In float64: near t = 0, 1 - abar cancels badly in float32."""
    g = torch.Generator().manual_seed(t)
    x_t, eps, z = (torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64) for _ in range(3))
    abar = ABAR.double()
    a_prev = abar[t - 1] if t > 0 else abar.new_tensor(1.0)
    ddim = ddim_step(eps, x_t, abar[t], a_prev, eta=1.0, noise=z)
    ddpm = ddpm_step(eps, x_t, t, abar, noise=z)
    assert torch.allclose(ddim, ddpm, rtol=1e-9, atol=1e-9)


def test_ddim_eta1_full_grid_sampling_matches_ddpm():
    x_T = randn_per_sample((1, 16, 16), generators([1, 2]))
    ddim = ddim_sample(gaussian_eps, x_T, ABAR, steps=T, eta=1.0, generators=generators([10, 11]))
    ddpm = ddpm_sample(gaussian_eps, x_T, ABAR, generators=generators([10, 11]))
    assert torch.allclose(ddim, ddpm, atol=1e-3)


def gaussian_moments_tolerance(n: int) -> tuple[float, float]:
    """5 standard errors of the sample mean and variance of n draws from N(MU, S^2)."""
    return 5 * S / math.sqrt(n), 5 * S**2 * math.sqrt(2 / n)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_full_grid_samples_gaussian_target(eta):
    seeds = range(8)
    x_T = randn_per_sample((1, 32, 32), generators(seeds))
    x0 = ddim_sample(gaussian_eps, x_T, ABAR, T, eta, generators([s + 100 for s in seeds]))
    mean_tol, var_tol = gaussian_moments_tolerance(x0.numel())
    assert x0.mean().item() == pytest.approx(MU, abs=mean_tol)
    assert x0.var().item() == pytest.approx(S**2, abs=var_tol)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_coarse_grid_keeps_mean_and_shrinks_variance(eta):
    """A known discretisation bias, not sampling noise: a large step moves x_t most of the way to
    x0_hat = E[x0 | x_t], whose spread is smaller than the data's (one step from abar ~ 0 gives
    almost exactly MU). With eta = 1 the posterior step also drops Var[x0 | x_t]. 50 steps: ~0.07-0.076 for 0.09."""
    seeds = range(8)
    x_T = randn_per_sample((1, 32, 32), generators(seeds))
    x0 = ddim_sample(gaussian_eps, x_T, ABAR, 50, eta, generators([s + 100 for s in seeds]))
    mean_tol, var_tol = gaussian_moments_tolerance(x0.numel())
    assert x0.mean().item() == pytest.approx(MU, abs=mean_tol)
    assert 0.6 * S**2 < x0.var().item() < S**2 - var_tol


def test_ddpm_samples_gaussian_target():
    seeds = range(8)
    x_T = randn_per_sample((1, 32, 32), generators(seeds))
    x0 = ddpm_sample(gaussian_eps, x_T, ABAR, generators([s + 100 for s in seeds]))
    mean_tol, var_tol = gaussian_moments_tolerance(x0.numel())
    assert x0.mean().item() == pytest.approx(MU, abs=mean_tol)
    assert x0.var().item() == pytest.approx(S**2, abs=var_tol)


def test_per_sample_noise_independent_of_batch():
    batch = randn_per_sample((1, 4, 4), generators([7, 8, 9]))
    alone = randn_per_sample((1, 4, 4), generators([8]))
    assert torch.equal(batch[1], alone[0])


def test_stochastic_samplers_need_generators():
    x_T = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match="^ddim_sample with eta > 0 needs one generator per sample$"):
        ddim_sample(gaussian_eps, x_T, ABAR, steps=5, eta=0.5)
    with pytest.raises(ValueError, match="^ddpm_sample needs one generator per sample$"):
        ddpm_sample(gaussian_eps, x_T, ABAR, generators=generators([1]))
    with pytest.raises(ValueError, match="^ddpm_step with t > 0 needs noise$"):
        ddpm_step(gaussian_eps(x_T, torch.tensor([5, 5])), x_T, 5, ABAR)
    with pytest.raises(ValueError, match="^ddim_step with eta > 0 needs noise$"):
        ddim_step(gaussian_eps(x_T, torch.tensor([5, 5])), x_T, ABAR[5], ABAR[0], eta=0.5)


def test_dpmpp_timesteps_linspace():
    assert dpmpp_timesteps(T, 5) == [999, 799, 599, 400, 200]
    assert len(dpmpp_timesteps(T, 50)) == 50 and dpmpp_timesteps(T, 1) == [999]
    # 42 steps put a grid point at 499.5 exactly: rounded in float64 (half to even) as diffusers' numpy grid
    assert dpmpp_timesteps(T, 42) == np.linspace(0, T - 1, 43).round().astype(int)[::-1][:-1].tolist()


# x0 predictions below -1, inside [-1, 1] and above 1
TARGET = torch.tensor([-3.0, -1.5, -0.4, 0.3, 1.2, 2.0]).reshape(1, 1, 2, 3)


def target_eps(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The eps whose implied x0 is TARGET everywhere."""
    abar = ABAR[t].reshape(-1, 1, 1, 1)
    return (x_t - abar.sqrt() * TARGET) / (1 - abar).sqrt()


@pytest.mark.parametrize("steps", [1, 3])
def test_dpmpp_2m_clips_the_data_prediction(steps):
    """Its last step returns the data prediction: TARGET clamped to [-1, 1] with clip_x0, TARGET without."""
    x_T = randn_per_sample((1, 2, 3), generators(range(2)))
    clipped = dpmpp_2m_sample(target_eps, x_T, ABAR, steps, clip_x0=True)
    assert torch.allclose(clipped, TARGET.clamp(-1, 1).expand_as(x_T), atol=1e-5)
    assert torch.allclose(dpmpp_2m_sample(target_eps, x_T, ABAR, steps), TARGET.expand_as(x_T), atol=1e-4)


def test_ddpm_clips_the_data_prediction():
    """At t > 0 the step is the posterior mean of Ho et al. Eq. 7 at the clamped x0 plus sigma z; the step at
    t = 0 returns the clamped x0 itself."""
    x_t, noise = randn_per_sample((1, 2, 3), generators([1, 2])), randn_per_sample((1, 2, 3), generators([3, 4]))
    t, abar_t, abar_prev = 40, ABAR[40].item(), ABAR[39].item()
    beta = 1 - abar_t / abar_prev
    x0 = TARGET.clamp(-1, 1)
    mean = (math.sqrt(abar_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - abar_prev) * x_t) / (1 - abar_t)
    expected = mean + math.sqrt((1 - abar_prev) / (1 - abar_t) * beta) * noise
    out = ddpm_step(target_eps(x_t, torch.tensor([t, t])), x_t, t, ABAR, noise, clip_x0=True)
    assert torch.allclose(out, expected, atol=1e-5)
    sample = ddpm_sample(target_eps, x_t, ABAR[:3], generators([1, 2]), clip_x0=True)
    assert torch.allclose(sample, x0.expand_as(x_t), atol=1e-5)


@pytest.mark.parametrize("sample", [
    lambda eps_fn, x_T: ddim_sample(eps_fn, x_T, ABAR, 3),
    lambda eps_fn, x_T: ddim_sample(eps_fn, x_T, ABAR, 3, eta=1.0, generators=generators([1, 2])),
    lambda eps_fn, x_T: ddpm_sample(eps_fn, x_T, ABAR[:4], generators([1, 2])),
    lambda eps_fn, x_T: dpmpp_2m_sample(eps_fn, x_T, ABAR, 3),
], ids=["ddim", "ddim-eta1", "ddpm", "dpmpp2m"])
def test_samplers_call_the_network_with_int64_timesteps_per_sample_on_the_device_and_dtype_of_x_T(sample):
    """The meta device stands in for an accelerator: a timestep or draw left on the CPU fails there; DPM-Solver++
    computes in float64 and must hand the network x_T's dtype."""
    calls = []

    def eps_fn(x_t, t):
        calls.append((t.dtype, tuple(t.shape), t.device.type, x_t.device.type, x_t.dtype))
        return torch.zeros_like(x_t)

    out = sample(eps_fn, torch.zeros(2, 1, 4, 4, device="meta"))
    assert out.device.type == "meta" and out.dtype == torch.float32 and calls
    assert set(calls) == {(torch.int64, (2,), "meta", "meta", torch.float32)}


@pytest.mark.parametrize("steps", [1, 2, 7, 20])
def test_dpmpp_2m_is_exact_for_a_point_mass(steps):
    """Data x_0 = c: the exact eps is (x_t - sqrt(abar) c) / sqrt(1 - abar), every data prediction is c,
    and the closed-form update x_s = (sigma_s / sigma_t) x_t - alpha_s (e^{-h} - 1) c stays on the exact path."""
    c = 0.7

    def point_eps(x_t, t):
        abar = ABAR[t].reshape(-1, 1, 1, 1)
        return (x_t - abar.sqrt() * c) / (1 - abar).sqrt()

    x_T = randn_per_sample((1, 8, 8), generators(range(3)))
    assert torch.allclose(dpmpp_2m_sample(point_eps, x_T, ABAR, steps), torch.full_like(x_T, c), atol=1e-5)


@pytest.mark.parametrize("steps", [20, 50])
def test_dpmpp_2m_reaches_the_gaussian_target_faster_than_ddim(steps):
    """Second order: at equal network evaluations its variance is closer to S^2 than DDIM's (both deterministic)."""
    x_T = randn_per_sample((1, 32, 32), generators(range(8)))
    fast = dpmpp_2m_sample(gaussian_eps, x_T, ABAR, steps)
    ddim = ddim_sample(gaussian_eps, x_T, ABAR, steps)
    mean_tol, var_tol = gaussian_moments_tolerance(fast.numel())
    assert fast.mean().item() == pytest.approx(MU, abs=mean_tol)
    assert abs(fast.var().item() - S**2) < abs(ddim.var().item() - S**2)
    if steps == 50:
        assert fast.var().item() == pytest.approx(S**2, abs=var_tol)
