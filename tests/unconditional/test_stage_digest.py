"""What names anomaly-ddpm's stored DDPM stage: the fields of the type the stage declares
(`DDPMStageHyperparameters` and the training noise), and nothing of how the model samples or segments; a
field added to that type is digested without any list to update, and the fields outside it leave the
trained DDPM unchanged."""

from dataclasses import fields, make_dataclass, replace

import numpy as np
import pytest
import torch

from segbench.data.views import TrainingView
from segbench.engine.device import Runtime
from segbench.engine.stages import stage_source
from segbench_unconditional import plugin
from segbench_unconditional.hyperparameters import ANOMALY_PRESETS, DDPMStageHyperparameters
from tests.segmenters import registered
from tests.unconditional.helpers import staged_job

VALUES = {**ANOMALY_PRESETS["tiny"].model, "image_size": 32}
VIEW = TrainingView(["train/0", "train/1"], np.arange(2 * 32 * 32, dtype=np.uint8).reshape(2, 32, 32), None)
DDPM_STAGE = plugin.ANOMALY_STAGES[0]
STAGE_FIELDS = [f.name for f in fields(DDPM_STAGE.hyperparameters)]


def digest(values, stage=DDPM_STAGE) -> str:
    return stage_source(staged_job([stage], values, VIEW, Runtime(torch.device("cpu"), "fp32")), stage, VIEW,
                        "").digest()


def other(value):
    """A different value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, tuple):
        return (*value, 4)
    return f"{value}-other"


@pytest.mark.parametrize("name", STAGE_FIELDS)
def test_every_field_of_the_stage_type_names_another_stored_ddpm(name):
    assert digest({**VALUES, name: other(VALUES[name])}) != digest(VALUES)


def test_no_field_outside_the_stage_type_does():
    """Sampling (sampling_steps, clip_x0) and segmenting (start steps, sampler, smoothing, rate); the noise
    the DDPM is trained with is inside."""
    outside = set(VALUES) - set(STAGE_FIELDS)
    assert {"sampling_steps", "clip_x0", "start_steps", "reconstruction_sampler", "false_positive_rate"} <= outside
    assert {"noise", "simplex_octaves", "simplex_persistence", "simplex_frequency"} <= set(STAGE_FIELDS)
    assert all(digest({**VALUES, name: other(VALUES[name])}) == digest(VALUES) for name in outside)


def test_a_field_added_to_the_stage_type_is_digested_and_a_sampling_field_is_not():
    trained = make_dataclass("Trained", [("loss_weight", float)], bases=(DDPMStageHyperparameters,), frozen=True)
    stage = replace(DDPM_STAGE, hyperparameters=trained)
    values = {**VALUES, "loss_weight": 1.0, "sampler": "ddim"}  # "sampler": a field of the model's schema only
    assert digest({**values, "loss_weight": 2.0}, stage) != digest(values, stage)
    assert digest({**values, "sampler": "ddpm"}, stage) == digest(values, stage)


@pytest.mark.parametrize("name", ["ddpm-features", "anomaly-ddpm"])
def test_the_fields_outside_the_stage_type_leave_the_trained_ddpm_unchanged(name):
    """The tiny preset with every field outside DDPMStageHyperparameters taken from the small preset: the
    same initial DDPM and the same loss and gradients under the same draws, so a stored DDPM holds for it."""
    spec = registered(plugin)[name]
    tiny, small = spec.presets["tiny"].model, spec.presets["small"].model
    outside = set(tiny) - set(STAGE_FIELDS)
    assert any(tiny[key] != small[key] for key in outside)
    images = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    losses, states = [], []
    for values in (tiny, {**tiny, **{key: small[key] for key in outside}}):
        torch.manual_seed(0)
        model = spec.factory({**values, "image_size": 32})
        torch.manual_seed(1)
        loss = model.ddpm_loss(images)
        loss.backward()
        losses.append(loss.detach())
        states.append({**model.ddpm.state_dict(), **{f"{k}.grad": p.grad for k, p in model.ddpm.named_parameters()}})
    assert torch.equal(losses[0], losses[1])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])
