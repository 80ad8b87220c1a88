"""Per-preset hyperparameters (for the factories) and training settings (for the engine), and the typed
hyperparameters each model declares.

`small` is the CPU default: the U-Net reaches per-image Dice >= 0.95 (lung) and >= 0.80 (infection)
on the 480-image cxr-phantom train split at 64x64 in about two minutes on two cores, in 300 optimiser
steps (10 epochs of 30 batches of 16 there; the same 300 steps on a dataset of any size). `tiny` is for
tests and a first look: 60 steps of a 0.5 M-parameter U-Net, about 1.5 s of training there. `paper`
records the seed paper's setup for GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segbench import Preset
from segbench.presets import SEED_PAPER_TRAINING, seed_paper_task_layers


@dataclass(frozen=True)
class UNetHyperparameters:
    """unet and res50attunet: the encoder (an smp encoder name for unet, "tu-<timm model>" included; a timm
    model for res50attunet), a local weights file (None: random init), NHWC layout, decoder widths
    (deepest first)."""

    encoder: str
    weights_path: str | None
    channels_last: bool
    decoder_channels: tuple[int, ...]


@dataclass(frozen=True)
class SMPHyperparameters:
    """smp:<Arch>:<encoder>: as the U-Nets, with the encoder depth; None keeps smp's default for the arch.
    decoder_channels is a tuple of widths for most archs and one width for some (DeepLabV3), so any literal."""

    weights_path: str | None
    channels_last: bool
    encoder_depth: int | None
    decoder_channels: Any


_TRAINING = {"batch_size": 16, "lr": 1e-3, "weight_decay": 1e-4, "warmup_fraction": 0.05, "grad_clip": 1.0,
             "ema_decay": 0.0}
TRAINING: dict[str, dict[str, Any]] = {
    "tiny": {**_TRAINING, "steps": 60, "batch_size": 4},
    "small": {**_TRAINING, "steps": 300},
    "paper": {**_TRAINING, **SEED_PAPER_TRAINING},
}


# unet-pretrained's "pretrain" stage: the budget of ddpm-features' "ddpm" stage at each preset (its steps or
# epochs and batch size over the same images view: tiny 24 x 8, small 1,200 x 16, paper 100 epochs x 512), with
# the U-Net's optimiser. Set per stage, so the paper/infection layer's 2,400 epochs reach "finetune" only, as
# they do not reach the DDPM stage; tests/unets/test_pretrained.py holds the two budgets equal.
PRETRAIN: dict[str, dict[str, Any]] = {
    "tiny": {**TRAINING["tiny"], "steps": 24, "batch_size": 8},
    "small": {**TRAINING["small"], "steps": 1200, "batch_size": 16},
    "paper": {**TRAINING["paper"]},
}


def presets(tiny: dict[str, Any], small: dict[str, Any], paper: dict[str, Any],
            stages: dict[str, dict[str, dict[str, Any]]] | None = None) -> dict[str, Preset]:
    """Each preset's model hyperparameters with its training settings, and per stage name (a model in
    stages) the stage's settings at each preset."""
    models = {"tiny": tiny, "small": small, "paper": paper}
    per_stage = {name: {stage: settings[name] for stage, settings in (stages or {}).items()} for name in models}
    return {**{name: Preset(model, TRAINING[name], per_stage[name]) for name, model in models.items()},
            **seed_paper_task_layers()}


_COMMON = {"weights_path": None, "channels_last": True}

# tiny: timm's 0.49 M-parameter test ResNet and a narrow decoder; a training step (64x64, batch 4, 2 CPU
# cores) takes 25 ms instead of 235 ms with ResNet-34 (21.6 M), and 60 steps reach Dice 0.93 on phantom lungs.
# NCHW: with one CPU thread (a torchrun worker's) the NHWC kernels for its small channel counts made
# res50attunet's result for a sample depend on its position in a batch of 3; NCHW costs 10-14 % here.
_TINY = {**_COMMON, "channels_last": False, "decoder_channels": (32, 16, 16, 8, 8)}
UNET = presets(
    tiny={"encoder": "tu-test_resnet", **_TINY},
    small={"encoder": "resnet34", **_COMMON, "decoder_channels": (256, 128, 64, 32, 16)},
    paper={"encoder": "resnet34", **_COMMON, "decoder_channels": (256, 128, 64, 32, 16)},
)

# The same U-Net per preset, pretrained on every training image, then fine-tuned as `unet` trains.
UNET_PRETRAINED = presets(*(UNET[name].model for name in ("tiny", "small", "paper")),
                          stages={"pretrain": PRETRAIN, "finetune": {name: {} for name in TRAINING}})

RES50ATTUNET = presets(
    tiny={"encoder": "test_resnet", **_TINY},
    small={"encoder": "resnet50", **_COMMON, "decoder_channels": (256, 128, 64, 32, 16)},
    paper={"encoder": "resnet50", **_COMMON, "decoder_channels": (256, 128, 64, 32, 16)},
)

# None means smp's default for the chosen architecture; every arch accepts that.
_SMP = {**_COMMON, "encoder_depth": None, "decoder_channels": None}
SMP = presets(tiny=_SMP, small=_SMP, paper=_SMP)
