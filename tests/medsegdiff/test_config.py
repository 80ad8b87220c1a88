"""medsegdiff's presets, validation, summary and registration (no networks built)."""

import pytest

from segbench import ModelSpec, SegbenchError
from segbench.plan.training import TrainingSettings
from segbench_backbone.ddpm_hyperparameters import DDPM_HEAD
from segbench_backbone.hyperparameters import BACKBONE, TRAINING
from segbench_medsegdiff import plugin
from segbench_medsegdiff.hyperparameters import PRESETS, MedSegDiffHyperparameters
from tests.segmenters import planned, registered


def spec() -> ModelSpec:
    specs = registered(plugin)
    assert list(specs) == ["medsegdiff"]
    return specs["medsegdiff"]


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


def test_small_and_tiny_differ_from_diff_add_in_the_conditioning_only():
    for name in ("tiny", "small"):
        assert dict(PRESETS[name].model) == {**BACKBONE[name], **DDPM_HEAD[name], "dynamic_encoding": True,
                                             "ff_parser": True}
        assert dict(PRESETS[name].training) == TRAINING[name]


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
