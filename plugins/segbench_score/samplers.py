"""Score-based samplers: annealed Langevin dynamics (NCSN) and the reverse-SDE / probability-flow solvers.

Every sampler takes a score function `score_fn(x, t) -> s` (x: (B, ...) float32,
t: float32 (B,), a noise level sigma for NCSN and a time in [t_min, 1] for the
SDEs; s shaped like x), not a model, so any score network can share them.
Random draws come from one CPU `torch.Generator` per sample
(`segbench.noise.randn_per_sample`), so a sample's trajectory
depends only on its own seed. `x` is the start: a draw from the prior.
Each docstring states the number of score evaluations (NFE) it costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from segbench.noise import randn_per_sample
from segbench_score.schedules import SDE, expand, time_grid

ScoreFn = Callable[[Tensor, Tensor], Tensor]


def _noise(x: Tensor, generators: Sequence[torch.Generator]) -> Tensor:
    if len(generators) != x.shape[0]:
        raise ValueError(f"need one generator per sample: {len(generators)} for a batch of {x.shape[0]}")
    return randn_per_sample(x.shape[1:], generators, x.device)


def _times(x: Tensor, t: float) -> Tensor:
    return torch.full((x.shape[0],), t, dtype=torch.float32, device=x.device)


def annealed_langevin(
    score_fn: ScoreFn,
    x: Tensor,
    sigmas: Sequence[float],
    steps_per_level: int,
    step_size: float,
    generators: Sequence[torch.Generator],
    denoise: bool = True,
) -> Tensor:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) from x ~ N(0, sigma_1^2 I).

    For sigma_1 > ... > sigma_L, `steps_per_level` steps of
    x <- x + alpha_i / 2 s(x, sigma_i) + sqrt(alpha_i) z with alpha_i = eps sigma_i^2 / sigma_L^2,
    then (denoise) the final step x + sigma_L^2 s(x, sigma_L) (Tweedie's formula; NCSNv2 App. C.2).
    NFE: L * steps_per_level (+ 1 with denoise).
    """
    sigma_min = float(sigmas[-1])
    for sigma in map(float, sigmas):
        alpha = step_size * (sigma / sigma_min) ** 2
        level = _times(x, sigma)
        for _ in range(steps_per_level):
            z = _noise(x, generators)
            x = x + alpha / 2 * score_fn(x, level) + alpha**0.5 * z
    if denoise:
        x = x + sigma_min**2 * score_fn(x, _times(x, sigma_min))
    return x


def euler_maruyama(
    score_fn: ScoreFn, x: Tensor, sde: SDE, steps: int, generators: Sequence[torch.Generator]
) -> Tensor:
    """Euler–Maruyama on the reverse SDE dx = [f(x, t) - g(t)^2 s(x, t)] dt + g(t) dw̄ (Song et al. 2021, Eq. 6)
    over `time_grid(steps, sde.t_min)`; the last step adds no noise. NFE: steps."""
    times = time_grid(steps, sde.t_min)
    for k, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
        h = t - t_next  # positive: time runs backwards
        t_batch = _times(x, t)
        f, g = sde.drift_diffusion(x, t_batch)
        x = x - (f - g**2 * score_fn(x, t_batch)) * h
        if k < steps - 1:
            x = x + g * h**0.5 * _noise(x, generators)
    return x


def langevin_corrector_step(
    score_fn: ScoreFn, x: Tensor, t: Tensor, alpha: Tensor, snr: float, generators: Sequence[torch.Generator]
) -> Tensor:
    """x <- x + e s + sqrt(2 e) z with e = 2 alpha (r ||z|| / ||s||)^2 (Song et al. 2021, Alg. 4-5).

    The norms are per sample (the paper's code averages them over the batch, which
    would tie a sample to its neighbours). NFE: 1.
    """
    score = score_fn(x, t)
    z = _noise(x, generators)
    z_norm = z.flatten(1).norm(dim=1)
    s_norm = score.flatten(1).norm(dim=1).clamp(min=1e-12)
    step = expand(2 * alpha * (snr * z_norm / s_norm) ** 2, x)
    return x + step * score + (2 * step).sqrt() * z


def reverse_diffusion_step(
    score_fn: ScoreFn, x: Tensor, t: Tensor, dt: float, sde: SDE, noise: Tensor | None
) -> Tensor:
    """Reverse-diffusion predictor x_{i-1} = x_i - f_i + G_i^2 s(x_i, t_i) + G_i z (Song et al. 2021, Eq. 46-47),
    with (f_i, G_i) the SDE's own discretisation; noise None gives the mean. NFE: 1."""
    f, g = sde.discretize(x, t, dt)
    x = x - f + g**2 * score_fn(x, t)
    return x if noise is None else x + g * noise


def predictor_corrector(
    score_fn: ScoreFn,
    x: Tensor,
    sde: SDE,
    steps: int,
    generators: Sequence[torch.Generator],
    snr: float = 0.16,
    corrector_steps: int = 1,
) -> Tensor:
    """PC sampling (Song et al. 2021, Alg. 1): at each t_k on `time_grid`, `corrector_steps` Langevin
    corrector steps, then a reverse-diffusion predictor step to t_{k+1}; the last predictor step adds
    no noise. NFE: steps * (corrector_steps + 1)."""
    times = time_grid(steps, sde.t_min)
    for k, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
        h = t - t_next
        t_batch = _times(x, t)
        alpha = sde.corrector_alpha(t_batch, h)
        for _ in range(corrector_steps):
            x = langevin_corrector_step(score_fn, x, t_batch, alpha, snr, generators)
        noise = _noise(x, generators) if k < steps - 1 else None
        x = reverse_diffusion_step(score_fn, x, t_batch, h, sde, noise)
    return x


def probability_flow_heun(score_fn: ScoreFn, x: Tensor, sde: SDE, steps: int) -> Tensor:
    """The probability-flow ODE dx/dt = f(x, t) - g(t)^2 s(x, t) / 2 (Song et al. 2021, Eq. 13),
    integrated from t = 1 to t_min on `time_grid` with Heun's method (explicit trapezoid), the last
    step Euler as in Karras et al. 2022, Alg. 1: near t_min the ODE is stiff (g^2 / s_t^2 ~ 1 / t), and
    a trapezoid step that ends there multiplies the first stage's error by ~(t_k - t_min) / t_min.
    Deterministic given x. NFE: 2 * steps - 1."""

    def velocity(x: Tensor, t: float) -> Tensor:
        t_batch = _times(x, t)
        f, g = sde.drift_diffusion(x, t_batch)
        return f - 0.5 * g**2 * score_fn(x, t_batch)

    times = time_grid(steps, sde.t_min)
    for k, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
        h = t_next - t  # negative
        d = velocity(x, t)
        x_euler = x + h * d
        x = x_euler if k == steps - 1 else x + h * 0.5 * (d + velocity(x_euler, t_next))
    return x
