"""Hyperparameters of medsegdiff (MedSegDiff V1, Wu et al. 2023, arXiv:2211.00611): presets, validation, summary.

The DDPM head (schedule, prediction, loss, samplers), the RRDB stem and the U-Net building blocks are
segbench_backbone's, shared with diff-add, so the two differ only in how the image reaches the U-Net.
No torch import here, so registering the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segbench import Preset, SegbenchError
from segbench.presets import seed_paper_task_layers
from segbench_backbone.ddpm_hyperparameters import DDPM_HEAD, DDPMHyperparameters
from segbench_backbone.hyperparameters import BACKBONE, TRAINING

# The paper's evaluation: the mean of 5 sampled masks; in segbench the run's `--ensemble 5`.
PAPER_ENSEMBLE = 5

# MedSegDiff-B (the repository's recommended settings: --num_channels 128 --num_res_blocks 2 --num_heads 1
# --attention_resolutions 16 --diffusion_steps 1000 --noise_schedule linear), mapped onto 64x64 the way their
# script_util maps any size: channel_mult (1, 2, 3, 4) for 64 px, and attention "16" at the downsampling rate
# image_size // 16, i.e. on the 16x16 feature maps, as on their 256 px input.
# Departures: 4 heads of 128 channels (3 at 16x16) instead of one head (segbench's attention blocks share one
# head size); learn_sigma dropped (eps-prediction with L_simple; DDIM and DPM-Solver++ do not use a learned
# variance); the image enters through the project's RRDB stem; DDIM 50 steps instead of the paper's 1000
# ancestral steps (`--set medsegdiff.sampler=ddpm`; their README's fast setting is `sampler=dpmpp2m` with 20
# steps). Training is the seed paper's protocol, like every built-in model's paper preset, not their
# AdamW 1e-4 at batch 8 for ~100,000 steps.
PAPER_NETWORK: dict[str, Any] = {
    **BACKBONE["paper"],
    "base_channels": 128,
    "channel_mult": (1, 2, 3, 4),
    "num_res_blocks": 2,
    "attention_resolutions": (16,),
    "head_channels": 128,
}
_MEDSEGDIFF: dict[str, Any] = {"dynamic_encoding": True, "ff_parser": True}

# small and tiny: diff-add's backbone and head (x0-prediction, BCE + soft Dice, DDIM 10 / 2 steps; the reasons
# are in segbench_backbone.ddpm_hyperparameters), so that medsegdiff and diff-add differ in the conditioning only.
PRESETS: dict[str, Preset] = {
    "tiny": Preset({**BACKBONE["tiny"], **DDPM_HEAD["tiny"], **_MEDSEGDIFF}, TRAINING["tiny"]),
    "small": Preset({**BACKBONE["small"], **DDPM_HEAD["small"], **_MEDSEGDIFF}, TRAINING["small"]),
    "paper": Preset({**PAPER_NETWORK, **DDPM_HEAD["paper"], **_MEDSEGDIFF}, TRAINING["paper"]),
    **seed_paper_task_layers(),
}


@dataclass(frozen=True)
class MedSegDiffHyperparameters(DDPMHyperparameters):
    """DDPM head and backbone, plus the two MedSegDiff components (each can be switched off for an ablation):
    dynamic_encoding (the image features modulated by the noisy-mask features at every scale, Eq. 4) and
    ff_parser (those mask features filtered in the Fourier domain first, Eqs. 5-7)."""

    dynamic_encoding: bool
    ff_parser: bool

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ff_parser and not self.dynamic_encoding:
            raise SegbenchError("ff_parser=True needs dynamic_encoding=True (it filters the mask features the "
                                "encoding fuses); set both false for the plain sum of the two encoders")

    def fusion_shapes(self) -> list[tuple[int, int, int]]:
        """(channels, size, size) of the features fused at each scale, the deepest last."""
        return [(self.base_channels * mult, size, size) for mult, size in zip(self.channel_mult, self.level_resolutions)]

    def summary(self) -> str:
        shapes = self.fusion_shapes()
        if self.dynamic_encoding:
            filtered = "FF-Parser(m_x)" if self.ff_parser else "m_x"
            parser = (", FF-Parser weights (C, H, W/2+1) " + ", ".join(f"({c}, {h}, {w // 2 + 1})" for c, h, w in shapes)
                      if self.ff_parser else ", no FF-Parser")
            conditioning = (f"image encoder modulated at {len(shapes)} scales by the noisy-mask encoder, "
                            f"m_I <- (LN(m_I) * LN({filtered})) * m_I{parser}")
        else:
            conditioning = "image and noisy-mask encoders summed at the bottleneck only (no dynamic encoding)"
        return (f"MedSegDiff V1: {self.head_summary()}; {conditioning}; the decoder reads E_I + E_x (Eq. 3); "
                f"the paper evaluates an ensemble of {PAPER_ENSEMBLE} (--ensemble {PAPER_ENSEMBLE})")


def medsegdiff_summary(params: Mapping[str, Any]) -> str:
    """`segbench info`'s line for medsegdiff: formulation, sampler, network evaluations per mask, conditioning."""
    return MedSegDiffHyperparameters.from_mapping({"image_size": 64, **params}).summary()
