"""Bernoulli diffusion on binary masks (BerDiff, Chen et al. MICCAI 2023, arXiv:2304.04429): forward process,
posterior, KL, and the two samplers, as pure functions of probabilities.

Every tensor here holds P(x = 1) of a binary variable (or the variable itself, in {0, 1}). Timesteps are
0-based as in segbench_backbone.schedules: index t holds beta_{t+1}; alphas[t] = 1 - beta_{t+1} and
alphas_cumprod[t] = abar_{t+1}; the "previous" of index 0 is the clean mask, abar = 1.

    q(x_t | x_{t-1}) = B(x_t; (1 - beta_t) x_{t-1} + beta_t / 2)                       (Eq. 1)
    q(x_t | x_0)     = B(x_t; abar_t x_0 + (1 - abar_t) / 2)                           (Eq. 2)
    q(x_{t-1} | x_t, x_0) = B(x_{t-1}; theta_1 / (theta_0 + theta_1))                   (Eqs. 3-4)
        theta_1 = [alpha_t x_t + (1 - alpha_t) / 2] [abar_{t-1} x_0 + (1 - abar_{t-1}) / 2]
        theta_0 = [alpha_t (1 - x_t) + (1 - alpha_t) / 2] [abar_{t-1} (1 - x_0) + (1 - abar_{t-1}) / 2]

Eq. 4 is Bayes' rule: q(x_{t-1} | x_t, x_0) is proportional to q(x_t | x_{t-1}) q(x_{t-1} | x_0), the first
factor read as a function of x_{t-1} (symmetric in x_t and x_{t-1}). Note the "+ (1 - abar_t) / 2" of Eq. 2:
the released code (takimailto/BerDiff, diffusion/binomial_diffusion.py, q_mean) has it on a line of its own,
a discarded expression statement, so its x_t tends to all zeros instead of B(1/2); here it is part of the
probability, and tests/berdiff checks Eqs. 2 and 4 against enumeration of the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from segbench_backbone.samplers import ddim_timesteps

# Probabilities inside a log are kept this far from 0 and 1 (float32 resolves 1 - 1e-6).
PROBABILITY_FLOOR = 1e-6

X0Fn = Callable[[Tensor, Tensor], Tensor]


def q_probability(x0: Tensor, abar: Tensor | float) -> Tensor:
    """P(x_t = 1 | x_0) = abar_t x_0 + (1 - abar_t) / 2 (Eq. 2; with alpha_t for abar, one step, Eq. 1)."""
    return abar * x0 + (1 - abar) / 2


def posterior_probability(x_t: Tensor, x0: Tensor, alpha_t: Tensor | float, abar_prev: Tensor | float) -> Tensor:
    """P(x_{t-1} = 1 | x_t, x_0) (Eqs. 3-4). x0 may be a probability x0_hat: then this is Bayes' rule for
    x_0 ~ B(x0_hat), the reverse step p_theta(x_{t-1} | x_t) = B(theta_post(x_t, x0_hat)) (Sec. 2.2)."""
    theta_1 = q_probability(x_t, alpha_t) * q_probability(x0, abar_prev)
    theta_0 = q_probability(1 - x_t, alpha_t) * q_probability(1 - x0, abar_prev)
    return theta_1 / (theta_0 + theta_1)


def ddim_probability(x_t: Tensor, x0: Tensor, abar_t: Tensor | float, abar_s: Tensor | float) -> Tensor:
    """P(x_s = 1 | x_t, x_0) of BerDiff's non-Markovian (DDIM-like) step from t to an earlier s:
    sigma x_t + (abar_s - sigma abar_t) x_0 + ((1 - abar_s) - (1 - abar_t) sigma) / 2 with
    sigma = (1 - abar_s) / (1 - abar_t), which zeroes the constant and keeps the marginal q(x_s | x_0) of
    Eq. 2; a convex combination of x_t and x_0 (the coefficients sum to 1), so in [0, 1]."""
    sigma = (1 - abar_s) / (1 - abar_t)
    return sigma * x_t + (abar_s - sigma * abar_t) * x0 + ((1 - abar_s) - (1 - abar_t) * sigma) / 2


def bernoulli_kl(p: Tensor, q: Tensor) -> Tensor:
    """KL(B(p) || B(q)) element-wise, in nats; p may be exactly 0 or 1 (0 log 0 = 0), q is kept off 0 and 1."""
    q = q.clamp(PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return (torch.xlogy(p, p) - torch.xlogy(p, q)
            + torch.xlogy(1 - p, 1 - p) - torch.xlogy(1 - p, 1 - q))


def rand_per_sample(shape: Sequence[int], generators: Sequence[torch.Generator],
                    device: torch.device | str = "cpu") -> Tensor:
    """Uniform [0, 1) draws (len(generators), *shape): row i from generators[i] alone."""
    return torch.stack([torch.rand(tuple(shape), generator=g) for g in generators]).to(device)


def bernoulli_per_sample(probability: Tensor, generators: Sequence[torch.Generator]) -> Tensor:
    """x ~ B(probability) (B, ...) in {0, 1}, each sample's draws from its own generator."""
    u = rand_per_sample(probability.shape[1:], generators, probability.device)
    return (u < probability).to(probability.dtype)


def ddim_sample(x0_fn: X0Fn, x_T: Tensor, alphas_cumprod: Tensor, steps: int,
                generators: Sequence[torch.Generator]) -> Tensor:
    """BerDiff's accelerated sampling (Sec. 2.3) over `steps` uniformly spaced timesteps (DDIM's "leading"
    spacing, ..., 0): x_s ~ B(ddim_probability(x_t, x0_hat, abar_t, abar_s)); at t = 0 returns x0_hat, the
    mask probabilities (B, ...). x0_fn(x_t, t) -> x0_hat in [0, 1] (float32)."""
    timesteps = ddim_timesteps(alphas_cumprod.shape[0], steps)
    x = x_T
    for i, t in enumerate(timesteps):
        x0 = x0_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        if i == len(timesteps) - 1:
            return x0
        s = timesteps[i + 1]
        x = bernoulli_per_sample(ddim_probability(x, x0, alphas_cumprod[t], alphas_cumprod[s]), generators)
    raise ValueError("ddim_sample needs steps >= 1")


def ancestral_sample(x0_fn: X0Fn, x_T: Tensor, alphas: Tensor, alphas_cumprod: Tensor,
                     generators: Sequence[torch.Generator]) -> Tensor:
    """Every step of the reverse chain, x_{t-1} ~ B(theta_post(x_t, x0_hat)) (Sec. 2.2), T network evaluations;
    at t = 0 returns x0_hat, the mask probabilities (B, ...)."""
    x = x_T
    for t in reversed(range(alphas_cumprod.shape[0])):
        x0 = x0_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        if t == 0:
            return x0
        x = bernoulli_per_sample(posterior_probability(x, x0, alphas[t], alphas_cumprod[t - 1]), generators)
    raise ValueError("ancestral_sample needs at least one timestep")
