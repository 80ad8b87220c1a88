"""medsegdiff's presets, validation, summary and registration (no networks built)."""

from dataclasses import asdict

import pytest

from segbench import ModelSpec, SegbenchError
from segbench.plan.build import plan_model
from segbench.training_settings import TrainingSettings
from segbench_diffusion import plugin as diffusion_plugin
from segbench_medsegdiff import plugin
from segbench_medsegdiff.hyperparameters import PRESETS, MedSegDiffHyperparameters
from tests.segmenters import planned, registered


def spec() -> ModelSpec:
    specs = registered(plugin)
    assert list(specs) == ["medsegdiff", "medsegdiff:direct"]  # the control: tests/core/test_direct_controls.py
    return specs["medsegdiff"]


def diff_add_spec() -> ModelSpec:
    return registered(diffusion_plugin)["diff-add"]


def config(preset="tiny", image_size=32, **sets) -> MedSegDiffHyperparameters:
    return planned(spec(), preset, image_size, **sets)


def test_registration():
    s = spec()
    assert s.family == "diffusion" and "MedSegDiff" in s.reference and "\n" not in s.description
    assert s.summary is not None and s.network_evaluations is not None


@pytest.mark.parametrize("preset, image_size", [("tiny", 32), ("tiny", 64), ("small", 32), ("small", 64), ("paper", 64)])
def test_presets_are_valid(preset, image_size):
    c = config(preset, image_size)
    assert c.dynamic_encoding and c.ff_parser
    TrainingSettings.layered(PRESETS[preset].training)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_small_and_tiny_differ_from_diff_add_in_the_conditioning_only(preset):
    """Planned beside diff-add's registered spec: every hyperparameter but the two MedSegDiff switches, and
    every training setting, is diff-add's."""
    ours, diff_add = asdict(config(preset, 64)), asdict(planned(diff_add_spec(), preset, 64))
    assert (ours.pop("dynamic_encoding"), ours.pop("ff_parser")) == (True, True)
    assert ours == diff_add
    assert plan_model(spec(), "medsegdiff", preset, "lung", 64).training == \
        plan_model(diff_add_spec(), "diff-add", preset, "lung", 64).training


@pytest.mark.parametrize("preset, network, head, training", [
    ("tiny", (8, (1, 2, 2), 1, ()), (2, "x0", "bce_dice", True), (24, 8, 1e-3, 0.0)),
    ("small", (16, (1, 2, 2), 1, (16,)), (10, "x0", "bce_dice", True), (480, 16, 1e-3, 0.99)),
])
def test_small_and_tiny_presets_hold_their_documented_values(preset, network, head, training):
    c = config(preset, 64)
    assert (c.base_channels, c.channel_mult, c.num_res_blocks, c.attention_resolutions) == network
    assert (c.timesteps, c.beta_start, c.beta_end, c.sampler) == (1000, 1e-4, 0.02, "ddim")
    assert (c.sampling_steps, c.prediction, c.loss, c.clip_x0) == head
    t = plan_model(spec(), "medsegdiff", preset, "lung", 64).training
    assert (t.steps, t.batch_size, t.lr, t.ema_decay) == training


def test_paper_preset_is_medsegdiff_b_at_64_pixels():
    c = config("paper", 64)
    assert (c.base_channels, c.channel_mult, c.num_res_blocks, c.attention_resolutions) == (128, (1, 2, 3, 4), 2, (16,))
    assert (c.timesteps, c.beta_start, c.beta_end, c.prediction, c.loss) == (1000, 1e-4, 0.02, "epsilon", "mse")
    assert c.fusion_shapes() == [(128, 64, 64), (256, 32, 32), (384, 16, 16), (512, 8, 8)]


def test_summary_and_network_evaluations():
    s = spec()
    small = {**PRESETS["small"].model, "image_size": 64}
    assert s.network_evaluations(small) == 10
    assert s.network_evaluations({**small, "sampler": "ddpm"}) == 1000
    line = s.summary(small)
    assert "10 network evaluations per mask" in line and "(16, 64, 33), (32, 32, 17), (32, 16, 9)" in line
    assert "--ensemble 5" in line


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ff_parser": "true", "dynamic_encoding": "false"}, r"ff_parser=True needs dynamic_encoding=True"),
        ({"sampler": "euler"}, r"unknown sampler 'euler'; valid: ddim, ddpm, dpmpp2m"),
        ({"image_size": 30}, r"image_size=30 cannot be halved 2 times"),
    ],
)
def test_bad_config_raises_one_clear_line(overrides, message):
    with pytest.raises(SegbenchError, match=message) as info:
        config(**overrides)
    assert "\n" not in str(info.value)
