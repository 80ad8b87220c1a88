"""Paired comparison of two models on the same images: mean and median difference, wins / ties / losses,
Wilcoxon signed-rank, Holm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from segbench.metrics.statistics import BOOTSTRAP_RESAMPLES, CI_LEVEL, bootstrap_ci

PAIRED_TEST = "two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon; zero differences dropped)"
CORRECTION = "Holm-Bonferroni"


@dataclass(frozen=True)
class PairedTest:
    """other − baseline over n paired images: the mean difference with its bootstrap CI; wins, ties and
    losses (images where other is better than, equal to, worse than the baseline, by the metric's
    direction); the median difference with its bootstrap CI; the Wilcoxon signed-rank test, which ranks
    only the n_tested unequal pairs (ties dropped)."""

    n: int
    mean_difference: float
    mean_ci_low: float
    mean_ci_high: float
    wins: int
    ties: int
    losses: int
    median_difference: float
    median_ci_low: float
    median_ci_high: float
    n_tested: int
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


def paired_test(baseline: np.ndarray, other: np.ndarray, seed: int, higher_is_better: bool = True) -> PairedTest:
    """Compare per-image values of `other` with `baseline` (both (N,), same images in the same order)."""
    differences = np.asarray(other, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    statistic, p_value = wilcoxon_signed_rank(differences)
    better = differences * (1 if higher_is_better else -1)
    wins, losses = int((better > 0).sum()), int((better < 0).sum())
    mean_low, mean_high = bootstrap_ci(differences, seed)
    low, high = bootstrap_median_ci(differences, seed)
    mean, median = (float(f(differences)) if differences.size else float("nan") for f in (np.mean, np.median))
    return PairedTest(int(differences.size), mean, mean_low, mean_high, wins, differences.size - wins - losses,
                      losses, median, low, high, wins + losses, statistic, p_value)


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
