"""Builders shared by the tests of the unconditional plugin."""

from pathlib import Path

import torch

from segbench.engine.stages import StagedTraining, StageHooks
from segbench.training_settings import TrainingSettings
from segbench_unconditional.hyperparameters import ANOMALY_PRESETS, FEATURES_PRESETS


def tiny_features(image_size: int = 32, **overrides):
    """A tiny ddpm-features model (seeded), hyperparameters overridable."""
    from segbench_unconditional.ddpm_features import ddpm_features

    torch.manual_seed(0)
    return ddpm_features({**FEATURES_PRESETS["tiny"].model, "image_size": image_size, **overrides})


def tiny_anomaly(image_size: int = 32, **overrides):
    """A tiny anomaly-ddpm model (seeded), hyperparameters overridable."""
    from segbench_unconditional.anomaly_ddpm import anomaly_ddpm

    torch.manual_seed(0)
    return anomaly_ddpm({**ANOMALY_PRESETS["tiny"].model, "image_size": image_size, **overrides})


def perturb(module: torch.nn.Module, scale: float = 0.05, seed: int = 1) -> None:
    """Move every parameter off its initial value, so zero-initialised layers (the U-Net's output and
    residual branches) pass signal, as after training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))


def staged_job(stages, values, view, runtime, folder=None):
    """The engine's job for `stages` of anomaly-ddpm with hyperparameters `values` (its factory's input) on
    `view` (every stage's), run seed 0, without a store; hooks that report nothing."""
    return StagedTraining(
        model="anomaly-ddpm", plugin="unconditional", stages=tuple(stages), settings=lambda stage: TrainingSettings(),
        hyperparameters=values, view=lambda stage: view, run_seed=0, runtime=runtime, prediction_batch=32,
        checkpoints=lambda stage: Path(folder or "unused") / stage.name, resume=False, checkpoint_every=None,
        hooks=StageHooks(lambda stage, total: lambda step: None, lambda stage, epoch, loss: None, lambda: False,
                         lambda stage, holder: None))
