"""Registers the built-in diffusion segmenters diff-add and diff-concat."""

from __future__ import annotations

from typing import Any

from segbench import ModelSpec, hookimpl
from segbench_diffusion.hyperparameters import PRESETS, DiffusionHyperparameters

REFERENCE = "Amit et al. 2021, SegDiff: Image Segmentation with Diffusion Probabilistic Models (arXiv:2112.00390)"


# torch and the networks are imported on first use, so listing plugins stays fast
def _diff_add(values: dict[str, Any]) -> Any:
    from segbench_diffusion.segmenter import diff_add

    return diff_add(values)


def _diff_concat(values: dict[str, Any]) -> Any:
    from segbench_diffusion.segmenter import diff_concat

    return diff_concat(values)


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="diff-add",
        factory=_diff_add,
        family="diffusion",
        presets=PRESETS,
        schema=DiffusionHyperparameters,
        description="Conditional DDPM/DDIM on the mask; RRDB image condition added to the noisy mask",
        reference=REFERENCE,
    ))
    register(ModelSpec(
        name="diff-concat",
        factory=_diff_concat,
        family="diffusion",
        presets=PRESETS,
        schema=DiffusionHyperparameters,
        description="Conditional DDPM/DDIM on the mask; RRDB image condition concatenated with the noisy mask",
        reference=REFERENCE,
    ))
