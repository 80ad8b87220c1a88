"""Uncertainty AUROC, ECE and Brier score against scikit-learn and a direct computation, per image on
random and edge-case maps (no error, every pixel wrong, ties, constant uncertainty, one error pixel)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from segbench.metrics.calibration import ECE_BINS, auroc, brier_score, expected_calibration_error

SHAPE = (12, 10)


def maps() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(probabilities, uncertainty, reference), float32 / float32 / bool (H, W)."""
    rng = np.random.default_rng(0)
    out = []
    reference = rng.random(SHAPE) < 0.4
    exact = reference.astype(np.float32)
    out += [(exact, np.zeros(SHAPE, np.float32), reference),  # nothing wrong: AUROC undefined
            (1 - exact, rng.random(SHAPE).astype(np.float32), reference),  # every pixel wrong
            (exact, np.full(SHAPE, 0.3, np.float32), reference)]  # constant uncertainty
    one_wrong = exact.copy()
    one_wrong[3, 4] = 1 - one_wrong[3, 4]
    out.append((one_wrong, rng.random(SHAPE).astype(np.float32), reference))
    out.append((np.full(SHAPE, 1.0, np.float32), rng.random(SHAPE).astype(np.float32), reference))  # p = 1: last bin
    for _ in range(220):
        reference = rng.random(SHAPE) < rng.uniform(0.05, 0.9)
        probabilities = np.clip(reference + rng.normal(0, rng.uniform(0.1, 0.6), SHAPE), 0, 1).astype(np.float32)
        # a coarse uncertainty (ties) that partly follows the distance from the threshold
        uncertainty = np.round(0.5 - np.abs(probabilities - 0.5) + rng.normal(0, 0.1, SHAPE), 1).astype(np.float32)
        out.append((probabilities, uncertainty, reference))
    return out


MAPS = maps()


def test_auroc_of_uncertainty_for_errors_matches_sklearn_per_image():
    probabilities = np.stack([p for p, _, _ in MAPS])
    uncertainty = np.stack([u for _, u, _ in MAPS])
    errors = (probabilities >= 0.5) != np.stack([r for _, _, r in MAPS])
    ours = auroc(uncertainty.reshape(len(MAPS), -1), errors.reshape(len(MAPS), -1))
    expected = [skm.roc_auc_score(e.ravel(), u.ravel()) if 0 < e.sum() < e.size else np.nan
                for u, e in zip(uncertainty, errors)]
    assert np.isnan(ours[0]) and np.isnan(ours[1]) and len(MAPS) >= 200
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)
    pooled = skm.roc_auc_score(errors.ravel(), uncertainty.ravel())
    assert float(auroc(uncertainty.ravel(), errors.ravel())) == pytest.approx(pooled, abs=1e-9)


def direct_ece(probabilities: np.ndarray, reference: np.ndarray, bins: int = ECE_BINS) -> float:
    """The definition, bin by bin: weight of the bin times |share of foreground - mean probability|."""
    p, r = probabilities.ravel().astype(np.float64), reference.ravel().astype(np.float64)
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = (p >= low) & ((p < high) if b < bins - 1 else (p <= high))
        if inside.any():
            total += inside.sum() / p.size * abs(r[inside].mean() - p[inside].mean())
    return total


@pytest.mark.parametrize("index", range(0, len(MAPS), 9))
def test_ece_matches_the_direct_computation(index):
    p, _, r = MAPS[index]
    assert expected_calibration_error(p, r) == pytest.approx(direct_ece(p, r), abs=1e-9)


def test_ece_and_brier_on_every_map_and_pooled():
    for p, _, r in MAPS:
        assert expected_calibration_error(p, r) == pytest.approx(direct_ece(p, r), abs=1e-9)
        assert brier_score(p, r) == pytest.approx(skm.brier_score_loss(r.ravel(), p.ravel().astype(np.float64)), abs=1e-9)
    p, r = np.stack([m[0] for m in MAPS]), np.stack([m[2] for m in MAPS])
    assert expected_calibration_error(p, r) == pytest.approx(direct_ece(p, r), abs=1e-9)
    exact = MAPS[0][0]
    assert expected_calibration_error(exact, MAPS[0][2]) == 0.0 and brier_score(exact, MAPS[0][2]) == 0.0
