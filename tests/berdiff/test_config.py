"""berdiff's presets, validation, summary and registration (no networks built)."""

import pytest

from segbench import ModelSpec, SegbenchError
from segbench.plan.training import TrainingSettings
from segbench_backbone.hyperparameters import BACKBONE, TRAINING
from segbench_berdiff import plugin
from segbench_berdiff.hyperparameters import PRESETS, BerDiffHyperparameters
from tests.segmenters import planned, registered


def spec() -> ModelSpec:
    specs = registered(plugin)
    assert list(specs) == ["berdiff"]
    return specs["berdiff"]


def config(preset="tiny", image_size=32, **sets) -> BerDiffHyperparameters:
    return planned(spec(), preset, image_size, **sets)


def test_registration():
    s = spec()
    assert s.family == "diffusion" and "BerDiff" in s.reference and "\n" not in s.description
    assert s.summary is not None and s.network_evaluations is not None


@pytest.mark.parametrize("preset, image_size", [("tiny", 32), ("tiny", 64), ("small", 64), ("paper", 64)])
def test_presets_are_valid_and_on_diff_adds_backbone_and_training(preset, image_size):
    c = config(preset, image_size)
    assert {k: getattr(c, k) for k in BACKBONE[preset]} == BACKBONE[preset]
    assert dict(PRESETS[preset].training) == TRAINING[preset]
    TrainingSettings.layered(PRESETS[preset].training)


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
