"""Statistics over seeds against independent computations: the two-level bootstrap against a slow loop
over the same draws, the paired t-test against scipy, and the properties the report relies on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from segbench.study.statistics import draws, over_seeds, paired_over_seeds, resample_means, two_level_ci


def _per_seed(seed: int = 0, sizes=(7, 9, 5), spread: float = 0.05) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(rng.normal(0.8 + spread * i, 0.1, n), 0, 1) for i, n in enumerate(sizes)]


def test_vectorised_resamples_equal_a_slow_loop_over_the_same_draws():
    per_seed = _per_seed()
    pick_seed, pick_image = draws(np.random.default_rng(3), 400, len(per_seed), max(v.size for v in per_seed))
    slow = np.empty(400)
    for r in range(400):
        means = []
        for j in range(len(per_seed)):  # draw a seed, then its images with replacement
            s = min(int(pick_seed[r, j] * len(per_seed)), len(per_seed) - 1)
            values = per_seed[s]
            index = [min(int(u * values.size), values.size - 1) for u in pick_image[r, j, :values.size]]
            means.append(np.mean(values[index]))
        slow[r] = np.mean(means)
    np.testing.assert_allclose(resample_means(per_seed, pick_seed, pick_image), slow, rtol=0, atol=1e-12)


def test_two_level_ci_is_seeded_brackets_the_mean_and_widens_with_the_seed_spread():
    narrow, wide = _per_seed(spread=0.0), _per_seed(spread=0.15)
    assert two_level_ci(narrow, 1) == two_level_ci(narrow, 1)
    mean = np.mean([v.mean() for v in narrow])
    low, high = two_level_ci(narrow, 1)
    assert low < mean < high
    wide_low, wide_high = two_level_ci(wide, 1)
    assert wide_high - wide_low > 1.5 * (high - low)  # seeds that disagree widen the interval


def test_one_seed_gives_the_images_bootstrap_spread():
    """With one seed only the images are resampled: the interval matches a plain bootstrap's within
    Monte Carlo error (independent draws, 2,000 resamples)."""
    values = _per_seed(sizes=(60,))[0]
    low, high = two_level_ci([values], 5)
    rng = np.random.default_rng(11)
    plain = values[rng.integers(0, values.size, (2000, values.size))].mean(axis=1)
    ref_low, ref_high = np.quantile(plain, [0.025, 0.975])
    assert abs(low - ref_low) < 0.01 and abs(high - ref_high) < 0.01


def test_over_seeds_reports_each_seed_mean_sd_and_ci():
    per_seed = _per_seed()
    summary = over_seeds([0, 1, 2], per_seed, 7)
    assert summary.seed_means == tuple(float(v.mean()) for v in per_seed)
    assert summary.mean == pytest.approx(np.mean(summary.seed_means))
    assert summary.sd == pytest.approx(np.std(summary.seed_means, ddof=1))
    assert (summary.ci_low, summary.ci_high) == two_level_ci(per_seed, 7)


def test_paired_comparison_matches_scipy_and_counts_wins():
    baseline = _per_seed(1)
    model = [b + d for b, d in zip(baseline, (0.02, -0.01, 0.05))]
    paired = paired_over_seeds([0, 1, 2], model, baseline, 3)
    expected = stats.ttest_rel([m.mean() for m in model], [b.mean() for b in baseline]).pvalue
    assert paired.p_value == pytest.approx(expected, rel=1e-12)
    assert paired.wins == 2 and paired.difference.mean == pytest.approx((0.02 - 0.01 + 0.05) / 3)
    assert paired_over_seeds([0, 1, 2], model, baseline, 3, higher_is_better=False).wins == 1


def test_a_difference_whose_ci_includes_zero_is_not_separated():
    baseline = _per_seed(2)
    noisy = [b + d for b, d in zip(baseline, (0.05, -0.06, 0.01))]
    clear = [b + 0.1 for b in baseline]
    assert not paired_over_seeds([0, 1, 2], noisy, baseline, 3).separated
    assert paired_over_seeds([0, 1, 2], clear, baseline, 3).separated
