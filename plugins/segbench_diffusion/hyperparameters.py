"""Hyperparameters of the diffusion segmenters diff-add and diff-concat (and diff-concat's Wolleb et al.
configuration): presets, validation, summaries.

The backbone, the DDPM head and their training presets are segbench_backbone's, shared with the score-based
models and MedSegDiff. No torch import here, so registering the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segbench import Preset
from segbench.presets import seed_paper_task_layers
from segbench_backbone.ddpm_hyperparameters import (
    DDPM_HEAD,
    LOSSES,
    PAPER_HEAD,
    PREDICTIONS,
    SAMPLERS,
    DDPMHyperparameters,
)
from segbench_backbone.hyperparameters import BACKBONE, TRAINING

__all__ = ["LOSSES", "PREDICTIONS", "SAMPLERS", "PRESETS", "WOLLEB_PRESETS", "DiffusionHyperparameters"]

# The head presets (paper: the seed paper's eps/MSE, DDIM 50; small: x0-prediction, BCE + Dice, DDIM 10) and
# the reasons for them are segbench_backbone.ddpm_hyperparameters'.
PAPER: dict[str, Any] = DDPM_HEAD["paper"]
SMALL: dict[str, Any] = DDPM_HEAD["small"]
TINY: dict[str, Any] = DDPM_HEAD["tiny"]

PRESETS: dict[str, Preset] = {
    **{name: Preset({**BACKBONE[name], **head}, TRAINING[name]) for name, head in DDPM_HEAD.items()},
    **seed_paper_task_layers(),
}

# Wolleb et al. 2021 ("Diffusion Models for Implicit Image Segmentation Ensembles", MIDL 2022) as a named
# configuration of diff-concat: the image concatenated with the noisy mask, eps-prediction and L_simple
# (MSE), 1000 linear steps, sampled with all 1000 ancestral steps (Ho et al. Algorithm 2) and x0_hat
# clipped to [-1, 1] (guided-diffusion's clip_denoised, which their sampling script keeps); DDIM 50 is the
# option (`--set diff-concat-wolleb.sampler=ddim`). The ensemble of 5 whose per-pixel variance is the
# uncertainty map is the run's `--ensemble 5`: the engine averages the members' probabilities, thresholds
# at 0.5 and keeps the per-pixel std (the square root of Wolleb's variance map, the same ranking).
# Departures: the image reaches the U-Net through diff-concat's RRDB encoder (16 channels) rather than as
# raw channels, the U-Net is the seed paper's (not guided-diffusion's 128-channel one with learn_sigma),
# and the small/tiny presets, sized for a CPU, sample with DDIM (50 and 2 steps) instead of 1000 steps.
WOLLEB_PAPER: dict[str, Any] = {**PAPER_HEAD, "sampler": "ddpm", "clip_x0": True}
WOLLEB_SMALL: dict[str, Any] = {**PAPER_HEAD, "sampler": "ddim", "sampling_steps": 50, "clip_x0": True}
WOLLEB_TINY: dict[str, Any] = {**WOLLEB_SMALL, "sampling_steps": 2}
WOLLEB_ENSEMBLE = 5

WOLLEB_PRESETS: dict[str, Preset] = {
    **{name: Preset({**BACKBONE[name], **head}, TRAINING[name])
       for name, head in (("tiny", WOLLEB_TINY), ("small", WOLLEB_SMALL), ("paper", WOLLEB_PAPER))},
    **seed_paper_task_layers(),
}


@dataclass(frozen=True)
class DiffusionHyperparameters(DDPMHyperparameters):
    """Network, schedule and sampler hyperparameters of diff-add / diff-concat (validated on creation)."""


def diffusion_summary(conditioning: str):
    """`segbench info`'s line for diff-add / diff-concat: formulation, sampler, network evaluations per mask."""

    def summary(params: Mapping[str, Any]) -> str:
        hparams = DiffusionHyperparameters.from_mapping({"image_size": 64, **params})
        return f"SegDiff-style conditional {hparams.head_summary()}; RRDB image condition {conditioning} the noisy mask"

    return summary


def wolleb_summary(params: Mapping[str, Any]) -> str:
    """`segbench info`'s line for diff-concat-wolleb: formulation, sampler, network evaluations, the ensemble."""
    hparams = DiffusionHyperparameters.from_mapping({"image_size": 64, **params})
    return (f"Wolleb et al. 2021 on diff-concat: {hparams.head_summary()}; the recipe evaluates an ensemble of "
            f"{WOLLEB_ENSEMBLE} (run with --ensemble {WOLLEB_ENSEMBLE}: mean thresholded at 0.5, per-pixel std as "
            f"uncertainty), {WOLLEB_ENSEMBLE * hparams.network_evaluations} network evaluations per image")
