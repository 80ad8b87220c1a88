"""Conditional diffusion segmenter (after SegDiff, Amit et al. 2021): diffusion on the mask, conditioned on the image.

Masks {0, 1} are mapped to x_0 in {-1, 1}; an RRDB encodes the image into a
condition (B, cond_channels, H, W) that is added to the noisy mask (diff-add)
or concatenated with it (diff-concat) before the noise-predicting U-Net. The DDPM
head (loss, samplers) is the shared `segbench_backbone.ddpm.DDPMSegmenter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segbench_backbone.conditional import ConditionalUNet
from segbench_backbone.ddpm import DDPMSegmenter
from segbench_diffusion.hyperparameters import DiffusionHyperparameters


class DiffusionSegmenter(DDPMSegmenter, ConditionalUNet):
    """Conditional DDPM/DDIM segmenter on the RRDB + NoiseUNet backbone; implements segbench's Segmenter."""

    def __init__(self, hparams: DiffusionHyperparameters, conditioning: str) -> None:
        ConditionalUNet.__init__(self, hparams, conditioning)
        self.init_schedule(hparams)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], conditioning: str) -> DiffusionSegmenter:
        """Build from a factory's input (the hyperparameters and image_size)."""
        return cls(DiffusionHyperparameters.from_mapping(values), conditioning)


def diff_add(values: Mapping[str, Any]) -> DiffusionSegmenter:
    """Factory of `diff-add`: noisy mask added to the image condition."""
    return DiffusionSegmenter.from_mapping(values, "add")


def diff_concat(values: Mapping[str, Any]) -> DiffusionSegmenter:
    """Factory of `diff-concat` (and its Wolleb et al. configuration): noisy mask concatenated with the image condition."""
    return DiffusionSegmenter.from_mapping(values, "concat")
