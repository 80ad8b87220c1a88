"""Hyperparameters of the shared backbone: validation, presets, and the training presets that go with them.

No torch import here, so registering a plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from segbench import HyperparameterError, SegbenchError
from segbench.presets import SEED_PAPER_TRAINING

if TYPE_CHECKING:
    from typing_extensions import Self

T = TypeVar("T")

# The seed paper (after SegDiff, Amit et al. 2021) at 64x64: with the diffusion head, a 218 M-parameter U-Net.
PAPER: dict[str, Any] = {
    "base_channels": 192,
    "channel_mult": (1, 2, 3, 4),
    "num_res_blocks": 2,
    "attention_resolutions": (32, 16, 8),
    "head_channels": 64,
    "norm_groups": 32,
    "dropout": 0.0,
    "rrdb_blocks": 1,
    "rrdb_nf": 64,
    "rrdb_gc": 32,
    "cond_channels": 16,
    "gradient_checkpointing": False,  # recompute U-Net activations in the backward pass: less memory
    "channels_last": False,  # NHWC weights and activations; eager bf16 on an H200 was slower with it
}

# The CPU default, designed for fast convergence: base 16 with mult (1, 2, 2), one ResBlock per
# level, attention only at 16x16 (256 tokens) and a light RRDB (nf 16, gc 8): 0.65 + 0.41 GFLOP per
# image; channels_last: on 2 CPU cores, sampling 26 % faster than NCHW (benchmarks/speed.py).
SMALL: dict[str, Any] = {
    **PAPER,
    "base_channels": 16,
    "channel_mult": (1, 2, 2),
    "num_res_blocks": 1,
    "attention_resolutions": (16,),
    "head_channels": 32,
    "norm_groups": 8,
    "rrdb_blocks": 1,
    "rrdb_nf": 16,
    "rrdb_gc": 8,
    "channels_last": True,
}

# For tests: 92 k parameters with the diffusion head. Attention only in the middle block, so that it
# is valid at any image size divisible by 4; three levels put that block at 16x16 for 64x64 images
# (with two, attention over 32x32 took half of a training step).
TINY: dict[str, Any] = {
    **SMALL,
    "base_channels": 8,
    "channel_mult": (1, 2, 2),
    "attention_resolutions": (),
    "head_channels": 8,
    "norm_groups": 4,
    "rrdb_nf": 8,
    "rrdb_gc": 4,
}

BACKBONE: dict[str, dict[str, Any]] = {"tiny": TINY, "small": SMALL, "paper": PAPER}

# Training: the seed paper's protocol with guided-diffusion's EMA; for the CPU, AdamW at 1e-3 with a
# short warm-up and cosine decay, and an EMA with a ~100-step horizon, since a CPU run is only a few
# hundred steps long. At 2e-3 training stalled for some seeds (loss flat at 0.3 for ten epochs, the
# image ignored at high noise); infection Dice at 2e-3 -> 1e-3 (benchmarks/score_formulations.py),
# seeds 0 / 1: diff-add 0.76 / 0.66 -> 0.80 / 0.74, sde-add 0.51 / 0.65 -> 0.80 / 0.73; ncsn-add
# seeds 0 / 1 / 2: 0.67 / 0.60 / 0.23 -> 0.66 / 0.70 / 0.68. The small budget is 480 optimiser steps
# (16 epochs of the phantom's 480 training images at batch 16): what the main job's 10-minute budget
# allows beside the U-Net, and the same number of steps on a dataset of any size. The tiny budget, 24 steps
# (about 3 s on two cores at 64x64), is for tests and a first look: diff-add reaches Dice 0.87 on phantom
# lungs with it (40 steps: 0.92), nothing to compare models by.
_CPU_TRAINING: dict[str, Any] = {"batch_size": 16, "lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.02,
                                 "grad_clip": 1.0}
TRAINING: dict[str, dict[str, Any]] = {
    "tiny": {**_CPU_TRAINING, "steps": 24, "batch_size": 8, "ema_decay": 0.0},
    "small": {**_CPU_TRAINING, "steps": 480, "ema_decay": 0.99},
    "paper": {**SEED_PAPER_TRAINING, "ema_decay": 0.9999},
}


def from_factory_input(cls: type[T], values: Mapping[str, Any]) -> T:
    """The fields of the dataclass `cls` from a factory's input (other keys, such as a prefix variant, are
    not its); a missing one is a clear error."""
    missing = [f.name for f in fields(cls) if f.name not in values]
    if missing:
        raise SegbenchError(f"model hyperparameters lack {missing[0]!r}")
    return cls(**{f.name: values[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class BackboneHyperparameters:
    """Backbone hyperparameters (NoiseUNet + RRDB condition encoder), validated on creation.

    Shared by every model family built on this backbone (diffusion, score-based); a
    subclass adds its formulation's fields and checks. `image_size` is the run's.
    """

    image_size: int
    base_channels: int
    channel_mult: tuple[int, ...]
    num_res_blocks: int
    attention_resolutions: tuple[int, ...]
    head_channels: int
    norm_groups: int
    dropout: float
    rrdb_blocks: int
    rrdb_nf: int
    rrdb_gc: int
    cond_channels: int
    gradient_checkpointing: bool
    channels_last: bool

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        return from_factory_input(cls, values)

    @property
    def level_resolutions(self) -> tuple[int, ...]:
        """Feature-map size at each U-Net level, e.g. (64, 32, 16, 8)."""
        return tuple(self.image_size // 2**level for level in range(len(self.channel_mult)))

    def __post_init__(self) -> None:
        for name in ("image_size", "base_channels", "num_res_blocks", "head_channels", "norm_groups",
                     "rrdb_nf", "rrdb_gc", "cond_channels"):
            if getattr(self, name) < 1:
                raise SegbenchError(f"{name}={getattr(self, name)} must be a positive integer")
        if self.rrdb_blocks < 0:
            raise SegbenchError(f"rrdb_blocks={self.rrdb_blocks} must be 0 or more")
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise SegbenchError(f"channel_mult={self.channel_mult} must be a non-empty list of positive integers")
        factor = 2 ** (len(self.channel_mult) - 1)
        if self.image_size % factor:
            raise SegbenchError(
                f"image_size={self.image_size} cannot be halved {len(self.channel_mult) - 1} times "
                f"(channel_mult={self.channel_mult}); use a multiple of {factor}"
            )
        levels = self.level_resolutions
        missing = [r for r in self.attention_resolutions if r not in levels]
        if missing:
            nearest = sorted({min(levels, key=lambda level: abs(level - r)) for r in self.attention_resolutions},
                             reverse=True)
            raise HyperparameterError(
                "attention_resolutions",
                f"attention_resolutions contains {missing[0]}, which no U-Net level has; "
                f"level resolutions for image_size={self.image_size}: {', '.join(map(str, levels))}",
                fix=",".join(map(str, nearest)))
        if self.base_channels % self.norm_groups:
            raise SegbenchError(
                f"base_channels={self.base_channels} is not divisible by norm_groups={self.norm_groups} (GroupNorm)"
            )
        # the middle block always has attention, at the last level's width
        attention_widths = {self.base_channels * self.channel_mult[-1]} | {
            self.base_channels * mult
            for mult, resolution in zip(self.channel_mult, levels)
            if resolution in self.attention_resolutions
        }
        for width in sorted(attention_widths):
            if width % self.head_channels:
                raise SegbenchError(
                    f"head_channels={self.head_channels} does not divide the attention width {width}; "
                    f"choose a divisor of {width}"
                )
        if not 0 <= self.dropout < 1:
            raise SegbenchError(f"dropout={self.dropout} must be in [0, 1)")
