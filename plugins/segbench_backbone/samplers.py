"""Reverse-process samplers: DDIM (Song et al. 2020), ancestral DDPM (Ho et al. 2020) and
DPM-Solver++(2M) (Lu et al. 2022).

Every sampler takes a noise-prediction function `eps_fn(x_t, t) -> eps`
(x_t: (B, ...) float32, t: int64 (B,), eps shaped like x_t), not a model, so
any epsilon-predicting network can share them. Random draws come from one
`torch.Generator` per sample, made on the CPU, so a sample's trajectory depends
only on its own seed: not on the batch size, its position, or the device.

Notation: `alphas_cumprod[t]` is abar_t, written alpha_t in the DDIM paper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from segbench.noise import randn_per_sample

EpsFn = Callable[[Tensor, Tensor], Tensor]


def predict_x0(x_t: Tensor, eps: Tensor, alpha_cumprod_t: Tensor) -> Tensor:
    """x0 implied by a noise prediction: (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (Ho et al. Eq. 15).

    Same operation order as diffusers, so DDIM agrees with its DDIMScheduler to the bit.
    """
    return (x_t - (1 - alpha_cumprod_t) ** 0.5 * eps) / alpha_cumprod_t**0.5


def ddim_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """Descending DDIM timesteps with uniform "leading" spacing: 980, 960, ..., 0 for 50 of 1000."""
    stride = num_train_timesteps // steps
    return [i * stride for i in reversed(range(steps))]


def ddim_sigma(alpha_cumprod_t: Tensor, alpha_cumprod_prev: Tensor, eta: float) -> Tensor:
    """sigma_t(eta) = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev) (DDIM Eq. 16)."""
    variance = (1 - alpha_cumprod_prev) / (1 - alpha_cumprod_t) * (1 - alpha_cumprod_t / alpha_cumprod_prev)
    return eta * variance**0.5


def ddim_step(
    eps: Tensor,
    x_t: Tensor,
    alpha_cumprod_t: Tensor,
    alpha_cumprod_prev: Tensor,
    eta: float = 0.0,
    noise: Tensor | None = None,
    clip_x0: bool = False,
) -> Tensor:
    """One DDIM update x_t -> x_prev (DDIM Eq. 12).

    eps, x_t, noise: (B, ...); alpha_cumprod_*: 0-d tensors. noise is required when eta > 0.
    clip_x0 clamps the predicted x0 to [-1, 1] and re-derives eps from it, as
    guided-diffusion does, so that the update stays consistent with the clamped x0.
    """
    x0 = predict_x0(x_t, eps, alpha_cumprod_t)  # "predicted x_0" (Eq. 12, first term)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps = (x_t - alpha_cumprod_t**0.5 * x0) / (1 - alpha_cumprod_t) ** 0.5
    sigma = ddim_sigma(alpha_cumprod_t, alpha_cumprod_prev, eta)
    # "direction pointing to x_t" (Eq. 12, second term); the clamp only guards against
    # a rounding-negative radicand for eta = 1 and leaves positive values unchanged
    direction = (1 - alpha_cumprod_prev - sigma**2).clamp(min=0) ** 0.5 * eps
    x_prev = alpha_cumprod_prev**0.5 * x0 + direction
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        x_prev = x_prev + sigma * noise  # "random noise" (Eq. 12, third term)
    return x_prev


def ddim_sample(
    eps_fn: EpsFn,
    x_T: Tensor,
    alphas_cumprod: Tensor,
    steps: int,
    eta: float = 0.0,
    generators: Sequence[torch.Generator] | None = None,
    clip_x0: bool = False,
) -> Tensor:
    """Run DDIM from x_T (B, ...) over `steps` uniformly spaced timesteps; returns x_0 (B, ...).

    The last step goes to abar = 1 (diffusers' set_alpha_to_one=True), so the
    result is the final predicted x0. eta = 0 is deterministic given x_T and
    draws nothing; eta > 0 draws fresh noise from `generators` (one per sample) at every step.
    """
    if eta > 0 and (generators is None or len(generators) != x_T.shape[0]):
        raise ValueError("ddim_sample with eta > 0 needs one generator per sample")
    num_train_timesteps = alphas_cumprod.shape[0]
    stride = num_train_timesteps // steps
    one = alphas_cumprod.new_tensor(1.0)
    x = x_T
    for t in ddim_timesteps(num_train_timesteps, steps):
        alpha_cumprod_prev = alphas_cumprod[t - stride] if t - stride >= 0 else one
        eps = eps_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        noise = randn_per_sample(x.shape[1:], generators, x.device) if eta > 0 else None
        x = ddim_step(eps, x, alphas_cumprod[t], alpha_cumprod_prev, eta, noise, clip_x0)
    return x


def ddpm_step(
    eps: Tensor,
    x_t: Tensor,
    t: int,
    alphas_cumprod: Tensor,
    noise: Tensor | None = None,
    clip_x0: bool = False,
) -> Tensor:
    """One ancestral step x_t -> x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) (Ho et al. Eq. 6-7, Algorithm 2).

    The variance is the posterior's, beta_tilde_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t,
    which is zero at t = 0; noise (B, ...) is required for t > 0.
    Going through x0_hat (rather than Eq. 11 directly) lets clip_x0 clamp it to [-1, 1].
    """
    alpha_cumprod_t = alphas_cumprod[t]
    alpha_cumprod_prev = alphas_cumprod[t - 1] if t > 0 else alphas_cumprod.new_tensor(1.0)
    # beta_t from the ratio of abar (as diffusers does), not from the betas: in float32
    # 1 - abar_0 != beta_0, and only the ratio makes the t = 0 step return x0_hat exactly
    beta_t = 1 - alpha_cumprod_t / alpha_cumprod_prev
    x0 = predict_x0(x_t, eps, alpha_cumprod_t)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
    # posterior mean mu_tilde(x_t, x0) (Eq. 7)
    coef_x0 = alpha_cumprod_prev**0.5 * beta_t / (1 - alpha_cumprod_t)
    coef_xt = (1 - beta_t) ** 0.5 * (1 - alpha_cumprod_prev) / (1 - alpha_cumprod_t)
    mean = coef_x0 * x0 + coef_xt * x_t
    if t == 0:
        return mean
    if noise is None:
        raise ValueError("ddpm_step with t > 0 needs noise")
    variance = (1 - alpha_cumprod_prev) / (1 - alpha_cumprod_t) * beta_t
    return mean + variance**0.5 * noise


def ddpm_sample(
    eps_fn: EpsFn,
    x_T: Tensor,
    alphas_cumprod: Tensor,
    generators: Sequence[torch.Generator],
    clip_x0: bool = False,
) -> Tensor:
    """Ancestral DDPM sampling from x_T (B, ...) over all T timesteps; returns x_0 (B, ...).

    Draws noise from `generators` (one per sample) at every step but the last.
    """
    if len(generators) != x_T.shape[0]:
        raise ValueError("ddpm_sample needs one generator per sample")
    x = x_T
    for t in reversed(range(alphas_cumprod.shape[0])):
        eps = eps_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        noise = randn_per_sample(x.shape[1:], generators, x.device) if t > 0 else None
        x = ddpm_step(eps, x, t, alphas_cumprod, noise, clip_x0)
    return x


def dpmpp_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """Descending timesteps linearly spaced over [0, T-1], rounded (diffusers' "linspace"): 999, 979, ... for 50."""
    grid = torch.linspace(0, num_train_timesteps - 1, steps + 1, dtype=torch.float64).round().long()
    return grid.flip(0)[:-1].tolist()


def dpmpp_2m_sample(
    eps_fn: EpsFn,
    x_T: Tensor,
    alphas_cumprod: Tensor,
    steps: int,
    clip_x0: bool = False,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2, midpoint form) from x_T (B, ...); returns x_0.

    Deterministic given x_T: `steps` network evaluations, the first step and the
    last one (to sigma = 0, which returns the predicted x0) first order, the
    others second order. Works on the data prediction x0 = (x_t - sigma_t eps) / alpha_t;
    clip_x0 clamps it to [-1, 1].
    """
    num_train_timesteps = alphas_cumprod.shape[0]
    abar = alphas_cumprod.double()
    alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
    lam = alpha.log() - sigma.log()  # half log-SNR, lambda_t
    x = x_T
    previous_x0: Tensor | None = None
    previous_h: Tensor | None = None
    timesteps = dpmpp_timesteps(num_train_timesteps, steps)
    for i, t in enumerate(timesteps):
        eps = eps_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        x0 = predict_x0(x, eps, alphas_cumprod[t])
        if clip_x0:
            x0 = x0.clamp(-1, 1)
        if i == len(timesteps) - 1:
            return x0  # to sigma = 0: x_0 = x0_hat (lower-order final step)
        s = timesteps[i + 1]
        h = lam[s] - lam[t]
        if previous_x0 is None:
            d = x0  # first order: DPM-Solver++(1) = DDIM
        else:
            r = previous_h / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous_x0
        # x_s = (sigma_s / sigma_t) x_t - alpha_s (e^{-h} - 1) D  (Lu et al. 2022, Eq. 9 / Alg. 2)
        x = ((sigma[s] / sigma[t]) * x - (alpha[s] * torch.expm1(-h)) * d).to(x_T.dtype)
        previous_x0, previous_h = x0, h
    return x
