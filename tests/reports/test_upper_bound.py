"""The upper-bound table of a model whose probability is a calibrated score (ModelSpec.upper_bound): the
best threshold and its Dice, over all images and over those whose reference has foreground, and the
image-level AUROC, against a direct computation from the saved
predictions and reference."""

from __future__ import annotations

import numpy as np

from segbench.reports.upper_bound import THRESHOLDS, upper_bounds
from segbench.results import load_run
from tests.reliability.conftest import cli


def _dice(predicted: np.ndarray, reference: np.ndarray) -> float:
    both = predicted.sum() + reference.sum()
    return 1.0 if both == 0 else 2 * (predicted & reference).sum() / both


def test_the_upper_bound_is_the_best_test_threshold_computed_directly(tmp_path):
    out = tmp_path / "run"
    code, _, stderr = cli("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "toy-staged,toy-cnn",
                          "--image-size", "32", "--quiet", "--out", str(out))
    assert code == 0, stderr
    (row,) = upper_bounds(load_run(out), ["toy-staged"])  # toy-cnn does not declare one
    with np.load(out / "predictions/toy-staged.npz") as p, np.load(out / "predictions/_reference.npz") as r:
        probabilities, masks = p["probabilities"].astype(np.float32), r["masks"].astype(bool)
    by_threshold = {t: np.mean([_dice(q >= t, m) for q, m in zip(probabilities, masks)]) for t in THRESHOLDS}
    best = max(by_threshold, key=lambda t: (by_threshold[t], -t))
    assert row.best_threshold == best and abs(row.best_dice - by_threshold[best]) < 1e-12
    assert abs(row.dice - np.mean([_dice(q >= 0.5, m) for q, m in zip(probabilities, masks)])) < 1e-12
    positive = masks.reshape(len(masks), -1).any(1)
    assert 0 < positive.sum() < len(masks)
    with_foreground = {t: np.mean([_dice(q >= t, m) for q, m in zip(probabilities[positive], masks[positive])])
                       for t in THRESHOLDS}
    best = max(with_foreground, key=lambda t: (with_foreground[t], -t))
    assert row.foreground_best_threshold == best and abs(row.foreground_best_dice - with_foreground[best]) < 1e-12
    assert abs(row.foreground_dice - np.mean([_dice(q >= 0.5, m) for q, m in zip(probabilities[positive],
                                                                                 masks[positive])])) < 1e-12
    scores = np.quantile(probabilities.reshape(len(masks), -1), 0.99, axis=1)
    pairs = [(s > n) + 0.5 * (s == n) for s in scores[positive] for n in scores[~positive]]
    assert abs(row.image_auroc - np.mean(pairs)) < 1e-12
    report = (out / "report.md").read_text()
    assert "## Scores and their threshold: an upper bound" in report and "| toy-staged |" in report
