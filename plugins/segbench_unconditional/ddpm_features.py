"""ddpm-features (Baranchuk et al. 2021): an ensemble of pixel MLPs on an unconditional X-ray DDPM's
decoder activations at the paper's scales (1/8 to 1/2 of the input, `feature_blocks`), fused by majority
vote (or by the mean, `ensemble_fusion`).

Stage "ddpm" trains `ddpm` on every training image (no masks: `ddpm_loss`); stage "mlp" trains
`ensemble` on the labelled images (`training_loss`), the DDPM frozen. Features are computed per batch,
never for the whole training set (the reference code's memory problem, its issues #9 and #11).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segbench import Prediction
from segbench_unconditional.features import PixelMLPEnsemble, as_pixels, mean_fusion, pixel_features, vote_fusion
from segbench_unconditional.hyperparameters import FeaturesHyperparameters
from segbench_unconditional.network import XrayDDPM

# The most images per feature pass in `predict`: bounds the memory of the features (14,400 x 64 x 64 floats,
# 236 MB per image with the paper preset: 7.5 GB a pass, twice that while the blocks are concatenated). A
# batch is cut into passes of min(B, FEATURE_CHUNK) images, the last one padded, so every pass of a batch has
# the same shape: with the engine's batches (a multiple of 32 masks on the CPU) a sample's bits do not depend
# on its companions or its position.
FEATURE_CHUNK = 32


class DDPMFeaturesSegmenter(nn.Module):
    """X-ray DDPM (`ddpm`) + pixel-MLP ensemble (`ensemble`); implements segbench's Segmenter in two stages."""

    def __init__(self, hparams: FeaturesHyperparameters) -> None:
        super().__init__()
        self.hparams = hparams
        self.ddpm = XrayDDPM(hparams)
        self.blocks = hparams.chosen_blocks.indices
        self.ensemble = PixelMLPEnsemble(hparams.features_per_pixel, hparams.mlp_widths, hparams.ensemble_size)
        size = hparams.image_size
        generator = torch.Generator().manual_seed(hparams.feature_noise_seed)
        # The one noise every image is diffused with (Baranchuk et al.'s share_noise): features are a
        # deterministic function of the image. Derived from the hyperparameters, so not checkpointed.
        self.register_buffer("feature_noise", torch.randn((1, 1, size, size), generator=generator), persistent=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DDPMFeaturesSegmenter:
        return cls(FeaturesHyperparameters.from_mapping(values))

    def features(self, images: Tensor) -> Tensor:
        """images (B, 1, S, S) in [0, 1] -> float32 (B, d, S, S), without gradients (the DDPM is frozen)."""
        return pixel_features(self.ddpm, images, self.hparams.feature_timesteps, self.blocks, self.feature_noise)

    def ddpm_loss(self, images: Tensor) -> Tensor:
        """Stage "ddpm" (view "images"): the DDPM's L_simple on a batch of images."""
        return self.ddpm.loss(images)

    def training_loss(self, images: Tensor, masks: Tensor) -> Tensor:
        """Stage "mlp" (view "labelled"): each MLP's binary cross-entropy on its own `pixels_per_step` pixels,
        drawn without replacement from the batch's pixels (the global RNG, which the engine seeds), averaged
        over the ensemble. Drawing per member stands for the paper's independent shuffles."""
        pixels = as_pixels(self.features(images))  # (N, d)
        targets = masks.reshape(-1)  # (N,), the same (image, row, column) order
        count = min(self.hparams.pixels_per_step, pixels.shape[0])
        members = self.hparams.ensemble_size
        index = torch.rand(members, pixels.shape[0], device=pixels.device).argsort(dim=1)[:, :count]
        logits = self.ensemble.member_logits(pixels[index])  # (M, count)
        return F.binary_cross_entropy_with_logits(logits, targets[index])

    @torch.no_grad()
    def predict(self, images: Tensor, seeds: Tensor) -> Prediction:
        """The ensemble's members fused by `ensemble_fusion` (features.py): "vote", the vote fraction (B, 1, S, S)
        and the members' Jensen-Shannon divergence as uncertainty; "mean", the mean probability and its std.

        Deterministic: the features use the shared noise, so `seeds` draw nothing.
        """
        del seeds
        b, _, height, width = images.shape
        size = min(b, FEATURE_CHUNK)
        members = []
        for start in range(0, b, size):
            chunk = images[start:start + size]
            padded = torch.cat([chunk, chunk.new_zeros(size - chunk.shape[0], *chunk.shape[1:])])
            logits = self.ensemble(as_pixels(self.features(padded)))  # (M, size H W)
            members.append(logits.float().reshape(-1, size, 1, height, width)[:, :chunk.shape[0]])
        fuse = vote_fusion if self.hparams.ensemble_fusion == "vote" else mean_fusion
        return Prediction(*fuse(torch.cat(members, dim=1)))  # members' logits (M, B, 1, H, W)

    def synthesize(self, seeds: Tensor) -> Tensor:
        """One synthetic X-ray per seed from the DDPM: float32 (B, 1, S, S) in [0, 1]."""
        return self.ddpm.synthesize(seeds)


def ddpm_features(values: Mapping[str, Any]) -> DDPMFeaturesSegmenter:
    """Factory of `ddpm-features`."""
    return DDPMFeaturesSegmenter.from_mapping(values)
