"""The direct control as a segbench Segmenter: a conditional diffusion network run once, at a fixed timestep
with a zero noisy-mask input, its output read as the mask's logit (see `segbench.controls.direct`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segbench.losses import bce_dice_loss


class DirectSegmenter(nn.Module):
    """`network` (a conditional diffusion segmenter: `encode`, `network_output`) evaluated in one pass at
    `timestep`; its parameters are the control's, unchanged.

    The raw output is read as the mask's logit whatever the diffusion model's `prediction`: an eps (Gaussian)
    or flip-noise (BerDiff: x0_hat = |x_t - eps_hat|) reading needs a noisy mask, and the control is given
    none. For BerDiff that is its x0-parameterisation (the output is x0_hat's logit); for diff-add,
    diff-concat and medsegdiff, their x0-predicting head with loss "bce_dice".
    """

    def __init__(self, network: nn.Module, timestep: int) -> None:
        super().__init__()
        self.network = network
        self.timestep = timestep

    def forward(self, images: Tensor) -> Tensor:
        """The mask's logits (B, 1, H, W) for images (B, 1, H, W) in [0, 1]: one network evaluation."""
        t = torch.full((images.shape[0],), self.timestep, dtype=torch.long, device=images.device)
        return self.network.network_output(torch.zeros_like(images), t, self.network.encode(images))

    def training_loss(self, images: Tensor, masks: Tensor) -> Tensor:
        """BCE + soft Dice of the logits against masks in {0, 1} (the U-Nets' loss); a scalar."""
        return bce_dice_loss(self(images), masks)

    @torch.inference_mode()
    def predict(self, images: Tensor, seeds: Tensor) -> Tensor:
        """Probabilities (B, 1, H, W) in [0, 1], float32: the sigmoid of one pass (deterministic: `seeds` unused)."""
        return torch.sigmoid(self(images).float())
