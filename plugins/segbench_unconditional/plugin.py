"""Registers ddpm-features and anomaly-ddpm, each trained in stages (see `segbench.specs.Stage`)."""

from __future__ import annotations


from segbench import ModelSpec, Stage, deferred, hookimpl
from segbench_unconditional.hyperparameters import (
    ANOMALY_PRESETS,
    FEATURES_PRESETS,
    AnomalyDDPMStageHyperparameters,
    AnomalyHyperparameters,
    DDPMStageHyperparameters,
    FeaturesHyperparameters,
    anomaly_evaluations,
    anomaly_summary,
    features_evaluations,
    features_summary,
)

FEATURES_REFERENCE = ("Baranchuk et al. 2022, Label-Efficient Semantic Segmentation with Diffusion Models "
                      "(ICLR; arXiv:2112.03126)")
ANOMALY_REFERENCE = ("Pinaya et al. 2022, Fast Unsupervised Brain Anomaly Detection and Segmentation with Diffusion "
                     "Models (MICCAI; arXiv:2206.03461); Wyatt et al. 2022, AnoDDPM (CVPR Workshops); Bercea et al. "
                     "2023, Mask, Stitch, and Re-Sample (AutoDDPM, ICML)")

# The DDPM stage reads no masks, so a run trains it once and reuses it across label budgets; its result
# depends only on the network and schedule hyperparameters (DDPMStageHyperparameters' fields) and, for
# anomaly-ddpm, the noise it is trained with (AnomalyDDPMStageHyperparameters).
FEATURES_STAGES = (
    Stage("ddpm", view="images", loss="ddpm_loss", trains="ddpm", hyperparameters=DDPMStageHyperparameters,
          description="the unconditional X-ray DDPM on every training image"),
    Stage("mlp", view="labelled", loss="training_loss", trains="ensemble",
          description="the pixel-MLP ensemble on the labelled images' DDPM features"),
)
ANOMALY_STAGES = (
    Stage("ddpm", view="healthy", loss="ddpm_loss", trains="ddpm", hyperparameters=AnomalyDDPMStageHyperparameters,
          description="the unconditional X-ray DDPM on healthy training images"),
    Stage("calibration", view="healthy", split="val", fit="calibrate", fit_on="anomaly_scores", loss="", trains="",
          description="the anomaly-score threshold at the healthy validation pixels' false-positive rate"),
)


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="ddpm-features",
        factory=deferred("segbench_unconditional.ddpm_features:ddpm_features"),
        family="diffusion",
        presets=FEATURES_PRESETS,
        schema=FeaturesHyperparameters,
        description="Majority vote of pixel MLPs on an unconditional X-ray DDPM's decoder features at 1/8-1/2 of the "
                    "input; DDPM trained without masks",
        reference=FEATURES_REFERENCE,
        summary=features_summary,
        network_evaluations=features_evaluations,
        stages=FEATURES_STAGES,
    ))
    register(ModelSpec(
        name="anomaly-ddpm",
        factory=deferred("segbench_unconditional.anomaly_ddpm:anomaly_ddpm"),
        family="diffusion",
        presets=ANOMALY_PRESETS,
        schema=AnomalyHyperparameters,
        description="Unsupervised partial-diffusion residual baseline (Pinaya et al., AnoDDPM, AutoDDPM): a "
                    "healthy-image DDPM noises to t0 and reconstructs, smoothed |x - x_hat| thresholded at a healthy "
                    "false-positive rate; no latent model, inpainting or mask-stitch-resample",
        reference=ANOMALY_REFERENCE,
        summary=anomaly_summary,
        network_evaluations=anomaly_evaluations,
        stages=ANOMALY_STAGES,
        upper_bound=True,  # a calibrated score: reports add the Dice at the best test threshold, and the AUROC
    ))
