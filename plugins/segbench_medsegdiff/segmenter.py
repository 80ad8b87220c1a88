"""medsegdiff: MedSegDiff V1's network under the shared DDPM head (segbench_backbone.ddpm): the same
schedule, losses and samplers (DDIM, ancestral DDPM, DPM-Solver++ with per-sample generators) as diff-add.

Unlike diff-add's condition, the image encoder depends on x_t (dynamic conditional encoding), so it runs at
every sampling step; only the RRDB stem is computed once per image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segbench_backbone.ddpm import DDPMSegmenter
from segbench_medsegdiff.hyperparameters import MedSegDiffHyperparameters
from segbench_medsegdiff.network import MedSegDiffUNet


class MedSegDiffSegmenter(DDPMSegmenter, MedSegDiffUNet):
    """MedSegDiff V1 as a segbench Segmenter: training_loss(images, masks), predict(images, seeds)."""

    def __init__(self, hparams: MedSegDiffHyperparameters) -> None:
        MedSegDiffUNet.__init__(self, hparams)
        self.init_schedule(hparams)


def medsegdiff(values: Mapping[str, Any]) -> MedSegDiffSegmenter:
    """Factory of `medsegdiff`, from the hyperparameters and image_size."""
    return MedSegDiffSegmenter(MedSegDiffHyperparameters.from_mapping(values))
