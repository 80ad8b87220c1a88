"""Registers medsegdiff (MedSegDiff V1) and its direct control medsegdiff:direct. V2 (SS-Former) is left out: its
public code does not contain it."""

from __future__ import annotations


from segbench import ModelSpec, deferred, direct_control, hookimpl
from segbench_backbone.ddpm_hyperparameters import ddpm_network_evaluations
from segbench_medsegdiff.hyperparameters import PRESETS, MedSegDiffHyperparameters, medsegdiff_summary

REFERENCE = ("Wu et al. 2023, MedSegDiff: Medical Image Segmentation with Diffusion Probabilistic Model "
             "(MIDL 2023, arXiv:2211.00611)")


@hookimpl
def register_models(register):
    spec = ModelSpec(
        name="medsegdiff",
        factory=deferred("segbench_medsegdiff.segmenter:medsegdiff"),
        family="diffusion",
        presets=PRESETS,
        schema=MedSegDiffHyperparameters,
        description="MedSegDiff V1: DDPM on the mask; image encoder modulated per scale by the FF-Parsed noisy-mask features",
        reference=REFERENCE,
        summary=medsegdiff_summary,
        network_evaluations=ddpm_network_evaluations(MedSegDiffHyperparameters),
        fusion="staple",  # Wu et al. fuse their 5 sampled masks with STAPLE
    )
    register(spec)
    register(direct_control(spec))
