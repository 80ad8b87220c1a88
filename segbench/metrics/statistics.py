"""Aggregation of per-image metrics: mean with a seeded bootstrap CI, and pooled values."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from segbench.metrics.confusion import ConfusionCounts
from segbench.specs import MetricSpec

BOOTSTRAP_RESAMPLES = 2000
CI_LEVEL = 0.95


def bootstrap_ci(
    values: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of `values` (N,).

    The resample indices depend only on (seed, N), so every model and metric of a
    run is resampled identically (paired) and reruns give the same interval.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(resamples, values.size))
    means = values[idx].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def per_image(counts: ConfusionCounts, metrics: Mapping[str, MetricSpec]) -> dict[str, np.ndarray]:
    """Each count metric per image, float64 (N,), in one vectorised pass (mask metrics: `segbench.metrics.masks`)."""
    c = counts.as_float()
    return {name: spec.fn(*c).cpu().numpy() for name, spec in metrics.items() if spec.kind == "counts"}


def summarise(
    values: Mapping[str, np.ndarray], counts: ConfusionCounts, metrics: Mapping[str, MetricSpec], seed: int
) -> dict[str, dict[str, float]]:
    """metric -> {mean, ci_low, ci_high, pooled} from each metric's per-image `values`; pooled is a count
    metric of the summed counts, NaN for a mask metric (distances do not add up over images)."""
    pooled_counts = [c.to(torch.float64).sum().reshape(1) for c in counts]
    summary = {}
    for name, spec in metrics.items():
        low, high = bootstrap_ci(values[name], seed)
        summary[name] = {
            "mean": float(values[name].mean()) if values[name].size else float("nan"),
            "ci_low": low,
            "ci_high": high,
            "pooled": float(spec.fn(*pooled_counts)[0]) if spec.kind == "counts" else float("nan"),
        }
    return summary
