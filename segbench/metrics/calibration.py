"""How good per-pixel uncertainty and probabilities are: AUROC of the uncertainty for pixel errors,
expected calibration error and Brier score of the foreground probabilities."""

from __future__ import annotations

import numpy as np
from scipy import stats

ECE_BINS = 15


def auroc(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Area under the ROC curve of `scores` for the boolean `positives`, per row along the last axis
    (shapes (..., P)): the Mann-Whitney U statistic over n_pos * n_neg, ties counting one half; NaN for a
    row with only one class."""
    scores, positives = np.asarray(scores, np.float64), np.asarray(positives, bool)
    ranks = stats.rankdata(scores, axis=-1)  # average ranks: a tie counts one half
    n_pos = positives.sum(-1)
    n_neg = positives.shape[-1] - n_pos
    u = np.where(positives, ranks, 0.0).sum(-1) - n_pos * (n_pos + 1) / 2
    defined = (n_pos > 0) & (n_neg > 0)
    return np.where(defined, u / np.where(defined, n_pos * n_neg, 1), np.nan)


def expected_calibration_error(probabilities: np.ndarray, references: np.ndarray, bins: int = ECE_BINS) -> float:
    """sum over `bins` equal-width bins of [0, 1] (the last one closed) of (pixels in the bin / all pixels)
    * |share of foreground in the reference - mean foreground probability|, over all given pixels."""
    p = np.asarray(probabilities, np.float64).ravel()
    r = np.asarray(references, np.float64).ravel()
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.bincount(index, weights=r, minlength=bins) - np.bincount(index, weights=p, minlength=bins)
    return float(np.abs(gap).sum() / p.size)


def brier_score(probabilities: np.ndarray, references: np.ndarray) -> float:
    """Mean squared difference between the foreground probability and the reference (0 or 1), over all pixels."""
    p = np.asarray(probabilities, np.float64)
    return float(np.mean((p - np.asarray(references, np.float64)) ** 2))
