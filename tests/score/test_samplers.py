"""Every sampler driven by the exact score of a Gaussian target N(MU, S^2) per element.

For x_0 ~ N(MU, S^2) and a kernel N(a x_0, s^2), the perturbed marginal is
N(a MU, a^2 S^2 + s^2), whose score is -(x - a MU) / (a^2 S^2 + s^2): no network,
only the samplers' mathematics. Tolerances are 5 standard errors of the sample
mean and variance for the number of draws. Then each sampler against its steps
redone by hand from the papers' formulas on the same draws.
"""

import math

import pytest
import torch

from segbench_backbone.samplers import ddim_sample, randn_per_sample
from segbench_backbone.schedules import alphas_cumprod, linear_betas
from segbench_score.samplers import (
    annealed_langevin,
    euler_maruyama,
    langevin_corrector_step,
    predictor_corrector,
    probability_flow_heun,
    reverse_diffusion_step,
)
from segbench_score.schedules import VESDE, VPSDE, expand, geometric_sigmas

MU, S = 0.5, 0.3
SHAPE, BATCH = (1, 64, 64), 8  # 32768 independent draws
# VE's sigma_max must dwarf the data: a deterministic ODE keeps the prior's error, which
# for N(0, sigma_max^2) against the true N(MU, S^2 + sigma_max^2) shifts the mean by MU S / sigma_max.
SDES = {"vp": VPSDE(0.1, 20.0, 1e-3), "ve": VESDE(0.01, 50.0, 1e-5)}


def generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def ncsn_score(x, sigma):
    return -(x - MU) / (S**2 + expand(sigma, x) ** 2)


def sde_score(sde):
    def score(x, t):
        a, std = (expand(v, x) for v in sde.marginal(t))
        return -(x - a * MU) / (a**2 * S**2 + std**2)

    return score


def prior(std: float) -> torch.Tensor:
    return std * randn_per_sample(SHAPE, generators(range(BATCH)))


def assert_moments(x: torch.Tensor, variance: float = S**2) -> None:
    n = x.numel()
    assert x.mean().item() == pytest.approx(MU, abs=5 * S / math.sqrt(n))
    assert x.var().item() == pytest.approx(variance, abs=5 * variance * math.sqrt(2 / n))


def test_annealed_langevin_samples_gaussian_target():
    """Stable steps need eps < 2 sigma_L^2 (alpha_1 / sigma_1^2 = eps / sigma_L^2); sigma_L = 0.1 S keeps the
    last level's extra variance (1 %) and Langevin's step bias (0.25 %) inside the tolerance."""
    sigmas = geometric_sigmas(3.0, 0.03, 20).tolist()
    x = annealed_langevin(ncsn_score, prior(3.0), sigmas, 200, 9e-4, generators(range(100, 100 + BATCH)))
    assert_moments(x)


def test_annealed_langevin_final_denoising_is_tweedie():
    """One level, no Langevin steps: the result is x + sigma^2 s(x, sigma) = E[x_0 | x]."""
    x = torch.randn(2, 1, 4, 4)
    out = annealed_langevin(ncsn_score, x, [0.5], 0, 1e-3, generators([1, 2]))
    torch.testing.assert_close(out, MU + (x - MU) * S**2 / (S**2 + 0.25))


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_euler_maruyama_samples_gaussian_target(sde):
    x = euler_maruyama(sde_score(SDES[sde]), prior(SDES[sde].prior_std), SDES[sde], 500, generators(range(100, 108)))
    assert_moments(x)


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_predictor_corrector_samples_gaussian_target(sde):
    """Langevin with step e = 2 r^2 v (for ||z|| / ||s|| = sqrt(v)) has stationary variance v / (1 - r^2):
    the corrector's known bias at snr r, 2.6 % for r = 0.16, which the last step leaves in the sample."""
    x = predictor_corrector(
        sde_score(SDES[sde]), prior(SDES[sde].prior_std), SDES[sde], 200, generators(range(100, 108)), snr=0.16
    )
    assert_moments(x, S**2 / (1 - 0.16**2))


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_predictor_only_samples_gaussian_target(sde):
    x = predictor_corrector(
        sde_score(SDES[sde]), prior(SDES[sde].prior_std), SDES[sde], 500, generators(range(100, 108)),
        corrector_steps=0,
    )
    assert_moments(x)


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_probability_flow_heun_samples_gaussian_target(sde):
    x = probability_flow_heun(sde_score(SDES[sde]), prior(SDES[sde].prior_std), SDES[sde], 100)
    assert_moments(x)


def test_ddim_samples_gaussian_target_from_its_score():
    """The diffusion plugin's DDIM driven by the same target: eps = -sqrt(1 - abar) * score."""
    abar = alphas_cumprod(linear_betas(1000, 1e-4, 0.02))

    def eps_fn(x, t):
        a = expand(abar[t], x)
        score = -(x - a.sqrt() * MU) / (a * S**2 + 1 - a)
        return -(1 - a).sqrt() * score

    assert_moments(ddim_sample(eps_fn, prior(1.0), abar, 1000))


def test_langevin_corrector_step_size_follows_snr():
    """e = 2 alpha (r ||z|| / ||s||)^2 per sample: with s = -x and alpha = 1, x + e s + sqrt(2 e) z."""
    x = torch.randn(3, 1, 8, 8)
    gens = generators([4, 5, 6])
    z = randn_per_sample(x.shape[1:], generators([4, 5, 6]))
    out = langevin_corrector_step(lambda x, t: -x, x, torch.ones(3), torch.ones(3), 0.2, gens)
    e = expand(2 * (0.2 * z.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)) ** 2, x)
    torch.testing.assert_close(out, x - e * x + (2 * e).sqrt() * z)


def test_reverse_diffusion_step_is_first_order_on_the_vp_chain():
    """For a point mass at MU the noiseless reverse step from the mean a_t MU (where the score is 0) is
    (2 - sqrt(1 - beta_i)) a_t MU, against the exact a_{t-dt} MU = a_t MU / sqrt(1 - beta_i): a local
    error beta_i^2 / 4, so halving dt quarters it."""
    sde = SDES["vp"]
    t = torch.full((1,), 0.5)
    x = expand(sde.marginal(t)[0] * MU, torch.empty(1, 1, 1, 1))

    def error(dt: float) -> float:
        out = reverse_diffusion_step(lambda x, t: torch.zeros_like(x), x, t, dt, sde, None)
        beta = sde.discrete_beta(t, dt)
        assert out.item() == pytest.approx((2 - (1 - beta).sqrt()).item() * x.item(), rel=1e-6)
        return (sde.marginal(t - dt)[0] * MU - out.flatten()).item()

    assert error(0.005) / error(0.01) == pytest.approx(0.25, abs=0.02)


def test_samplers_need_one_generator_per_sample():
    with pytest.raises(ValueError, match="^need one generator per sample: 1 for a batch of 2$"):
        euler_maruyama(sde_score(SDES["vp"]), torch.randn(2, 1, 4, 4), SDES["vp"], 3, generators([1]))


@pytest.mark.parametrize("run", [
    lambda score, x, g: annealed_langevin(score, x, [1.0, 0.1], 1, 1e-3, g),
    lambda score, x, g: euler_maruyama(score, x, SDES["vp"], 2, g),
    lambda score, x, g: predictor_corrector(score, x, SDES["ve"], 2, g),
    lambda score, x, g: probability_flow_heun(score, x, SDES["vp"], 2),
], ids=["langevin", "euler_maruyama", "pc", "heun"])
def test_samplers_call_the_network_with_float32_times_per_sample_on_the_device_of_x(run):
    """The meta device stands in for an accelerator (a time or draw left on the CPU fails there); float64 as
    the default dtype shows a time tensor that does not say float32."""
    calls = []

    def score(x, t):
        calls.append((t.dtype, tuple(t.shape), t.device.type))
        return torch.zeros_like(x)

    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        out = run(score, torch.zeros(2, 1, 4, 4, device="meta"), generators([1, 2]))
    finally:
        torch.set_default_dtype(dtype)
    assert out.device.type == "meta" and calls
    assert set(calls) == {(torch.float32, (2,), "meta")}


@pytest.mark.parametrize(
    "run",
    [
        lambda x, g: annealed_langevin(ncsn_score, x, [1.0, 0.1], 3, 1e-3, g),
        lambda x, g: euler_maruyama(sde_score(SDES["vp"]), x, SDES["vp"], 5, g),
        lambda x, g: predictor_corrector(sde_score(SDES["ve"]), x, SDES["ve"], 5, g),
    ],
    ids=["langevin", "euler_maruyama", "pc"],
)
def test_a_sample_depends_only_on_its_own_generator(run):
    x = torch.randn(4, 1, 8, 8)
    together = run(x, generators([10, 11, 12, 13]))
    alone = run(x[2:3], generators([12]))
    torch.testing.assert_close(together[2:3], alone)
    state = torch.get_rng_state()
    run(x, generators([10, 11, 12, 13]))
    assert torch.equal(torch.get_rng_state(), state), "samplers must not touch the global RNG"


# The solvers step by step, by hand, on the same draws: the SDEs' coefficients from the papers' formulas
# (VP: beta(t) linear, log a_t = -t^2 (beta_max - beta_min) / 4 - t beta_min / 2; VE: sigma(t) geometric).
VP, VE = SDES["vp"], SDES["ve"]


def vp_beta(t: float) -> float:
    return VP.beta_min + t * (VP.beta_max - VP.beta_min)


def vp_log_a(t: float) -> float:
    return -0.25 * t**2 * (VP.beta_max - VP.beta_min) - 0.5 * t * VP.beta_min


def ve_sigma(t: float) -> float:
    return VE.sigma_min * (VE.sigma_max / VE.sigma_min) ** t


def grid(steps: int, t_min: float) -> list[float]:
    return [1 - k * (1 - t_min) / steps for k in range(steps + 1)]


def counted(score_fn, calls: list):
    def score(x, t):
        calls.append(t[0].item())
        return score_fn(x, t)
    return score


def start(std: float) -> torch.Tensor:
    return std * torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(7))


def at(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.full((x.shape[0],), t)


def test_annealed_langevin_by_hand():
    """alpha_i = eps sigma_i^2 / sigma_L^2, x <- x + alpha_i / 2 s(x, sigma_i) + sqrt(alpha_i) z, then Tweedie."""
    sigmas, eps, x, gens = [1.0, 0.4, 0.1], 1e-3, start(1.0), generators([1, 2])
    out = annealed_langevin(ncsn_score, x, sigmas, 2, eps, generators([1, 2]))
    for sigma in sigmas:
        alpha = eps * sigma**2 / sigmas[-1] ** 2
        for _ in range(2):
            x = x + alpha / 2 * ncsn_score(x, at(x, sigma)) + math.sqrt(alpha) * randn_per_sample(x.shape[1:], gens)
    torch.testing.assert_close(out, x + sigmas[-1] ** 2 * ncsn_score(x, at(x, sigmas[-1])))


def test_euler_maruyama_by_hand():
    """x <- x - (f - g^2 s) h + g sqrt(h) z, f = -beta x / 2 and g^2 = beta (VP), no noise on the last step."""
    steps, score = 3, sde_score(VP)
    x, gens = start(1.0), generators([1, 2])
    calls = []
    out = euler_maruyama(counted(score, calls), x, VP, steps, generators([1, 2]))
    times = grid(steps, VP.t_min)
    assert calls == pytest.approx(times[:-1])
    for k in range(steps):
        t, h = times[k], times[k] - times[k + 1]
        x = x - (-vp_beta(t) / 2 * x - vp_beta(t) * score(x, at(x, t))) * h
        if k < steps - 1:
            x = x + math.sqrt(vp_beta(t) * h) * randn_per_sample(x.shape[1:], gens)
    torch.testing.assert_close(out, x)


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_predictor_corrector_by_hand_with_the_papers_defaults(sde):
    """Corrector (Alg. 4-5): e = 2 alpha (r ||z|| / ||s||)^2 per sample, r = 0.16, one step, alpha = 1 (VE) or
    1 - beta_i (VP); predictor (Eq. 46-47): x <- x - f_i + G_i^2 s + G_i z, VE G_i^2 = sigma_i^2 - sigma_{i-1}^2,
    VP beta_i = 1 - a_t^2 / a_{t-h}^2, f_i = (sqrt(1 - beta_i) - 1) x, G_i^2 = beta_i. VE's small scores (||s|| < 1)
    check that the norm is not floored above 1e-12."""
    process, steps = SDES[sde], 3
    score = sde_score(process)
    x, gens = start(process.prior_std), generators([1, 2])
    out = predictor_corrector(score, x, process, steps, generators([1, 2]))
    times = grid(steps, process.t_min)
    for k in range(steps):
        t, h = times[k], times[k] - times[k + 1]
        if sde == "ve":
            g2 = ve_sigma(t) ** 2 - ve_sigma(t - h) ** 2
            alpha = 1.0
        else:
            g2 = 1 - math.exp(2 * (vp_log_a(t) - vp_log_a(t - h)))  # beta_i
            alpha = 1 - g2
        s, z = score(x, at(x, t)), randn_per_sample(x.shape[1:], gens)
        e = expand(2 * alpha * (0.16 * z.flatten(1).norm(dim=1) / s.flatten(1).norm(dim=1)) ** 2, x)
        x = x + e * s + (2 * e).sqrt() * z
        f = 0 if sde == "ve" else (math.sqrt(1 - g2) - 1) * x
        x = x - f + g2 * score(x, at(x, t))
        if k < steps - 1:
            x = x + math.sqrt(g2) * randn_per_sample(x.shape[1:], gens)
    torch.testing.assert_close(out, x, rtol=1e-4, atol=1e-5)


def test_probability_flow_heun_by_hand():
    """Heun (trapezoid) on dx/dt = f - g^2 s / 2 (VP) from t = 1, the last step Euler: 2 steps - 1 evaluations."""
    steps, score = 3, sde_score(VP)
    x = start(1.0)
    calls = []
    out = probability_flow_heun(counted(score, calls), x, VP, steps)
    assert len(calls) == 2 * steps - 1

    def velocity(x, t):
        return -vp_beta(t) / 2 * x - vp_beta(t) / 2 * score(x, at(x, t))

    times = grid(steps, VP.t_min)
    for k in range(steps):
        t, t_next = times[k], times[k + 1]
        euler = x + (t_next - t) * velocity(x, t)
        x = euler if k == steps - 1 else x + (t_next - t) / 2 * (velocity(x, t) + velocity(euler, t_next))
    torch.testing.assert_close(out, x)
