"""Paired statistics against scipy and known values; bootstrap intervals are deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from segbench.metrics import bootstrap_ci
from segbench.metrics.paired import bootstrap_median_ci, holm, paired_test, wilcoxon_signed_rank
from segbench.reports.comparison import compare
from tests.reports.conftest import DICE, literal_results

# scipy.stats.wilcoxon's documented example (Cushny and Peebles' height differences).
DIFFERENCES = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75], dtype=float)


def test_wilcoxon_matches_the_known_exact_result():
    statistic, p = wilcoxon_signed_rank(DIFFERENCES)
    assert statistic == 24.0 and p == pytest.approx(0.041259765625, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wilcoxon_matches_scipy_with_ties_and_zeros(seed):
    d = np.random.default_rng(seed).integers(-3, 4, 40).astype(float)  # ties and zeros: normal approximation
    expected = stats.wilcoxon(d, zero_method="wilcox")
    assert wilcoxon_signed_rank(d) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-12)


def test_identical_models_give_p_one_and_zero_difference():
    values = np.array([0.9, 0.8, 0.7])
    result = paired_test(values, values, seed=0)
    assert (result.n, result.median_difference, result.mean_difference, result.p_value) == (3, 0.0, 0.0, 1.0)
    assert (result.median_ci_low, result.median_ci_high, result.mean_ci_low, result.mean_ci_high) == (0.0,) * 4
    assert (result.wins, result.ties, result.losses, result.n_tested) == (0, 3, 0, 0)


def test_paired_test_is_other_minus_baseline():
    baseline = np.zeros(15)
    result = paired_test(baseline, DIFFERENCES, seed=0)
    assert result.median_difference == np.median(DIFFERENCES) == 24.0
    assert result.p_value == pytest.approx(0.041259765625) and result.median_ci_low <= 24.0 <= result.median_ci_high


def test_holm_known_values_in_input_order():
    adjusted = holm([0.01, 0.04, 0.03, 0.005, float("nan")])
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    assert holm([]).size == 0 and holm([0.7, 0.9]).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("seed", range(5))
def test_holm_equals_its_step_down_definition(seed):
    p = np.random.default_rng(seed).uniform(0, 0.2, 7)
    order = np.argsort(p)
    m = p.size
    expected = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        expected[i] = running
    np.testing.assert_allclose(holm(p), expected)


def test_bootstrap_intervals_are_deterministic_for_a_seed():
    values = np.random.default_rng(3).normal(0.8, 0.1, 50)
    assert bootstrap_median_ci(values, seed=7) == bootstrap_median_ci(values, seed=7)
    assert bootstrap_median_ci(values, seed=7) != bootstrap_median_ci(values, seed=8)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    low, high = bootstrap_median_ci(values, seed=7)
    assert low < np.median(values) < high
    # The same resamples a direct implementation draws from the seed.
    idx = np.random.default_rng(7).integers(0, 50, size=(2000, 50))
    assert (low, high) == tuple(np.quantile(np.median(values[idx], axis=1), [0.025, 0.975]))


def test_comparison_uses_scipy_on_the_shared_samples_and_holm():
    results = literal_results()
    # Drop one image of one model: the comparison pairs only the images both have.
    results.per_image = results.per_image.drop(index=results.per_image.index[-1])
    comparison = compare(results)
    assert comparison.baseline == "unet" and comparison.metric == "dice"
    base = np.array(DICE["unet"])
    p = []
    for row, model in zip(comparison.rows, ["diff-add", "smp:FPN:res_net"]):
        other = np.array(DICE[model])
        n = 5 if model == "smp:FPN:res_net" else 6
        assert row.test.n == n
        p.append(stats.wilcoxon(other[:n] - base[:n]).pvalue)
        assert row.test.p_value == pytest.approx(p[-1])
    np.testing.assert_allclose([r.p_holm for r in comparison.rows], holm(p))
    assert "Wilcoxon" in comparison.method and "Holm" in comparison.method


def test_comparison_baseline_choice_and_errors():
    results = literal_results()
    assert [r.model for r in compare(results, "diff-add").rows] == ["unet", "smp:FPN:res_net"]
    with pytest.raises(Exception, match="unknown --baseline model 'nope'; valid: .*unet"):
        compare(results, "nope")
