"""Statistics over a study's seeds: the mean of the per-seed means, its spread, a two-level bootstrap CI
(resample seeds, then images within each drawn seed), and paired differences against a baseline. With several
labelled subsets (a study's labels seeds), a three-level bootstrap: subsets, then seeds within each drawn
subset, then images within each drawn run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
SUBSETS_METHOD = (
    "; with several labelled subsets at a label budget (the study's labels seeds), a number is the mean over the "
    "subsets of each subset's mean over seeds, and its CI a three-level bootstrap (draw the subsets with "
    "replacement, then within each drawn subset its seeds, then within each drawn run its images), so it also "
    "covers which images were labelled; the p-value pairs per-seed means averaged over the subsets"
)

# runs[labels seed][run seed]: one run's per-image values; labels seed None: the study's one labelled subset
Runs = Mapping[int | None, Mapping[int, np.ndarray]]


def draws(rng: np.random.Generator, resamples: int, seeds: int, images: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform [0, 1) draws for `resamples` two-level resamples: (resamples, seeds) to pick seeds and
    (resamples, seeds, images) to pick images (the first n of the last axis serve a seed with n images)."""
    return rng.random((resamples, seeds)), rng.random((resamples, seeds, images))


def _index(draws: np.ndarray, count: int) -> np.ndarray:
    """Uniform [0, 1) draws as indices into `count` items."""
    return np.minimum((draws * count).astype(np.int64), count - 1)


def resample_means(per_seed: Sequence[np.ndarray], pick_seed: np.ndarray, pick_image: np.ndarray) -> np.ndarray:
    """The two-level bootstrap means for given draws (see `draws`): (resamples,)."""
    count = len(per_seed)
    chosen = _index(pick_seed, count)  # (R, S) seed indices
    total = np.zeros(pick_seed.shape[0])
    for j in range(count):  # the j-th seed slot of every resample
        for s, values in enumerate(per_seed):
            rows = np.flatnonzero(chosen[:, j] == s)
            if rows.size:
                n = values.size
                index = _index(pick_image[rows, j, :n], n)
                total[rows] += values[index].mean(axis=1)
    return total / count


def three_level_draws(rng: np.random.Generator, resamples: int, subsets: int, seeds: int,
                      images: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform [0, 1) draws for `resamples` three-level resamples: (resamples, subsets) to pick subsets, then
    (resamples, subsets, seeds) and (resamples, subsets, seeds, images) for the two-level draws of each subset slot."""
    return (rng.random((resamples, subsets)), rng.random((resamples, subsets, seeds)),
            rng.random((resamples, subsets, seeds, images)))


def three_level_means(per_subset: Sequence[Sequence[np.ndarray]], pick_subset: np.ndarray, pick_seed: np.ndarray,
                      pick_image: np.ndarray) -> np.ndarray:
    """The three-level bootstrap means for given draws (see `three_level_draws`): (resamples,)."""
    count = len(per_subset)
    chosen = _index(pick_subset, count)  # (R, L) subset indices
    total = np.zeros(pick_subset.shape[0])
    for j in range(count):  # the j-th subset slot of every resample
        for l, per_seed in enumerate(per_subset):
            rows = np.flatnonzero(chosen[:, j] == l)
            if rows.size:
                total[rows] += resample_means(per_seed, pick_seed[rows, j], pick_image[rows, j])
    return total / count


def _percentile_ci(chunk_means: Callable[[int], np.ndarray], resamples: int, level: float) -> tuple[float, float]:
    """Percentile CI of the means `chunk_means(size)` gives for CHUNK resamples at a time."""
    means = [chunk_means(min(CHUNK, resamples - start)) for start in range(0, resamples, CHUNK)]
    alpha = (1 - level) / 2
    low, high = np.quantile(np.concatenate(means), [alpha, 1 - alpha])
    return float(low), float(high)


def two_level_ci(per_seed: Sequence[np.ndarray], seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                 level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile CI of the mean of per-seed means; per_seed[s]: seed s's per-image values (N_s,)."""
    per_seed = [np.asarray(v, dtype=np.float64) for v in per_seed]
    if not per_seed or any(v.size == 0 for v in per_seed):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    longest = max(v.size for v in per_seed)
    return _percentile_ci(lambda size: resample_means(per_seed, *draws(rng, size, len(per_seed), longest)),
                          resamples, level)


def three_level_ci(per_subset: Sequence[Sequence[np.ndarray]], seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                   level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile CI of the mean over subsets of each subset's mean of per-seed means; per_subset[l][s]: the
    per-image values of seed s on labelled subset l. One subset: `two_level_ci` of its seeds."""
    if len(per_subset) == 1:
        return two_level_ci(per_subset[0], seed, resamples, level)
    per_subset = [[np.asarray(v, dtype=np.float64) for v in per_seed] for per_seed in per_subset]
    if not per_subset or any(not per_seed or any(v.size == 0 for v in per_seed) for per_seed in per_subset):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    seeds = max(len(per_seed) for per_seed in per_subset)
    longest = max(v.size for per_seed in per_subset for v in per_seed)
    return _percentile_ci(
        lambda size: three_level_means(per_subset, *three_level_draws(rng, size, len(per_subset), seeds, longest)),
        resamples, level)


@dataclass(frozen=True)
class OverSeeds:
    """One model on one dataset over seeds (and labelled subsets): every seed's per-image mean (averaged over
    the subsets that have it), the mean (over subsets of each one's mean over seeds), the SD across seeds, the
    CI, and the labels seeds of the subsets (None: the study's one subset)."""

    seeds: tuple[int, ...]
    seed_means: tuple[float, ...]
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    subsets: tuple[int | None, ...] = (None,)


@dataclass(frozen=True)
class PairedOverSeeds:
    """model - baseline, paired by subset, seed and image: mean difference with its CI, seeds the model beats
    the baseline on, and the paired t-test across seeds."""

    difference: OverSeeds
    wins: int
    p_value: float

    @property
    def separated(self) -> bool:
        return not self.difference.ci_low <= 0 <= self.difference.ci_high


def _seed_means(runs: Runs) -> dict[int, float]:
    """Each run seed's per-image mean, averaged over the subsets that have it, in seed order."""
    seeds = sorted({s for by_seed in runs.values() for s in by_seed})
    return {s: float(np.mean([float(np.mean(by_seed[s])) for by_seed in runs.values() if s in by_seed])) for s in seeds}


def over_runs(runs: Runs, bootstrap_seed: int) -> OverSeeds:
    """Summary of `runs` (see `Runs`); the CI is two-level with one subset, three-level with several."""
    subsets = list(runs)
    per_subset = [[runs[l][s] for s in sorted(runs[l])] for l in subsets]
    subset_means = [float(np.mean([float(np.mean(v)) for v in per_seed])) for per_seed in per_subset]
    seed_means = _seed_means(runs)
    low, high = three_level_ci(per_subset, bootstrap_seed)
    sd = float(np.std(list(seed_means.values()), ddof=1)) if len(seed_means) > 1 else float("nan")
    return OverSeeds(tuple(seed_means), tuple(seed_means.values()), float(np.mean(subset_means)), sd, low, high,
                     tuple(subsets))


def paired_over_runs(model: Runs, baseline: Runs, bootstrap_seed: int,
                     higher_is_better: bool = True) -> PairedOverSeeds:
    """model[l][s] and baseline[l][s]: per-image values of the same runs (subset l, seed s) on the same images in
    the same order."""
    differences = {l: {s: np.asarray(v, np.float64) - np.asarray(baseline[l][s], np.float64)
                       for s, v in by_seed.items()} for l, by_seed in model.items()}
    summary = over_runs(differences, bootstrap_seed)
    sign = 1 if higher_is_better else -1
    wins = sum(sign * d > 0 for d in summary.seed_means)
    if len(summary.seeds) > 1 and np.ptp(summary.seed_means) > 1e-12:  # equal differences: no t statistic
        p_value = float(stats.ttest_rel(list(_seed_means(model).values()), list(_seed_means(baseline).values())).pvalue)
    else:
        p_value = float("nan")
    return PairedOverSeeds(summary, int(wins), p_value)
