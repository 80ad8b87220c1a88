"""Anomaly maps from reconstructions, and their calibration on healthy images (pure functions).

Score: s = G_sigma * mean_k |x - x_hat_k|, the residual between an image and its reconstructions by a
model of healthy images (Pinaya et al. 2022; AnoDDPM, Wyatt et al. 2022), smoothed by a Gaussian.
Calibration: the threshold tau puts at most a fraction `fpr` of healthy pixels at or above it (AutoDDPM's
"at most 5 % false positives on healthy data"), and p = sigmoid((s - tau) / scale) makes it the 0.5
of segbench's protocol (a pixel is foreground when p >= 0.5); scale is set so that the median healthy
pixel gets p = fpr. Without anomalous examples nothing calibrates p as a frequency of disease: p is
the healthy model's surprise on a scale anchored at two healthy quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from segbench.fusion import BELOW_HALF  # a score under the threshold must never round up to a positive pixel


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> Tensor:
    """Normalised 1-D Gaussian, radius int(truncate sigma + 0.5) (scipy.ndimage's): float64 (2r + 1,)."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_smooth(maps: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, 1, H, W) maps, mirrored at the border (scipy's mode="mirror");
    sigma 0 returns the maps unchanged. Per image, so a map does not depend on its batch."""
    if sigma <= 0:
        return maps
    kernel = gaussian_kernel(sigma).to(maps)
    radius = kernel.numel() // 2
    x = F.pad(maps, (radius, radius, 0, 0), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(x, kernel.view(1, 1, -1, 1))


def residual_score(images: Tensor, reconstructions: Sequence[Tensor], sigma: float) -> Tensor:
    """Anomaly map (B, 1, H, W): mean over reconstructions of |image - reconstruction|, then smoothed."""
    residual = torch.stack([(images - r).abs() for r in reconstructions]).mean(0)
    return gaussian_smooth(residual, sigma)


def fit_threshold(healthy_scores: Tensor, fpr: float) -> tuple[float, float]:
    """(tau, scale) from the float32 scores of healthy pixels (any shape).

    With v the (k+1)-th largest score, k = floor(fpr N), tau is the next float32 above v: exactly the
    scores above v are >= tau, at most k of N healthy pixels (a false-positive rate <= fpr), and no
    lower threshold keeps that bound. scale = (tau - median) / logit(1 - fpr) puts the median healthy
    pixel at p = fpr (the scores' std, or 1e-6, when tau is not above the median).
    """
    scores = healthy_scores.detach().flatten().float().cpu()
    ordered = scores.sort(descending=True).values
    k = min(int(math.floor(fpr * ordered.numel())), ordered.numel() - 1)
    tau = torch.nextafter(ordered[k], torch.tensor(math.inf))
    median = scores.median()
    scale = float(tau - median) / math.log((1 - fpr) / fpr)
    if not scale > 0:
        scale = max(float(scores.std()) if scores.numel() > 1 else 0.0, 1e-6)
    return float(tau), scale


def score_probability(scores: Tensor, tau: Tensor | float, scale: Tensor | float) -> Tensor:
    """p = sigmoid((s - tau) / scale) in [0, 1], exactly >= 0.5 where s >= tau and < 0.5 elsewhere
    (rounding would otherwise put scores just below tau at 0.5)."""
    p = torch.sigmoid((scores - tau) / scale)
    return torch.where(scores >= tau, p.clamp(min=0.5), p.clamp(max=BELOW_HALF))
