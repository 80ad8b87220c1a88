"""Registers the built-in diffusion segmenters diff-add and diff-concat with their direct controls (diff-add:direct,
diff-concat:direct), and diff-concat's Wolleb et al. configuration (diff-concat's network: no control of its own)."""

from __future__ import annotations

from segbench import ModelSpec, deferred, direct_control, hookimpl
from segbench_backbone.ddpm_hyperparameters import ddpm_network_evaluations
from segbench_diffusion.hyperparameters import (
    PRESETS,
    WOLLEB_PRESETS,
    DiffusionHyperparameters,
    diffusion_summary,
    wolleb_summary,
)

REFERENCE = "Amit et al. 2021, SegDiff: Image Segmentation with Diffusion Probabilistic Models (arXiv:2112.00390)"
WOLLEB_REFERENCE = (
    "Wolleb et al. 2021, Diffusion Models for Implicit Image Segmentation Ensembles (MIDL 2022, arXiv:2112.03145)"
)


@hookimpl
def register_models(register):
    diff_add = ModelSpec(
        name="diff-add",
        factory=deferred("segbench_diffusion.segmenter:diff_add"),
        family="diffusion",
        presets=PRESETS,
        schema=DiffusionHyperparameters,
        description="Conditional DDPM/DDIM on the mask; RRDB image condition added to the noisy mask",
        reference=REFERENCE,
        summary=diffusion_summary("added to"),
        network_evaluations=ddpm_network_evaluations(DiffusionHyperparameters),
    )
    diff_concat = ModelSpec(
        name="diff-concat",
        factory=deferred("segbench_diffusion.segmenter:diff_concat"),
        family="diffusion",
        presets=PRESETS,
        schema=DiffusionHyperparameters,
        description="Conditional DDPM/DDIM on the mask; RRDB image condition concatenated with the noisy mask",
        reference=REFERENCE,
        summary=diffusion_summary("concatenated with"),
        network_evaluations=ddpm_network_evaluations(DiffusionHyperparameters),
    )
    for spec in (diff_add, diff_concat):
        register(spec)
        register(direct_control(spec))
    # The same network and head as diff-concat; only the presets differ (the recipe is a configuration).
    register(ModelSpec(
        name="diff-concat-wolleb",
        factory=deferred("segbench_diffusion.segmenter:diff_concat"),
        family="diffusion",
        presets=WOLLEB_PRESETS,
        schema=DiffusionHyperparameters,
        description="Wolleb et al.'s recipe on diff-concat: eps-prediction, 1000 ancestral steps, run with --ensemble 5",
        reference=WOLLEB_REFERENCE,
        summary=wolleb_summary,
        network_evaluations=ddpm_network_evaluations(DiffusionHyperparameters),
    ))
