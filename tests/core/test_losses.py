"""BCE + soft Dice against an independent float64 computation."""

from __future__ import annotations

import math

import torch

from segbench.losses import bce_dice_loss, soft_dice_loss


def _reference(logits: torch.Tensor, masks: torch.Tensor) -> float:
    total_bce, total_dice = 0.0, 0.0
    for z_img, y_img in zip(logits.double(), masks.double()):
        p = [1 / (1 + math.exp(-z)) for z in z_img.flatten().tolist()]
        y = y_img.flatten().tolist()
        total_bce += sum(-(t * math.log(q) + (1 - t) * math.log(1 - q)) for q, t in zip(p, y))
        total_dice += 1 - (2 * sum(q * t for q, t in zip(p, y)) + 1) / (sum(p) + sum(y) + 1)
    return total_bce / logits.numel() + total_dice / len(logits)


def test_matches_independent_computation():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 8, 8, generator=gen) * 3
    masks = (torch.rand(3, 1, 8, 8, generator=gen) > 0.6).float()
    masks[2] = 0  # an empty mask, as infection-free images have
    assert math.isclose(bce_dice_loss(logits, masks).item(), _reference(logits, masks), rel_tol=1e-5)


def test_dice_is_per_image_and_empty_masks_cost_nothing_when_predicted_empty():
    masks = torch.zeros(2, 1, 4, 4)
    masks[0, :, :2] = 1
    perfect = (masks * 2 - 1) * 50
    assert soft_dice_loss(perfect, masks).item() < 1e-6
    wrong = perfect.clone()
    wrong[1] = 50  # everything foreground in the empty image
    assert math.isclose(soft_dice_loss(wrong, masks).item(), (1 - 1 / 17) / 2, rel_tol=1e-5)


def test_bfloat16_logits_are_scored_in_float32():
    logits = torch.randn(2, 1, 16, 16).bfloat16()
    masks = (torch.rand(2, 1, 16, 16) > 0.5).float()
    assert bce_dice_loss(logits, masks).dtype == torch.float32
