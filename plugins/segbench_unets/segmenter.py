"""The Segmenter wrapper shared by every network here that outputs one logit per pixel."""

from __future__ import annotations

import torch
from torch import nn

from segbench.losses import bce_dice_loss


class LogitSegmenter(nn.Module):
    """Turns a network images (B, 1, H, W) -> logits (B, 1, H, W) into a segbench Segmenter.

    channels_last: keep the network and its inputs in NHWC, which makes these
    convolutional nets faster on CPU (see the plugin's presets and BENCHMARKS).
    """

    def __init__(self, net: nn.Module, channels_last: bool = True) -> None:
        super().__init__()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.to(memory_format=self.memory_format)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, 1, H, W) for images (B, 1, H, W) in [0, 1]."""
        return self.net(images.contiguous(memory_format=self.memory_format))

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """BCE + soft Dice of the logits against masks in {0, 1}; a scalar."""
        return bce_dice_loss(self(images), masks)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """Probabilities (B, 1, H, W) in [0, 1]; deterministic, so `seeds` is unused.

        Runs in eval mode whatever the caller's mode: batch-norm batch statistics
        would make a sample's prediction depend on its batch.
        """
        was_training = self.training
        self.eval()
        try:
            return torch.sigmoid(self(images).float()).contiguous()
        finally:
            self.train(was_training)
