"""Noise schedules and the forward process q(x_t | x_0) (Ho et al. 2020, "DDPM").

Timesteps are 0-based: index t = 0..T-1 holds beta_{t+1} of the paper, as in
diffusers and guided-diffusion.
"""

from __future__ import annotations

import torch
from torch import Tensor


def linear_betas(timesteps: int, beta_start: float, beta_end: float) -> Tensor:
    """Linearly spaced variances beta_t (Ho et al. 2020, Sec. 4): float32 (T,).

    Computed in float32 like diffusers' "linear" schedule so that DDIM sampling
    reproduces its DDIMScheduler to the bit.
    """
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float32)


def alphas_cumprod(betas: Tensor) -> Tensor:
    """abar_t = prod_{s<=t} (1 - beta_s): (T,), decreasing from 1 - beta_0 towards 0."""
    return torch.cumprod(1.0 - betas, dim=0)


def q_sample(x0: Tensor, t: Tensor, noise: Tensor, alphas_cumprod: Tensor) -> Tensor:
    """Draw x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (Ho et al. Eq. 4).

    x0, noise: (B, ...); t: int64 (B,) in [0, T); returns (B, ...).
    """
    abar = alphas_cumprod.to(x0.device)[t].reshape(-1, *([1] * (x0.dim() - 1)))
    return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise
