"""Losses for binary segmenters on logits: BCE + soft Dice (public: plugins may use them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, masks: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per image, averaged over the batch.

    logits, masks: (B, 1, H, W); masks in {0, 1}. Returns a scalar in [0, 1].
    Per image rather than pooled over the batch so the loss matches the
    per-image Dice we report; `smooth` makes an empty mask with an empty
    prediction cost 0, as the empty-mask policy scores it 1.
    """
    probs = torch.sigmoid(logits).flatten(1)
    target = masks.flatten(1)
    overlap = (probs * target).sum(1)
    total = probs.sum(1) + target.sum(1)
    return (1 - (2 * overlap + smooth) / (total + smooth)).mean()


def bce_dice_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Pixel-mean binary cross-entropy plus `soft_dice_loss`, equally weighted; a scalar."""
    # In float32 even under autocast: bfloat16 sums over 4096 pixels lose the Dice.
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, masks) + soft_dice_loss(logits, masks)
