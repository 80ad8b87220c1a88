"""The empty-mask policy: what a metric is when its denominator is zero.

Follows Metrics Reloaded (Maier-Hein et al. 2024): when prediction and reference
are both empty, Dice = Jaccard = 1; when exactly one is empty, 0. Generalised
to every ratio metric: a 0/0 ratio is 1 if the prediction equals the reference
on every pixel (nothing to get wrong) and 0 otherwise. Printed in every report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tensor methods only: the metrics register without importing torch
    import torch

EMPTY_MASK_POLICY = (
    "empty masks (Metrics Reloaded): a metric whose denominator is zero is 1 when the "
    "prediction equals the reference (e.g. both empty: Dice = Jaccard = 1) and 0 otherwise"
)


def safe_ratio(num: torch.Tensor, den: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    """num / den, with 0/0 resolved by the empty-mask policy (1 if fp + fn == 0, else 0)."""
    perfect = (fp + fn) == 0
    undefined = den == 0
    value = num / den.where(~undefined, 1.0)
    return value.where(~undefined, perfect.to(value.dtype))
