"""berdiff's presets, validation, summary and registration (no networks built)."""

from dataclasses import fields

import pytest

from segbench import ModelSpec, SegbenchError
from segbench.plan.build import plan_model
from segbench.training_settings import TrainingSettings
from segbench_backbone.hyperparameters import BackboneHyperparameters
from segbench_berdiff import plugin
from segbench_berdiff.hyperparameters import PRESETS, BerDiffHyperparameters
from segbench_diffusion import plugin as diffusion_plugin
from tests.segmenters import planned, registered


def spec() -> ModelSpec:
    specs = registered(plugin)
    assert list(specs) == ["berdiff", "berdiff:direct"]  # the control: tests/core/test_direct_controls.py
    return specs["berdiff"]


def diff_add_spec() -> ModelSpec:
    return registered(diffusion_plugin)["diff-add"]


def config(preset="tiny", image_size=32, **sets) -> BerDiffHyperparameters:
    return planned(spec(), preset, image_size, **sets)


def test_registration():
    s = spec()
    assert s.family == "diffusion" and "BerDiff" in s.reference and "\n" not in s.description
    assert s.summary is not None and s.network_evaluations is not None


@pytest.mark.parametrize("preset, image_size", [("tiny", 32), ("tiny", 64), ("small", 64), ("paper", 64)])
def test_presets_are_valid_and_on_diff_adds_backbone_and_training(preset, image_size):
    """Planned beside diff-add's registered spec: every backbone field and every training setting is diff-add's."""
    ours, diff_add = config(preset, image_size), planned(diff_add_spec(), preset, image_size)
    assert {f.name: getattr(ours, f.name) for f in fields(BackboneHyperparameters)} == \
        {f.name: getattr(diff_add, f.name) for f in fields(BackboneHyperparameters)}
    assert plan_model(spec(), "berdiff", preset, "lung", image_size).training == \
        plan_model(diff_add_spec(), "diff-add", preset, "lung", image_size).training
    TrainingSettings.layered(PRESETS[preset].training)


@pytest.mark.parametrize("preset, base_channels, steps, prediction, loss, training_steps", [
    ("tiny", 8, 2, "x0", "mix_dice", 24),
    ("small", 16, 10, "x0", "mix_dice", 480),
    ("paper", 192, 50, "epsilon", "mix", None),
])
def test_presets_hold_their_documented_values(preset, base_channels, steps, prediction, loss, training_steps):
    c = config(preset, 64)
    assert (c.base_channels, c.timesteps, c.beta_start, c.beta_end) == (base_channels, 1000, 1e-4, 0.02)
    assert (c.sampler, c.sampling_steps, c.prediction, c.loss, c.bce_weight) == ("ddim", steps, prediction, loss, 1.0)
    assert plan_model(spec(), "berdiff", preset, "lung", 64).training.steps == training_steps


def test_paper_preset_is_the_papers_formulation():
    c = config("paper", 64)
    assert (c.timesteps, c.beta_start, c.beta_end) == (1000, 1e-4, 0.02)
    assert (c.prediction, c.loss, c.bce_weight, c.sampler) == ("epsilon", "mix", 1.0, "ddim")


def test_summary_and_network_evaluations():
    s = spec()
    small = {**PRESETS["small"].model, "image_size": 64}
    assert s.network_evaluations(small) == 10
    assert s.network_evaluations({**small, "sampler": "ddpm"}) == 1000
    line = s.summary(small)
    assert "B(abar_t x_0 + (1 - abar_t) / 2)" in line and "10 network evaluations per mask" in line


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"sampler": "dpmpp2m"}, r"unknown sampler 'dpmpp2m'; valid: ddim, ddpm"),
        ({"loss": "mse"}, r"unknown loss 'mse'; valid: mix, mix_dice, kl, bce"),
        ({"prediction": "v"}, r"unknown prediction 'v'; valid: epsilon, x0"),
        ({"sampling_steps": 1001}, r"sampling_steps=1001 out of range for timesteps=1000"),
        ({"bce_weight": -1}, r"bce_weight=-1.0 must be >= 0"),
        ({"beta_end": 1e-5}, r"need 0 < beta_start < beta_end < 1"),
    ],
)
def test_bad_config_raises_one_clear_line(overrides, message):
    with pytest.raises(SegbenchError, match=message) as info:
        config(**overrides)
    assert "\n" not in str(info.value)
