"""anomaly-ddpm: the partial-diffusion residual baseline of Pinaya et al. 2022, AnoDDPM (Wyatt et al. 2022)
and AutoDDPM (Bercea et al. 2023). An unconditional X-ray DDPM trained on healthy images only noises an image
to t0 and reconstructs it; the smoothed |x - x_hat| is the anomaly score, thresholded at 5 % false positives
on healthy validation pixels. Gaussian noise and DDIM by default; AnoDDPM's simplex noise (noise="simplex",
in training and in the partial noising) and ancestral steps (reconstruction_sampler="ddpm") are settings.
Left out: Pinaya et al.'s VQ-VAE latent model and masked inpainting, AutoDDPM's mask-stitch-resample.

Stage "ddpm" trains `ddpm` on the healthy training images (`ddpm_loss`, no masks); stage "calibration"
fits the score-to-probability map (`calibrate`) on the `anomaly_scores` of healthy validation images,
which the engine computes as it predicts (same batches and precision), kept in persistent buffers so
checkpoints carry it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from segbench import Prediction, SegbenchError
from segbench.noise import randn_per_sample, sample_generators
from segbench_unconditional.anomaly import fit_threshold, residual_score, score_probability
from segbench_unconditional.hyperparameters import AnomalyHyperparameters
from segbench_unconditional.network import NoiseDraw, XrayDDPM
from segbench_unconditional.simplex import simplex_per_sample


class AnomalyDDPMSegmenter(nn.Module):
    """X-ray DDPM of healthy images (`ddpm`) + the calibration buffers; implements segbench's Segmenter."""

    def __init__(self, hparams: AnomalyHyperparameters) -> None:
        super().__init__()
        self.hparams = hparams
        self.ddpm = XrayDDPM(hparams)
        self.draw: NoiseDraw = (randn_per_sample if hparams.noise == "gaussian" else partial(
            simplex_per_sample, octaves=hparams.simplex_octaves, persistence=hparams.simplex_persistence,
            frequency=hparams.simplex_frequency))
        # Fitted by `calibrate`; NaN until then. Persistent: a checkpoint restores the calibration.
        self.register_buffer("threshold", torch.tensor(float("nan")))
        self.register_buffer("scale", torch.tensor(float("nan")))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AnomalyDDPMSegmenter:
        return cls(AnomalyHyperparameters.from_mapping(values))

    def ddpm_loss(self, images: Tensor) -> Tensor:
        """Stage "ddpm" (view "healthy"): the DDPM's L_simple on a batch of healthy images, its noise the
        model's `noise` (simplex noise: one field per image from the global CPU generator, which the engine seeds)."""
        if self.hparams.noise == "gaussian":
            return self.ddpm.loss(images)
        return self.ddpm.loss(images, lambda x: self.draw(x.shape[1:], [torch.default_generator] * len(x), x.device))

    @torch.no_grad()
    def anomaly_scores(self, images: Tensor, seeds: Tensor) -> Tensor:
        """Anomaly map (B, 1, S, S) >= 0: the smoothed mean residual of `reconstructions` reconstructions per
        start step, each noised (and, ancestral, stepped back) with the next draws of the sample's generator
        (seeded with seeds[i])."""
        generators = sample_generators(seeds)
        hp = self.hparams
        reconstructions = [self.ddpm.reconstruct(images, t, hp.reconstruction_steps, generators,
                                                 hp.reconstruction_sampler, self.draw)
                           for t in hp.start_steps for _ in range(hp.reconstructions)]
        with torch.autocast(images.device.type, enabled=False):  # float32 scores under any network precision
            return residual_score(images, reconstructions, hp.smoothing_sigma)

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
