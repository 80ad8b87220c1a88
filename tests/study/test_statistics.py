"""Statistics over seeds against independent computations: the two-level bootstrap against a slow loop
over the same draws, the three-level one (labelled subsets, seeds, images) against a direct nested
resampling, the paired t-test against scipy and, at two seeds, its closed form, and the properties the
report relies on."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from segbench.study.statistics import (
    draws,
    over_runs,
    paired_over_runs,
    resample_means,
    three_level_ci,
    three_level_draws,
    three_level_means,
    two_level_ci,
)


def over_seeds(seeds, per_seed, bootstrap_seed):
    """One labelled subset, as a study without a labels_seeds axis has."""
    return over_runs({None: dict(zip(seeds, per_seed))}, bootstrap_seed)


def paired_over_seeds(seeds, model, baseline, bootstrap_seed, higher_is_better=True):
    return paired_over_runs({None: dict(zip(seeds, model))}, {None: dict(zip(seeds, baseline))}, bootstrap_seed,
                            higher_is_better)


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


def _two_level_reference(per_seed: list[np.ndarray], seed: int, resamples: int) -> np.ndarray:
    """The 95 % percentile interval of slow two-level resamples drawn from default_rng(seed), 250 at a time:
    per chunk, uniforms for the seeds, then the images."""
    rng = np.random.default_rng(seed)
    images = max(v.size for v in per_seed)
    means = []
    for start in range(0, resamples, 250):
        size = min(250, resamples - start)
        pick_seed = rng.random((size, len(per_seed)))
        means.append(_slow_means(per_seed, pick_seed, rng.random((size, len(per_seed), images))))
    return np.quantile(np.concatenate(means), [0.025, 0.975])


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


# ---- labelled subsets: the three-level bootstrap ----

def _per_subset(seed: int = 0, seeds=(3, 2, 3), shift: float = 0.1) -> list[list[np.ndarray]]:
    """Three labelled subsets (the second missing a seed) whose means differ by `shift`, 4 to 9 images a run."""
    rng = np.random.default_rng(seed)
    return [[np.clip(rng.normal(0.6 + shift * l + 0.03 * s, 0.1, rng.integers(4, 10)), 0, 1) for s in range(n)]
            for l, n in enumerate(seeds)]


def _nested_means(per_subset, pick_subset, pick_seed, pick_image) -> np.ndarray:
    """Direct nested resampling, one resample at a time: draw a subset per slot, then a seed per slot of that
    subset, then its images, each with replacement; the mean over subset slots of the mean over seed slots
    of the drawn images' mean."""
    out = np.empty(len(pick_subset))
    for r in range(len(pick_subset)):
        subset_means = []
        for j in range(len(per_subset)):
            runs = per_subset[min(int(pick_subset[r, j] * len(per_subset)), len(per_subset) - 1)]
            seed_means = []
            for k in range(len(runs)):
                values = runs[min(int(pick_seed[r, j, k] * len(runs)), len(runs) - 1)]
                index = np.minimum((pick_image[r, j, k, :values.size] * values.size).astype(int), values.size - 1)
                seed_means.append(values[index].mean())
            subset_means.append(np.mean(seed_means))
        out[r] = np.mean(subset_means)
    return out


def _nested_ci(per_subset, seed: int, resamples: int) -> np.ndarray:
    """The 95 % percentile interval of direct nested resamples drawn from default_rng(seed), 250 at a time:
    per chunk, uniforms for the subsets, then the seeds, then the images."""
    rng = np.random.default_rng(seed)
    subsets, seeds = len(per_subset), max(len(runs) for runs in per_subset)
    images = max(v.size for runs in per_subset for v in runs)
    means = []
    for start in range(0, resamples, 250):
        size = min(250, resamples - start)
        pick_subset, pick_seed = rng.random((size, subsets)), rng.random((size, subsets, seeds))
        means.append(_nested_means(per_subset, pick_subset, pick_seed, rng.random((size, subsets, seeds, images))))
    return np.quantile(np.concatenate(means), [0.025, 0.975])


def test_three_level_resamples_equal_a_direct_nested_resampling_over_the_same_draws():
    per_subset = _per_subset()
    draws3 = three_level_draws(np.random.default_rng(4), 300, 3, 3, 9)
    np.testing.assert_allclose(three_level_means(per_subset, *draws3), _nested_means(per_subset, *draws3),
                               rtol=0, atol=1e-12)


def test_three_level_ci_is_the_percentile_interval_of_a_direct_nested_resampling_with_the_same_seed():
    per_subset = _per_subset(1)
    assert three_level_ci(per_subset, 9, resamples=600) == pytest.approx(tuple(_nested_ci(per_subset, 9, 600)),
                                                                         abs=1e-12)


def test_one_subset_is_the_two_level_ci_and_equal_subsets_add_nothing_but_runs():
    """One subset: exactly the two-level CI of its seeds. Subsets that are all equal: drawing subsets changes
    nothing, so the CI is (within Monte Carlo error) the two-level CI of their runs pooled, copies and all
    (both against the slow two-level resampling)."""
    per_seed = _per_seed()
    assert three_level_ci([per_seed], 3) == pytest.approx(tuple(_two_level_reference(per_seed, 3, 2000)), abs=1e-12)
    low, high = three_level_ci([per_seed] * 3, 3)
    pooled_low, pooled_high = _two_level_reference(per_seed * 3, 5, 2000)
    assert abs(low - pooled_low) < 0.1 * (high - low) and abs(high - pooled_high) < 0.1 * (high - low)


def test_subsets_that_disagree_widen_the_interval():
    equal = [_per_subset(2, shift=0.0)[0]] * 3
    low, high = three_level_ci(equal, 1)
    wide_low, wide_high = three_level_ci(_per_subset(2, shift=0.1), 1)
    assert wide_high - wide_low > 2 * (high - low)


def test_over_runs_averages_each_subset_over_its_seeds_then_the_subsets():
    per_subset = _per_subset(3)
    runs = {labels_seed: dict(enumerate(runs)) for labels_seed, runs in zip((0, 5, 7), per_subset)}
    summary = over_runs(runs, 2)
    assert summary.subsets == (0, 5, 7) and summary.seeds == (0, 1, 2)
    assert summary.mean == pytest.approx(np.mean([np.mean([v.mean() for v in runs]) for runs in per_subset]))
    assert summary.seed_means[2] == pytest.approx(np.mean([per_subset[0][2].mean(), per_subset[2][2].mean()]))
    assert (summary.ci_low, summary.ci_high) == pytest.approx(tuple(_nested_ci(per_subset, 2, 2000)), abs=1e-12)


def test_paired_runs_are_differenced_by_subset_seed_and_image():
    baseline = _per_subset(4)
    model = [[v + np.random.default_rng(i).normal(0.02, 0.05, v.size) for i, v in enumerate(runs)] for runs in baseline]
    as_runs = lambda table: {l: dict(enumerate(runs)) for l, runs in enumerate(table)}  # noqa: E731
    paired = paired_over_runs(as_runs(model), as_runs(baseline), 6)
    differences = [[m - b for m, b in zip(*pair)] for pair in zip(model, baseline)]
    assert (paired.difference.ci_low, paired.difference.ci_high) == \
        pytest.approx(tuple(_nested_ci(differences, 6, 2000)), abs=1e-12)
    seed_mean = lambda table, s: np.mean([runs[s].mean() for runs in table if s < len(runs)])  # noqa: E731
    expected = stats.ttest_rel([seed_mean(model, s) for s in range(3)], [seed_mean(baseline, s) for s in range(3)])
    assert paired.p_value == pytest.approx(expected.pvalue, rel=1e-9)
