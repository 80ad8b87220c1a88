"""unet-pretrained: `unet`'s network, first trained to restore every training image from its Models Genesis
corruption (pretext.py; stage "pretrain", view "images", no masks), then fine-tuned on the labelled images as
`unet` trains (stage "finetune").

The restoration is read through the segmentation head itself: sigmoid of its one output channel, MSE against
the image (Models Genesis's sigmoid output and MSE), so fine-tuning starts from every pretrained weight, the
head's included, and the model has exactly `unet`'s parameters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from segbench.seeds import derive_seed
from segbench_unets.pretext import corrupt, draw
from segbench_unets.segmenter import LogitSegmenter


def pretext_seeds(images: torch.Tensor, step: int) -> list[int]:
    """The seed of each image's corruption at a step: from (`step`, the image's grey levels).

    A loss is given images alone, so an image's bytes stand for its sample id: its corruption depends on
    nothing else in the batch (identical images are corrupted alike, which harms nothing).
    """
    levels = images.detach().mul(255).round().to(torch.uint8).cpu().numpy()
    return [derive_seed("pretext", step, hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest())
            for image in levels]


class PretrainedUNet(LogitSegmenter):
    """A LogitSegmenter with the pretext's loss beside the segmentation loss it inherits."""

    def corrupted(self, images: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
        """Images (B, 1, H, W) in [0, 1], each corrupted by the transforms its seed draws."""
        return corrupt(images, draw(seeds, tuple(images.shape[-2:]), images.device))

    def restoration_loss(self, images: torch.Tensor) -> torch.Tensor:
        """Stage "pretrain" (view "images"): MSE between the images and the network's restoration of their
        corruptions (sigmoid of the head); a scalar. The step is one draw of the global generator, which the
        engine seeds per stage and checkpoints, so a resumed stage corrupts as an uninterrupted one (as the
        DDPM stage's noise; a batch split after GPU out-of-memory draws once per part, as that noise does)."""
        step = int(torch.randint(0, 2**62, ()).item())
        restored = torch.sigmoid(self(self.corrupted(images, pretext_seeds(images, step))).float())
        return F.mse_loss(restored, images.float())
