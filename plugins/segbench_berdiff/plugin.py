"""Registers berdiff (BerDiff: conditional Bernoulli diffusion for binary masks)."""

from __future__ import annotations

from typing import Any

from segbench import ModelSpec, hookimpl
from segbench_berdiff.hyperparameters import (
    PRESETS,
    BerDiffHyperparameters,
    berdiff_network_evaluations,
    berdiff_summary,
)

REFERENCE = ("Chen, Wang & Shan 2023, BerDiff: Conditional Bernoulli Diffusion Model for Medical Image "
             "Segmentation (MICCAI 2023, arXiv:2304.04429)")


# torch and the network are imported on first use, so listing plugins stays fast
def _berdiff(values: dict[str, Any]) -> Any:
    from segbench_berdiff.segmenter import berdiff

    return berdiff(values)


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="berdiff",
        factory=_berdiff,
        family="diffusion",
        presets=PRESETS,
        schema=BerDiffHyperparameters,
        description="BerDiff: Bernoulli diffusion on the binary mask, KL + BCE; RRDB image condition added (as diff-add)",
        reference=REFERENCE,
        summary=berdiff_summary,
        network_evaluations=berdiff_network_evaluations,
    ))
