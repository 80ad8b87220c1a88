"""Registers berdiff (BerDiff: conditional Bernoulli diffusion for binary masks) and its direct control
berdiff:direct."""

from __future__ import annotations


from segbench import ModelSpec, deferred, direct_control, hookimpl
from segbench_berdiff.hyperparameters import (
    PRESETS,
    BerDiffHyperparameters,
    berdiff_network_evaluations,
    berdiff_summary,
)

REFERENCE = ("Chen, Wang & Shan 2023, BerDiff: Conditional Bernoulli Diffusion Model for Medical Image "
             "Segmentation (MICCAI 2023, arXiv:2304.04429)")


@hookimpl
def register_models(register):
    spec = ModelSpec(
        name="berdiff",
        factory=deferred("segbench_berdiff.segmenter:berdiff"),
        family="diffusion",
        presets=PRESETS,
        schema=BerDiffHyperparameters,
        description="BerDiff: Bernoulli diffusion on the binary mask, KL + BCE; RRDB image condition added (as diff-add)",
        reference=REFERENCE,
        summary=berdiff_summary,
        network_evaluations=berdiff_network_evaluations,
    )
    register(spec)
    register(direct_control(spec))
