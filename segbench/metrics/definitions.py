"""The eight built-in metrics, each a function of per-image confusion counts (float64)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from segbench.metrics.policy import safe_ratio

if TYPE_CHECKING:  # tensor methods only, so registering the metrics does not import torch
    from torch import Tensor


def dice(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """2TP / (2TP + FP + FN)."""
    return safe_ratio(2 * tp, 2 * tp + fp + fn, fp, fn)


def jaccard(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """TP / (TP + FP + FN)."""
    return safe_ratio(tp, tp + fp + fn, fp, fn)


def accuracy(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """(TP + TN) / all pixels."""
    return safe_ratio(tp + tn, tp + fp + fn + tn, fp, fn)


def sensitivity(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """Recall, true-positive rate: TP / (TP + FN)."""
    return safe_ratio(tp, tp + fn, fp, fn)


def specificity(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """True-negative rate: TN / (TN + FP)."""
    return safe_ratio(tn, tn + fp, fp, fn)


def balanced_accuracy(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """Mean of sensitivity and specificity."""
    return (sensitivity(tp, fp, fn, tn) + specificity(tp, fp, fn, tn)) / 2


def precision(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """Positive predictive value: TP / (TP + FP)."""
    return safe_ratio(tp, tp + fp, fp, fn)


def mcc(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """Matthews correlation: (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))."""
    den = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).sqrt()
    return safe_ratio(tp * tn - fp * fn, den, fp, fn)
