"""anomaly-ddpm (Pinaya et al. 2022, with AnoDDPM-style reconstruction): an unconditional X-ray DDPM
trained on healthy images only; what it cannot reconstruct is the anomaly.

Stage "ddpm" trains `ddpm` on the healthy training images (`ddpm_loss`, no masks); stage "calibration"
fits the score-to-probability map (`calibrate`) on the `anomaly_scores` of healthy validation images,
which the engine computes as it predicts (same batches and precision), kept in persistent buffers so
checkpoints carry it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from segbench import Prediction, SegbenchError
from segbench.noise import sample_generators
from segbench_unconditional.anomaly import fit_threshold, residual_score, score_probability
from segbench_unconditional.hyperparameters import AnomalyHyperparameters
from segbench_unconditional.network import XrayDDPM


class AnomalyDDPMSegmenter(nn.Module):
    """X-ray DDPM of healthy images (`ddpm`) + the calibration buffers; implements segbench's Segmenter."""

    def __init__(self, hparams: AnomalyHyperparameters) -> None:
        super().__init__()
        self.hparams = hparams
        self.ddpm = XrayDDPM(hparams)
        # Fitted by `calibrate`; NaN until then. Persistent: a checkpoint restores the calibration.
        self.register_buffer("threshold", torch.tensor(float("nan")))
        self.register_buffer("scale", torch.tensor(float("nan")))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AnomalyDDPMSegmenter:
        return cls(AnomalyHyperparameters.from_mapping(values))

    def ddpm_loss(self, images: Tensor) -> Tensor:
        """Stage "ddpm" (view "healthy"): the DDPM's L_simple on a batch of healthy images."""
        return self.ddpm.loss(images)

    @torch.no_grad()
    def anomaly_scores(self, images: Tensor, seeds: Tensor) -> Tensor:
        """Anomaly map (B, 1, S, S) >= 0: the smoothed mean residual of `reconstructions` reconstructions per
        start step, each noised with the next draw of the sample's generator (seeded with seeds[i])."""
        generators = sample_generators(seeds)
        reconstructions = [self.ddpm.reconstruct(images, t, self.hparams.reconstruction_steps, generators)
                           for t in self.hparams.start_steps for _ in range(self.hparams.reconstructions)]
        with torch.autocast(images.device.type, enabled=False):  # float32 scores under any network precision
            return residual_score(images, reconstructions, self.hparams.smoothing_sigma)

    @torch.no_grad()
    def calibrate(self, scores: Tensor) -> None:
        """Stage "calibration" (view "healthy", split "val", a fit on `anomaly_scores`): the threshold at the
        healthy pixels' `false_positive_rate` and the scale of the probability map, from the scores of every
        healthy validation image (N, 1, S, S)."""
        tau, scale = fit_threshold(scores, self.hparams.false_positive_rate)
        self.threshold.fill_(tau)
        self.scale.fill_(scale)

    @property
    def calibrated(self) -> bool:
        return bool(torch.isfinite(self.threshold)) and bool(torch.isfinite(self.scale))

    @torch.no_grad()
    def predict(self, images: Tensor, seeds: Tensor) -> Prediction:
        """Anomaly probabilities (B, 1, S, S): >= 0.5 exactly where the score reaches the healthy threshold."""
        if not self.calibrated:
            raise SegbenchError("anomaly-ddpm is not calibrated: its 'calibration' stage (calibrate on healthy "
                                "validation images) must run before predict")
        return Prediction(score_probability(self.anomaly_scores(images, seeds), self.threshold, self.scale), None)

    def synthesize(self, seeds: Tensor) -> Tensor:
        """One synthetic (healthy) X-ray per seed from the DDPM: float32 (B, 1, S, S) in [0, 1]."""
        return self.ddpm.synthesize(seeds)


def anomaly_ddpm(values: Mapping[str, Any]) -> AnomalyDDPMSegmenter:
    """Factory of `anomaly-ddpm`."""
    return AnomalyDDPMSegmenter.from_mapping(values)
