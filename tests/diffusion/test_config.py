"""Presets, hyperparameter validation and plugin registration (no networks built)."""

import pytest

from segbench import SegbenchError
from segbench.training_settings import TrainingSettings
from segbench_diffusion import plugin
from segbench_diffusion.hyperparameters import PRESETS, DiffusionHyperparameters
from tests.segmenters import planned, registered


def config(preset="tiny", image_size=32, **sets) -> DiffusionHyperparameters:
    """The hyperparameters a run plans for diff-add, with `--set`-style overrides (as text)."""
    return planned(registered(plugin)["diff-add"], preset, image_size, **sets)


def test_registers_diff_add_and_diff_concat_and_the_wolleb_configuration():
    specs = registered(plugin)
    assert set(specs) == {"diff-add", "diff-concat", "diff-concat-wolleb", "diff-add:direct", "diff-concat:direct"}
    for spec in specs.values():
        assert spec.family == ("control" if spec.name.endswith(":direct") else "diffusion")
        assert {"tiny", "small", "paper"} <= set(spec.presets)
        assert spec.description and "\n" not in spec.description
    assert "SegDiff" in specs["diff-add"].reference and "SegDiff" in specs["diff-concat"].reference
    assert "Wolleb" in specs["diff-concat-wolleb"].reference


@pytest.mark.parametrize(
    "preset, image_size", [("tiny", 32), ("tiny", 64), ("small", 64), ("small", 32), ("paper", 64)]
)
def test_presets_are_valid(preset, image_size):
    config(preset, image_size)


def test_presets_hold_every_hyperparameter_and_only_training_settings_beside():
    model_keys = set(DiffusionHyperparameters.__dataclass_fields__) - {"image_size"}
    for name in ("tiny", "small", "paper"):
        assert set(PRESETS[name].model) == model_keys
        TrainingSettings.layered(PRESETS[name].training)  # valid settings, one budget


def test_paper_preset_is_the_seed_setup():
    preset = registered(plugin)["diff-add"].preset("paper", "infection")
    paper = {**preset.model, **preset.training}
    assert paper["base_channels"] == 192 and paper["channel_mult"] == (1, 2, 3, 4)
    assert paper["attention_resolutions"] == (32, 16, 8) and paper["head_channels"] == 64
    assert (paper["timesteps"], paper["beta_start"], paper["beta_end"]) == (1000, 1e-4, 0.02)
    assert (paper["sampler"], paper["sampling_steps"], paper["cond_channels"]) == ("ddim", 50, 16)
    assert (paper["batch_size"], paper["epochs"]) == (512, 2400)


def test_values_from_the_command_line_are_parsed_by_their_declared_type():
    c = config(channel_mult="1,2", attention_resolutions="16", sampling_steps="3", eta="0.5", clip_x0="false")
    assert c.channel_mult == (1, 2) and c.attention_resolutions == (16,)
    assert (c.sampling_steps, c.eta, c.clip_x0) == (3, 0.5, False)
    assert config(attention_resolutions="").attention_resolutions == ()
    assert config(channel_mult="(1, 2)").channel_mult == (1, 2)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image_size": 30}, r"image_size=30 cannot be halved 2 times .* multiple of 4"),
        ({"attention_resolutions": "4"}, r"attention_resolutions contains 4.*level resolutions .*: 32, 16, 8"),
        ({"sampling_steps": 1001}, r"sampling_steps=1001 out of range for timesteps=1000; valid: 1\.\.1000"),
        ({"sampling_steps": 0}, r"sampling_steps=0 must be a positive integer"),
        ({"sampler": "euler"}, r"unknown sampler 'euler'; valid: ddim, ddpm, dpmpp2m"),
        ({"loss": "l1"}, r"unknown loss 'l1'; valid: mse, bce_dice"),
        ({"loss": "bce_dice", "prediction": "epsilon"}, r"loss='bce_dice' needs prediction='x0'"),
        ({"base_channels": 6}, r"base_channels=6 is not divisible by norm_groups=4"),
        ({"head_channels": 5}, r"head_channels=5 does not divide the attention width 16"),
        ({"beta_end": 1e-5}, r"need 0 < beta_start < beta_end < 1"),
        ({"eta": -1.0}, r"eta=-1.0 must be >= 0"),
        ({"dropout": 1.0}, r"dropout=1.0 must be in \[0, 1\)"),
        ({"channel_mult": ""}, r"channel_mult=\(\) must be a non-empty list"),
        ({"channel_mult": "1,x"}, r"channel_mult='1,x': expected a value like \(1, 2, 2\) \(a comma-separated list of integers\)"),
        ({"num_res_blocks": 1.5}, r"num_res_blocks='1.5': expected a value like 1 \(an integer\)"),
        ({"clip_x0": "maybe"}, r"clip_x0='maybe': expected a value like True \(true or false\)"),
    ],
)
def test_bad_config_raises_one_clear_line(overrides, message):
    with pytest.raises(SegbenchError, match=message) as info:
        config(**overrides)
    assert "\n" not in str(info.value)


def test_missing_hyperparameter_is_named():
    values = {**PRESETS["tiny"].model, "image_size": 32}
    del values["timesteps"]
    with pytest.raises(SegbenchError, match="lack 'timesteps'"):
        DiffusionHyperparameters.from_mapping(values)


def test_training_settings_are_left_to_the_engine():
    c = DiffusionHyperparameters.from_mapping({**PRESETS["small"].model, "image_size": 64, "variant": "x"})
    assert not hasattr(c, "lr") and not hasattr(c, "variant")


def test_summary_and_network_evaluations_follow_the_sampler():
    spec = registered(plugin)["diff-add"]
    small = {**PRESETS["small"].model, "image_size": 64}
    assert spec.network_evaluations(small) == 10
    assert spec.network_evaluations({**small, "sampler": "ddpm"}) == 1000
    assert spec.network_evaluations({**small, "sampler": "dpmpp2m", "sampling_steps": 20}) == 20
    assert "10 network evaluations per mask" in spec.summary(small) and "added to" in spec.summary(small)
