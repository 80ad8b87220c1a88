"""Statistics over seeds against independent computations: the two-level bootstrap against a slow loop
over the same draws, the paired t-test against scipy and, at two seeds, its closed form, and the properties
the report relies on."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from segbench.study.statistics import draws, over_seeds, paired_over_seeds, resample_means, two_level_ci


def _per_seed(seed: int = 0, sizes=(7, 9, 5), spread: float = 0.05) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(rng.normal(0.8 + spread * i, 0.1, n), 0, 1) for i, n in enumerate(sizes)]


def _slow_means(per_seed: list[np.ndarray], pick_seed: np.ndarray, pick_image: np.ndarray) -> np.ndarray:
    """The two-level resample means, one resample and one seed slot at a time."""
    slow = np.empty(len(pick_seed))
    for r in range(len(pick_seed)):
        means = []
        for j in range(len(per_seed)):  # draw a seed, then its images with replacement
            s = min(int(pick_seed[r, j] * len(per_seed)), len(per_seed) - 1)
            values = per_seed[s]
            index = [min(int(u * values.size), values.size - 1) for u in pick_image[r, j, :values.size]]
            means.append(np.mean(values[index]))
        slow[r] = np.mean(means)
    return slow


def test_vectorised_resamples_equal_a_slow_loop_over_the_same_draws():
    per_seed = _per_seed()
    pick_seed, pick_image = draws(np.random.default_rng(3), 400, len(per_seed), max(v.size for v in per_seed))
    slow = _slow_means(per_seed, pick_seed, pick_image)
    np.testing.assert_allclose(resample_means(per_seed, pick_seed, pick_image), slow, rtol=0, atol=1e-12)


def test_two_level_ci_is_the_percentile_interval_of_resamples_drawn_250_at_a_time():
    """600 resamples: uniform draws for the seeds, then for the images, of 250, 250 and 100 resamples in turn
    from default_rng(seed); the 2.5 and 97.5 percentiles of their means (95 %), or 10 and 90 (80 %)."""
    per_seed = _per_seed()
    rng = np.random.default_rng(9)
    means = []
    for size in (250, 250, 100):
        pick_seed = rng.random((size, 3))
        means.append(_slow_means(per_seed, pick_seed, rng.random((size, 3, 9))))
    for level, quantiles in ((0.95, [0.025, 0.975]), (0.8, [0.1, 0.9])):
        expected = np.quantile(np.concatenate(means), quantiles)
        assert two_level_ci(per_seed, 9, resamples=600, level=level) == pytest.approx(tuple(expected), abs=1e-12)


def test_two_level_ci_is_undefined_without_values_and_defined_from_one_value_a_seed():
    for per_seed in ([], [np.array([0.5, 0.7]), np.array([])]):
        assert all(math.isnan(bound) for bound in two_level_ci(per_seed, 0))
    assert two_level_ci([np.array([0.5]), np.array([0.7])], 0, resamples=500) == pytest.approx((0.5, 0.7))


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


def test_float32_values_are_resampled_in_float64():
    per_seed = _per_seed()
    assert two_level_ci([v.astype(np.float32) for v in per_seed], 4) == \
        two_level_ci([v.astype(np.float32).astype(np.float64) for v in per_seed], 4)


def test_one_seed_has_no_sd_and_no_p_value_and_warns_nothing():
    values = _per_seed(sizes=(8,))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = over_seeds([4], [values], 2)
        paired = paired_over_seeds([4], [values + 0.1], [values], 2)
    assert summary.seeds == (4,) and summary.mean == pytest.approx(values.mean()) and math.isnan(summary.sd)
    assert (summary.ci_low, summary.ci_high) == two_level_ci([values], 2)
    assert math.isnan(paired.p_value) and paired.wins == 1


def test_two_seeds_sd_and_p_value_by_hand():
    """SD of two values: |a - b| / sqrt(2); the paired t statistic of two differences d has 1 degree of
    freedom, whose two-sided p-value is the Cauchy tail 1 - 2 atan(|t|) / pi."""
    baseline = _per_seed(3, sizes=(6, 8))
    model = [b + np.random.default_rng(s).normal(0.02, 0.03, b.size) for s, b in enumerate(baseline)]
    summary = over_seeds([0, 1], baseline, 1)
    assert summary.sd == pytest.approx(abs(baseline[0].mean() - baseline[1].mean()) / math.sqrt(2), rel=1e-12)
    d = [np.mean(m - b) for m, b in zip(model, baseline)]
    t = np.mean(d) / (abs(d[0] - d[1]) / math.sqrt(2) / math.sqrt(2))
    paired = paired_over_seeds([0, 1], model, baseline, 1)
    assert paired.p_value == pytest.approx(1 - 2 * math.atan(abs(t)) / math.pi, rel=1e-6)
    assert (paired.difference.ci_low, paired.difference.ci_high) == \
        two_level_ci([m - b for m, b in zip(model, baseline)], 1)


def test_equal_differences_on_every_seed_give_no_p_value():
    """A t statistic needs differences that vary across seeds; scipy would give p = 0 for a constant one."""
    baseline = _per_seed(4)
    assert math.isnan(paired_over_seeds([0, 1, 2], [b + 0.1 for b in baseline], baseline, 3).p_value)


def test_a_seed_without_a_difference_is_no_win():
    baseline = _per_seed(5)
    model = [baseline[0] + 0.02, baseline[1].copy(), baseline[2] - 0.02]
    assert paired_over_seeds([0, 1, 2], model, baseline, 3).wins == 1
    assert paired_over_seeds([0, 1, 2], model, baseline, 3, higher_is_better=False).wins == 1
