"""Per-image confusion counts, vectorised on the evaluation device."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ConfusionCounts(NamedTuple):
    """Per-image pixel counts, each int64 (N,)."""

    tp: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor
    tn: torch.Tensor

    def as_float(self) -> "ConfusionCounts":
        return ConfusionCounts(*(c.to(torch.float64) for c in self))


def confusion_counts(probabilities: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> ConfusionCounts:
    """Counts for (N, ...) probabilities in [0, 1] against (N, ...) masks in {0, 1}.

    A pixel is predicted positive when its probability is >= threshold.
    """
    pred = (probabilities >= threshold).flatten(1)
    ref = (masks > 0.5).flatten(1)
    tp = (pred & ref).sum(1)
    fp = (pred & ~ref).sum(1)
    fn = (~pred & ref).sum(1)
    tn = pred.shape[1] - tp - fp - fn
    return ConfusionCounts(tp, fp, fn, tn)
