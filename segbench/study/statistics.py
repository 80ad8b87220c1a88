"""Statistics over a study's seeds: the mean of the per-seed means, its spread, a two-level bootstrap CI
(resample seeds, then images within each drawn seed), and paired differences against a baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from segbench.metrics.statistics import BOOTSTRAP_RESAMPLES, CI_LEVEL

CHUNK = 250  # resamples drawn at once: bounds memory for large test sets

METHOD = (
    "mean over seeds of each seed's per-image mean; SD across seeds; 95% CI from a two-level bootstrap "
    f"({BOOTSTRAP_RESAMPLES:,} resamples: draw the seeds with replacement, then within each drawn seed its images "
    "with replacement), so the interval reflects both the run-to-run spread of training and the finite test set; "
    "differences against the baseline are paired by seed and image (the same images, the same seeds) and "
    "bootstrapped the same way; a difference whose CI includes 0 is not separated at that number of seeds. "
    "The p-value is a paired t-test across seeds on the per-seed means (scipy.stats.ttest_rel), which has "
    "little power at few seeds; the CI is the primary result"
)


def draws(rng: np.random.Generator, resamples: int, seeds: int, images: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform [0, 1) draws for `resamples` two-level resamples: (resamples, seeds) to pick seeds and
    (resamples, seeds, images) to pick images (the first n of the last axis serve a seed with n images)."""
    return rng.random((resamples, seeds)), rng.random((resamples, seeds, images))


def resample_means(per_seed: Sequence[np.ndarray], pick_seed: np.ndarray, pick_image: np.ndarray) -> np.ndarray:
    """The two-level bootstrap means for given draws (see `draws`): (resamples,)."""
    count = len(per_seed)
    chosen = np.minimum((pick_seed * count).astype(np.int64), count - 1)  # (R, S) seed indices
    total = np.zeros(pick_seed.shape[0])
    for j in range(count):  # the j-th seed slot of every resample
        for s, values in enumerate(per_seed):
            rows = np.flatnonzero(chosen[:, j] == s)
            if rows.size:
                n = values.size
                index = np.minimum((pick_image[rows, j, :n] * n).astype(np.int64), n - 1)
                total[rows] += values[index].mean(axis=1)
    return total / count


def two_level_ci(per_seed: Sequence[np.ndarray], seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                 level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile CI of the mean of per-seed means; per_seed[s]: seed s's per-image values (N_s,)."""
    per_seed = [np.asarray(v, dtype=np.float64) for v in per_seed]
    if not per_seed or any(v.size == 0 for v in per_seed):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    longest = max(v.size for v in per_seed)
    means = []
    for start in range(0, resamples, CHUNK):
        pick_seed, pick_image = draws(rng, min(CHUNK, resamples - start), len(per_seed), longest)
        means.append(resample_means(per_seed, pick_seed, pick_image))
    alpha = (1 - level) / 2
    low, high = np.quantile(np.concatenate(means), [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class OverSeeds:
    """One model on one dataset over seeds: every seed's per-image mean, their mean, SD and CI."""

    seeds: tuple[int, ...]
    seed_means: tuple[float, ...]
    mean: float
    sd: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class PairedOverSeeds:
    """model - baseline, paired by seed and image: mean difference with its CI, seeds the model beats the
    baseline on, and the paired t-test across seeds."""

    difference: OverSeeds
    wins: int
    p_value: float

    @property
    def separated(self) -> bool:
        return not self.difference.ci_low <= 0 <= self.difference.ci_high


def over_seeds(seeds: Sequence[int], per_seed: Sequence[np.ndarray], bootstrap_seed: int) -> OverSeeds:
    means = [float(np.mean(v)) for v in per_seed]
    low, high = two_level_ci(per_seed, bootstrap_seed)
    sd = float(np.std(means, ddof=1)) if len(means) > 1 else float("nan")
    return OverSeeds(tuple(seeds), tuple(means), float(np.mean(means)), sd, low, high)


def paired_over_seeds(seeds: Sequence[int], model: Sequence[np.ndarray], baseline: Sequence[np.ndarray],
                      bootstrap_seed: int, higher_is_better: bool = True) -> PairedOverSeeds:
    """model[s] and baseline[s]: per-image values of seed s on the same images in the same order."""
    differences = [np.asarray(m, np.float64) - np.asarray(b, np.float64) for m, b in zip(model, baseline)]
    summary = over_seeds(seeds, differences, bootstrap_seed)
    sign = 1 if higher_is_better else -1
    wins = sum(sign * d > 0 for d in summary.seed_means)
    if len(seeds) > 1 and np.ptp(summary.seed_means) > 1e-12:  # equal differences: no t statistic
        p_value = float(stats.ttest_rel([float(np.mean(m)) for m in model], [float(np.mean(b)) for b in baseline]).pvalue)
    else:
        p_value = float("nan")
    return PairedOverSeeds(summary, int(wins), p_value)
