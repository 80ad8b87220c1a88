"""Registers the built-in score-based segmenters ncsn-add, ncsn-concat, sde-add and sde-concat."""

from __future__ import annotations


from segbench import ModelSpec, deferred, hookimpl
from segbench_score.hyperparameters import (
    NCSN_PRESETS,
    SDE_PRESETS,
    NCSNHyperparameters,
    SDEHyperparameters,
    ncsn_evaluations,
    ncsn_summary,
    sde_evaluations,
    sde_summary,
)

NCSN_REFERENCE = (
    "Song & Ermon 2019, Generative Modeling by Estimating Gradients of the Data Distribution (arXiv:1907.05600); "
    "Song & Ermon 2020, Improved Techniques for Training Score-Based Generative Models (arXiv:2006.09011)"
)
SDE_REFERENCE = (
    "Song et al. 2021, Score-Based Generative Modeling through Stochastic Differential Equations (arXiv:2011.13456)"
)


@hookimpl
def register_models(register):
    for conditioning, verb in (("add", "added to"), ("concat", "concatenated with")):
        register(ModelSpec(
            name=f"ncsn-{conditioning}",
            factory=deferred(f"segbench_score.segmenter:ncsn_{conditioning}"),
            family="diffusion",
            presets=NCSN_PRESETS,
            schema=NCSNHyperparameters,
            description=f"NCSN on the mask, annealed Langevin dynamics; RRDB image condition {verb} the noisy mask",
            reference=NCSN_REFERENCE,
            summary=ncsn_summary,
            network_evaluations=ncsn_evaluations,
        ))
        register(ModelSpec(
            name=f"sde-{conditioning}",
            factory=deferred(f"segbench_score.segmenter:sde_{conditioning}"),
            family="diffusion",
            presets=SDE_PRESETS,
            schema=SDEHyperparameters,
            description=f"Score-SDE (VP/VE) on the mask, reverse-SDE or ODE sampler; RRDB image condition {verb} the noisy mask",
            reference=SDE_REFERENCE,
            summary=sde_summary,
            network_evaluations=sde_evaluations,
        ))
