"""The conditional backbone every model on the mask shares: RRDB image condition + NoiseUNet.

The condition (B, cond_channels, H, W) is added to the noisy mask ("add") or
concatenated with it ("concat") before the U-Net (SegDiff, Amit et al. 2021).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segbench_backbone.hyperparameters import BackboneHyperparameters
from segbench_backbone.rrdb import RRDBEncoder
from segbench_backbone.unet import NoiseUNet

CONDITIONINGS = ("add", "concat")


class ConditionalUNet(nn.Module):
    """RRDB condition encoder + NoiseUNet on the noisy mask combined with the condition."""

    def __init__(self, hparams: BackboneHyperparameters, conditioning: str) -> None:
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, not {conditioning!r}")
        self.conditioning = conditioning
        self.condition_encoder = RRDBEncoder(
            1, hparams.cond_channels, hparams.rrdb_nf, hparams.rrdb_gc, hparams.rrdb_blocks
        )
        self.unet = NoiseUNet.of(hparams, hparams.cond_channels + 1 if conditioning == "concat" else hparams.cond_channels)
        if hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    def encode(self, images: Tensor) -> Tensor:
        """Condition from images (B, 1, H, W) in [0, 1] -> (B, cond_channels, H, W)."""
        # [-1, 1] like the mask it is combined with
        return self.condition_encoder(images * 2 - 1)

    def network_output(self, x_t: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        """The U-Net's raw output (B, 1, H, W) for a noisy mask x_t (B, 1, H, W) at noise label t (B,)."""
        if self.conditioning == "add":
            unet_input = condition + x_t  # the 1-channel mask broadcasts over the condition's channels
        else:
            unet_input = torch.cat([condition, x_t], dim=1)
        return self.unet(unet_input, t)
