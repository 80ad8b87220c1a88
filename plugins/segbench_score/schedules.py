"""Noise levels of NCSN (Song & Ermon 2019) and the VE / VP SDEs of score-SDE (Song et al. 2021).

Every process perturbs data x_0 with a Gaussian kernel p(x_t | x_0) = N(a_t x_0, s_t^2 I):
`marginal` returns (a_t, s_t). Times and noise levels are per-sample float tensors (B,);
`expand` broadcasts such a tensor over a batch of masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def expand(values: Tensor, like: Tensor) -> Tensor:
    """(B,) -> (B, 1, ..., 1), broadcastable against `like` (B, ...)."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def geometric_sigmas(sigma_max: float, sigma_min: float, levels: int) -> Tensor:
    """sigma_1 > ... > sigma_L, a geometric sequence from sigma_max to sigma_min (Song & Ermon 2019, Sec. 4.2).

    float64 (L,); one level is sigma_max alone.
    """
    if levels == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    return torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), levels, dtype=torch.float64))


def time_grid(steps: int, t_min: float) -> list[float]:
    """steps + 1 descending times 1 = t_0 > ... > t_steps = t_min, uniformly spaced (Song et al. 2021, App. C)."""
    return torch.linspace(1.0, t_min, steps + 1, dtype=torch.float64).tolist()


@dataclass(frozen=True)
class VESDE:
    """Variance exploding: dx = sqrt(d[sigma^2(t)]/dt) dw with sigma(t) = sigma_min (sigma_max/sigma_min)^t
    (Song et al. 2021, Eq. 9 and 30), the continuous limit of NCSN's noise levels."""

    sigma_min: float
    sigma_max: float
    t_min: float = 1e-5

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def marginal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(a_t, s_t) = (1, sigma(t)); like the paper's code we drop the sigma_min^2 the exact kernel subtracts."""
        return torch.ones_like(t), self.sigma(t)

    @property
    def prior_std(self) -> float:
        """p_1 ~ N(0, sigma_max^2 I)."""
        return self.sigma_max

    def drift_diffusion(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """f(x, t) = 0 and g(t) = sigma(t) sqrt(2 log(sigma_max / sigma_min)) (Eq. 30)."""
        g = self.sigma(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))
        return torch.zeros_like(x), expand(g, x)

    def discretize(self, x: Tensor, t: Tensor, dt: float) -> tuple[Tensor, Tensor]:
        """SMLD's chain x_{i-1} = x_i + sqrt(sigma_i^2 - sigma_{i-1}^2) z between t - dt and t (Eq. 8): (f_i, G_i)."""
        variance = self.sigma(t) ** 2 - self.sigma(t - dt) ** 2
        return torch.zeros_like(x), expand(variance.sqrt(), x)

    def corrector_alpha(self, t: Tensor, dt: float) -> Tensor:
        """alpha_i of the Langevin corrector: 1 for VE (Song et al. 2021, Alg. 4)."""
        return torch.ones_like(t)


@dataclass(frozen=True)
class VPSDE:
    """Variance preserving: dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw with beta(t) linear from beta_min
    to beta_max (Song et al. 2021, Eq. 11 and 32), the continuous limit of DDPM."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_mean_coeff(self, t: Tensor) -> Tensor:
        """log a_t = -int_0^t beta(s) ds / 2 (Eq. 33)."""
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def marginal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(a_t, s_t) = (exp(log a_t), sqrt(1 - a_t^2)) (Eq. 33)."""
        log_a = self.log_mean_coeff(t)
        return log_a.exp(), (-torch.expm1(2 * log_a)).sqrt()

    @property
    def prior_std(self) -> float:
        """p_1 ~ N(0, I)."""
        return 1.0

    def drift_diffusion(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """f(x, t) = -beta(t) x / 2 and g(t) = sqrt(beta(t)) (Eq. 11)."""
        beta = expand(self.beta(t), x)
        return -0.5 * beta * x, beta.sqrt()

    def discrete_beta(self, t: Tensor, dt: float) -> Tensor:
        """beta_i = 1 - a_t^2 / a_{t-dt}^2: the DDPM step that carries the marginal from t - dt to t exactly."""
        return -torch.expm1(2 * (self.log_mean_coeff(t) - self.log_mean_coeff(t - dt)))

    def discretize(self, x: Tensor, t: Tensor, dt: float) -> tuple[Tensor, Tensor]:
        """DDPM's chain x_i = sqrt(1 - beta_i) x_{i-1} + sqrt(beta_i) z (Eq. 10) as (f_i, G_i) =
        ((sqrt(1 - beta_i) - 1) x, sqrt(beta_i))."""
        beta = expand(self.discrete_beta(t, dt), x)
        return ((1 - beta).sqrt() - 1) * x, beta.sqrt()

    def corrector_alpha(self, t: Tensor, dt: float) -> Tensor:
        """alpha_i = 1 - beta_i of the Langevin corrector (Song et al. 2021, Alg. 5)."""
        return 1 - self.discrete_beta(t, dt)


SDE = VESDE | VPSDE
