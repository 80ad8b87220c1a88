"""Registration, stages, presets and hyperparameter checks of ddpm-features and anomaly-ddpm; the paper
preset's X-ray DDPM is the seed paper's network (parameter count, where its attention is)."""

import pytest
import torch

from segbench import SegbenchError
from segbench.training_settings import TrainingSettings
from segbench_unconditional import plugin
from segbench_unconditional.hyperparameters import (
    ANOMALY_PRESETS,
    FEATURES_PRESETS,
    AnomalyHyperparameters,
    DDPMStageHyperparameters,
    FeaturesHyperparameters,
    XrayDDPMHyperparameters,
)
from tests.segmenters import planned, registered


def config(name="ddpm-features", preset="tiny", image_size=32, **sets):
    """The hyperparameters a run plans, with `--set`-style overrides (as text)."""
    return planned(registered(plugin)[name], preset, image_size, "infection", **sets)


def test_registers_two_staged_models_whose_stage_methods_exist():
    specs = registered(plugin)
    assert set(specs) == {"ddpm-features", "anomaly-ddpm"}
    features, anomaly = specs["ddpm-features"], specs["anomaly-ddpm"]
    assert [(s.name, s.view, s.split) for s in features.stages] == [("ddpm", "images", "train"), ("mlp", "labelled", "train")]
    assert [(s.name, s.view, s.split) for s in anomaly.stages] == [("ddpm", "healthy", "train"), ("calibration", "healthy", "val")]
    assert not any(stage.needs_labels for stage in anomaly.stages)  # anomaly-ddpm never reads a mask
    assert anomaly.upper_bound and not features.upper_bound  # reports add the best-threshold upper bound
    for spec in specs.values():
        assert spec.family == "diffusion" and spec.description and "\n" not in spec.description
        assert {"tiny", "small", "paper"} <= set(spec.presets)
        model = spec.factory({**spec.presets["tiny"].model, "image_size": 32})
        for stage in spec.stages:
            assert bool(stage.loss) != bool(stage.fit), stage  # a loss or a fit, not both
            for method in (stage.fit, stage.fit_on) if stage.fit else (stage.loss,):
                assert callable(getattr(model, method)), (stage, method)
            assert stage.trains == "" or isinstance(getattr(model, stage.trains), torch.nn.Module)
        assert issubclass(spec.stages[0].hyperparameters, DDPMStageHyperparameters)
        assert callable(model.synthesize)
    assert "Baranchuk" in features.reference and "Pinaya" in anomaly.reference


@pytest.mark.parametrize("name", ["ddpm-features", "anomaly-ddpm"])
@pytest.mark.parametrize("preset, image_size", [("tiny", 32), ("tiny", 64), ("small", 64), ("paper", 64)])
def test_presets_are_valid(name, preset, image_size):
    config(name, preset, image_size)


@pytest.mark.parametrize("name, presets", [("ddpm-features", FEATURES_PRESETS), ("anomaly-ddpm", ANOMALY_PRESETS)])
def test_presets_hold_every_hyperparameter_and_valid_stage_settings(name, presets):
    spec = registered(plugin)[name]
    schema_keys = set(spec.schema.__dataclass_fields__) - {"image_size"}
    stage_names = {stage.name for stage in spec.stages}
    for preset in presets.values():
        assert set(preset.model) == schema_keys
        assert set(preset.stages) == stage_names
        for settings in preset.stages.values():
            TrainingSettings.layered(preset.training, settings)  # valid settings, one budget


def test_paper_preset_is_the_seed_x_ray_ddpm():
    from segbench_backbone.unet import AttentionBlock, LinearAttentionBlock
    from segbench_unconditional.network import XrayDDPM

    hp = config("ddpm-features", "paper", 64)
    assert (hp.base_channels, hp.channel_mult, hp.num_res_blocks) == (192, (1, 2, 3, 4), 2)
    assert (hp.attention_resolutions, hp.attention, hp.head_channels) == ((32, 16, 8), "linear", 64)
    assert (hp.timesteps, hp.beta_start, hp.beta_end, hp.sampling_steps) == (1000, 1e-4, 0.02, 50)
    unet = XrayDDPM(hp).unet
    parameters = sum(p.numel() for p in unet.parameters())
    assert 217.8e6 < parameters < 217.9e6  # 217.86 M: the conditional paper U-Net (217.9 M) with 1 input channel
    assert unet.input_conv.in_channels == 1
    linear = {resolution for stage, resolution in _stage_resolutions(unet, 64)
              if isinstance(stage.attention, LinearAttentionBlock)}
    assert linear == {32, 16, 8}
    assert not any(isinstance(s.attention, AttentionBlock) for s in [*unet.encoder, *unet.decoder])
    assert isinstance(unet.middle.attention, AttentionBlock)  # the middle block keeps full attention


def _stage_resolutions(unet, size):
    """(stage, the resolution its attention sees) for every encoder and decoder stage."""
    out, resolution = [], size
    for stage in unet.encoder:
        out.append((stage, resolution))
        if stage.res.resample == "down":
            resolution //= 2
    for stage in unet.decoder:
        out.append((stage, resolution))
        if stage.resample is not None:
            resolution *= 2
    return out


def test_paper_presets_follow_the_papers():
    features = config("ddpm-features", "paper", 64)
    assert features.feature_timesteps == (50, 150, 250) and features.feature_blocks == "1/8-1/2"
    assert (features.ensemble_size, features.mlp_widths, features.pixels_per_step) == (10, (128, 32), 64)
    assert features.ensemble_fusion == "vote"  # the reference's torch.mode
    # every block of the seed U-Net at 64 px whose output is 8, 16 or 32 px: the 8x8 level's three (768 channels,
    # the last upsampling to 16), the 16x16 level's three (576, the last upsampling to 32), two at 32x32 (384)
    assert features.chosen_blocks.indices == tuple(range(8)) and features.chosen_blocks.stand_in is None
    assert [features.decoder_blocks[b] for b in range(8)] == [(768, 8), (768, 8), (768, 16), (576, 16), (576, 16),
                                                               (576, 32), (384, 32), (384, 32)]
    assert features.features_per_pixel == 3 * 4800
    anomaly = config("anomaly-ddpm", "paper", 64)
    assert (anomaly.start_steps, anomaly.reconstructions, anomaly.reconstruction_steps,
            anomaly.false_positive_rate) == ((200,), 1, 10, 0.05)
    paper = registered(plugin)["ddpm-features"].preset("paper", "infection")
    assert paper.stages["mlp"]["lr"] == 1e-3 and paper.stages["mlp"]["weight_decay"] == 0.0


def test_decoder_blocks_describe_the_network():
    """decoder_blocks (no torch) gives the channels and output size of every decoder stage NoiseUNet builds."""
    from segbench_unconditional.network import XrayDDPM

    for preset in ("tiny", "small"):
        hp = config("ddpm-features", preset, 64)
        ddpm = XrayDDPM(hp).eval()
        outputs = ddpm.decoder_activations(torch.zeros(1, 1, 64, 64), torch.tensor([10]), range(len(hp.decoder_blocks)))
        assert [(o.shape[1], o.shape[-1]) for o in outputs] == list(hp.decoder_blocks)


def test_summary_and_network_evaluations():
    specs = registered(plugin)
    features = {**FEATURES_PRESETS["paper"].model, "image_size": 64}
    line = specs["ddpm-features"].summary(features)
    assert "14400 per pixel" in line and "t=50, 150, 250" in line and "3 U-Net evaluations per mask" in line
    assert "every decoder block at 1/8-1/2 of the input" in line and "stands in" not in line
    assert "blocks 0 (768 ch, 1/8), 1 (768 ch, 1/8), 2 (768 ch, 1/4), 3 (576 ch, 1/4)" in line
    assert "5 (576 ch, 1/2), 6 (384 ch, 1/2), 7 (384 ch, 1/2) of 12" in line and "majority vote" in line
    small = specs["ddpm-features"].summary({**FEATURES_PRESETS["small"].model, "image_size": 64})
    assert "no 1/8 level: its coarsest, 1/4, stands in: blocks 0 (32 ch, 1/4), 1 (32 ch, 1/2), 2 (32 ch, 1/2) of 6" in small
    by_index = specs["ddpm-features"].summary({**features, "feature_blocks": "5,9", "ensemble_fusion": "mean"})
    assert "chosen by index: blocks 5 (576 ch, 1/2), 9 (192 ch, 1) of 12" in by_index
    assert "mean probability, uncertainty their std" in by_index
    assert specs["ddpm-features"].network_evaluations(features) == 3
    anomaly = {**ANOMALY_PRESETS["tiny"].model, "image_size": 32}
    assert specs["anomaly-ddpm"].network_evaluations(anomaly) == 2 * 2 * 2  # starts x draws x DDIM steps
    line = specs["anomaly-ddpm"].summary(anomaly)
    assert "95th percentile" in line and "(2 noise draw(s) each)" in line and "8 U-Net evaluations per mask" in line


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("ddpm-features", {"feature_blocks": "6"}, r"feature_blocks='6': this U-Net has decoder blocks 0\.\.5"),
        ("ddpm-features", {"feature_blocks": "1,1"}, r"repeats a block"),
        ("ddpm-features", {"feature_blocks": "1/8-2"}, r"feature_blocks='1/8-2': expected a scale range such as 1/8-1/2"),
        ("ddpm-features", {"feature_blocks": "1/0"}, r"feature_blocks='1/0': expected a scale range"),
        ("ddpm-features", {"feature_blocks": "1/3"}, r"no decoder block of this U-Net is at those scales \(it has 1/4, 1/2, 1\)"),
        ("ddpm-features", {"ensemble_fusion": "staple"}, r"unknown ensemble_fusion 'staple'; valid: vote, mean"),
        ("ddpm-features", {"feature_timesteps": "1000"}, r"feature_timesteps=\(1000,\): need one or more steps in 0\.\.999"),
        ("ddpm-features", {"pixels_per_step": 1}, r"pixels_per_step=1 >= 2"),
        ("ddpm-features", {"attention": "sparse"}, r"unknown attention 'sparse'; valid: full, linear"),
        ("ddpm-features", {"attention_resolutions": "4"}, r"attention_resolutions contains 4"),
        ("ddpm-features", {"sampling_steps": 1001}, r"sampling_steps=1001 out of range"),
        ("anomaly-ddpm", {"start_steps": "0"}, r"start_steps=\(0,\): need one or more steps in 1\.\.999"),
        ("anomaly-ddpm", {"reconstruction_steps": 102}, r"reconstruction_steps=102 out of range; valid: 1\.\.101"),
        ("anomaly-ddpm", {"reconstructions": 0}, r"reconstructions=0 must be >= 1"),
        ("anomaly-ddpm", {"false_positive_rate": 0.5}, r"false_positive_rate=0\.5 must be in \(0, 0\.5\)"),
        ("anomaly-ddpm", {"smoothing_sigma": -1}, r"smoothing_sigma=-1\.0 must be in"),
    ],
)
def test_bad_config_raises_one_clear_line(name, overrides, message):
    with pytest.raises(SegbenchError, match=message) as info:
        config(name, **overrides)
    assert "\n" not in str(info.value)


def test_hyperparameter_classes_are_distinct_schemas():
    assert issubclass(FeaturesHyperparameters, XrayDDPMHyperparameters)
    assert issubclass(AnomalyHyperparameters, XrayDDPMHyperparameters)
    with pytest.raises(SegbenchError, match="lack 'noise'"):
        AnomalyHyperparameters.from_mapping({**FEATURES_PRESETS["tiny"].model, "image_size": 32})
