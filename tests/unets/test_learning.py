"""Slow: each baseline learns to segment noisy bright discs in 80 steps (about a minute on one core).

Fewer steps fail in eval mode only: batch-norm running statistics (momentum 0.1)
trail the weights for the first ~50 steps, while train-mode Dice is already > 0.9.
"""

from __future__ import annotations

import pytest
import torch


def discs(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images (n, 1, size, size) in [0, 1] with one bright disc each; masks are the discs."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 2, 1, 1, generator=gen) * size * 0.5 + size * 0.25
    radii = torch.rand(n, 1, 1, generator=gen) * size * 0.15 + size * 0.1
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks = ((ys - centres[:, 0]) ** 2 + (xs - centres[:, 1]) ** 2 <= radii**2).float().unsqueeze(1)
    images = (0.3 + 0.4 * masks + 0.15 * torch.randn(masks.shape, generator=gen)).clamp(0, 1)
    return images, masks


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unet", "res50attunet"])
def test_learns_bright_discs(build, name):
    model = build(name, preset="small", image_size=32)
    images, masks = discs(128, 32, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(80):
        idx = torch.randperm(len(images), generator=gen)[:16]
        loss = model.training_loss(images[idx], masks[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_images, test_masks = discs(32, 32, seed=1)
    pred = (model.predict(test_images, torch.zeros(32, dtype=torch.int64)) > 0.5).float()
    dice = 2 * (pred * test_masks).sum((1, 2, 3)) / (pred + test_masks).sum((1, 2, 3))
    assert dice.mean() > 0.9, dice.mean()
