"""Paired comparison of two models on the same images: Wilcoxon signed-rank, Holm, median difference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from segbench.metrics.statistics import BOOTSTRAP_RESAMPLES, CI_LEVEL

PAIRED_TEST = "two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon; zero differences dropped)"
CORRECTION = "Holm-Bonferroni"


@dataclass(frozen=True)
class PairedTest:
    """other − baseline over n paired images: median difference with its bootstrap CI, test statistic, p-value."""

    n: int
    median_difference: float
    ci_low: float
    ci_high: float
    statistic: float
    p_value: float


def bootstrap_median_ci(
    values: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap CI of the median of `values` (N,); the resamples depend only on (seed, N)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, values.size, size=(resamples, values.size))
    medians = np.median(values[idx], axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha])
    return float(low), float(high)


def wilcoxon_signed_rank(differences: np.ndarray) -> tuple[float, float]:
    """(statistic, two-sided p) of paired differences (N,); p = 1 when every difference is zero."""
    differences = np.asarray(differences, dtype=np.float64)
    if differences.size == 0:
        return float("nan"), float("nan")
    if not differences.any():  # nothing to rank: scipy warns and divides by zero
        return 0.0, 1.0
    result = stats.wilcoxon(differences, zero_method="wilcox", alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def paired_test(baseline: np.ndarray, other: np.ndarray, seed: int) -> PairedTest:
    """Compare per-image values of `other` with `baseline` (both (N,), same images in the same order)."""
    differences = np.asarray(other, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    statistic, p_value = wilcoxon_signed_rank(differences)
    low, high = bootstrap_median_ci(differences, seed)
    median = float(np.median(differences)) if differences.size else float("nan")
    return PairedTest(int(differences.size), median, low, high, statistic, p_value)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order; NaN entries stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    # The i-th smallest p (0-based) is multiplied by m - i; a running max keeps the order.
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled) if m else scaled
    return adjusted
