"""Per-preset hyperparameters: model keys for the factories, training keys for the engine.

`small` is the CPU default: the U-Net reaches per-image Dice >= 0.95 (lung) and
>= 0.80 (infection) on the 480-image cxr-phantom train split at 64x64 in about
two minutes on two cores. `paper` records the seed paper's setup for GPUs.
"""

from __future__ import annotations

from typing import Any

SMALL_TRAINING = {
    "epochs": 10,
    "batch_size": 16,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "warmup_fraction": 0.05,
    "grad_clip": 1.0,
    "ema_decay": 0.0,
}
TINY_TRAINING = {**SMALL_TRAINING, "epochs": 2, "batch_size": 4}
PAPER_TRAINING = {**SMALL_TRAINING, "epochs": 100, "batch_size": 512, "lr": 3e-3}
# The seed paper trains infection segmenters far longer than lung ones.
PAPER_INFECTION = {"epochs": 2400}


def presets(tiny: dict[str, Any], small: dict[str, Any], paper: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Join each preset's model keys with its training keys."""
    return {
        "tiny": {**tiny, **TINY_TRAINING},
        "small": {**small, **SMALL_TRAINING},
        "paper": {**paper, **PAPER_TRAINING},
        "paper/infection": PAPER_INFECTION,
    }


_COMMON = {"weights_path": None, "channels_last": True}

UNET = presets(
    # Narrow decoder: a forward+backward at 32x32, batch 2 takes ~15 ms instead of ~80.
    tiny={**_COMMON, "decoder_channels": (32, 16, 16, 8, 8)},
    small={**_COMMON, "decoder_channels": (256, 128, 64, 32, 16)},
    paper={**_COMMON, "decoder_channels": (256, 128, 64, 32, 16)},
)

RES50ATTUNET = presets(
    tiny={**_COMMON, "decoder_channels": (32, 16, 16, 8, 8)},
    small={**_COMMON, "decoder_channels": (256, 128, 64, 32, 16)},
    paper={**_COMMON, "decoder_channels": (256, 128, 64, 32, 16)},
)

# None means smp's default for the chosen architecture; every arch accepts that.
_SMP = {**_COMMON, "encoder_depth": None, "decoder_channels": None}
SMP = presets(tiny=_SMP, small=_SMP, paper=_SMP)
