"""Presets, hyperparameter validation, summaries and plugin registration (no networks built)."""

import pytest

from segbench import SegbenchError
from segbench_backbone.hyperparameters import BACKBONE, TRAINING
from segbench_diffusion.hyperparameters import PRESETS as DIFFUSION_PRESETS
from segbench_score import plugin
from segbench_score.hyperparameters import NCSN_PRESETS, SDE_PRESETS, NCSNHyperparameters, SDEHyperparameters
from tests.segmenters import planned, registered

SCHEMAS = {"ncsn": (NCSNHyperparameters, NCSN_PRESETS), "sde": (SDEHyperparameters, SDE_PRESETS)}


def config(kind="ncsn", preset="tiny", image_size=32, **sets):
    """The hyperparameters a run plans for `<kind>-add`, with `--set`-style overrides (as text)."""
    return planned(registered(plugin)[f"{kind}-add"], preset, image_size, **sets)


def test_registers_the_four_models():
    specs = registered(plugin)
    assert set(specs) == {"ncsn-add", "ncsn-concat", "sde-add", "sde-concat"}
    for spec in specs.values():
        assert spec.family == "diffusion" and spec.summary is not None
        assert {"tiny", "small", "paper"} <= set(spec.presets)
        assert spec.description and "\n" not in spec.description
        assert "Song" in spec.reference


@pytest.mark.parametrize("kind", ["ncsn", "sde"])
@pytest.mark.parametrize("preset, image_size", [("tiny", 32), ("small", 64), ("small", 32), ("paper", 64)])
def test_presets_are_valid(kind, preset, image_size):
    config(kind, preset, image_size)


@pytest.mark.parametrize("kind", ["ncsn", "sde"])
@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_backbone_and_training_equal_the_diffusion_preset(kind, preset):
    cls, presets = SCHEMAS[kind]
    for key, value in BACKBONE[preset].items():
        assert presets[preset].model[key] == DIFFUSION_PRESETS[preset].model[key] == value, key
    assert presets[preset].training == DIFFUSION_PRESETS[preset].training == TRAINING[preset]
    assert set(presets[preset].model) == set(cls.__dataclass_fields__) - {"image_size"}


def test_paper_presets_follow_the_papers():
    ncsn = config("ncsn", "paper", 64)
    assert (ncsn.parameterisation, ncsn.loss) == ("score", "dsm")
    assert (ncsn.sigma_max, ncsn.sigma_min, ncsn.num_scales, ncsn.steps_per_level) == (60.0, 0.01, 259, 5)
    assert ncsn.network_evaluations == 259 * 5 + 1
    sde = config("sde", "paper", 64)
    assert (sde.sde, sde.beta_min, sde.beta_max, sde.sampler, sde.snr) == ("vp", 0.1, 20.0, "pc", 0.16)
    assert sde.network_evaluations == 2000
    assert registered(plugin)["sde-add"].preset("paper", "infection").training["epochs"] == 2400


def test_small_presets_network_evaluations_and_ncsn_level_spacing():
    ncsn = config("ncsn", "small", 64)
    assert ncsn.network_evaluations == 20 * 2 + 1
    # neighbouring levels close enough that a step is never fed far more noise than it was trained on
    assert (ncsn.sigma_max / ncsn.sigma_min) ** (1 / (ncsn.num_scales - 1)) < 1.5
    assert config("sde", "small", 64).network_evaluations == 9  # 5 Heun steps, the last one Euler


@pytest.mark.parametrize(
    "overrides, nfe", [({"sampler": "euler_maruyama", "sampling_steps": 7}, 7), ({"sampler": "ode"}, 9),
                       ({"sampler": "pc", "corrector_steps": 2, "sampling_steps": 3}, 9)]
)
def test_network_evaluations_per_sampler(overrides, nfe):
    assert config("sde", "small", **overrides).network_evaluations == nfe


def test_summaries_name_formulation_sampler_steps_and_evaluations():
    specs = registered(plugin)
    ncsn = specs["ncsn-add"].summary({**specs["ncsn-add"].preset("small").model, "image_size": 64})
    assert ncsn.startswith("NCSN") and "annealed Langevin" in ncsn and "41 network evaluations per mask" in ncsn
    sde = specs["sde-add"].summary({**specs["sde-add"].preset("paper").model, "image_size": 64})
    assert "VP-SDE" in sde and "predictor-corrector" in sde and "1000 steps = 2000 network evaluations" in sde


@pytest.mark.parametrize(
    "kind, overrides, message",
    [
        ("sde", {"sampler": "heun"}, r"unknown sampler 'heun'; valid: euler_maruyama, pc, ode"),
        ("sde", {"sde": "subvp"}, r"unknown sde 'subvp'; valid: vp, ve"),
        ("ncsn", {"parameterisation": "eps"}, r"unknown parameterisation 'eps'; valid: score, denoiser"),
        ("ncsn", {"loss": "l1"}, r"unknown loss 'l1'; valid: dsm, x0_mse, bce_dice"),
        ("ncsn", {"parameterisation": "score"}, r"loss='bce_dice' needs parameterisation='denoiser'"),
        ("ncsn", {"sigma_max": 0.001}, r"sigma_max=0.001 must exceed sigma_min=0.1"),
        ("ncsn", {"num_scales": 0}, r"num_scales=0 must be positive"),
        ("ncsn", {"step_size": -1}, r"step_size=-1.0 must be positive"),
        ("sde", {"beta_max": 0.05}, r"beta_max=0.05 must exceed beta_min=0.1"),
        ("sde", {"corrector_steps": -1}, r"corrector_steps=-1 must be 0 or more"),
        ("sde", {"snr": 0}, r"snr=0.0 must be positive"),
        ("sde", {"sampling_steps": "ten"}, r"sde-add.sampling_steps='ten': expected a value like 2 \(an integer\)"),
        ("sde", {"image_size": 30}, r"image_size=30 cannot be halved 2 times"),
    ],
)
def test_bad_config_raises_one_clear_line(kind, overrides, message):
    with pytest.raises(SegbenchError, match=message) as info:
        config(kind, **overrides)
    assert "\n" not in str(info.value)


def test_values_from_the_command_line_are_parsed_by_their_declared_type():
    c = config("sde", sampler="ode", sampling_steps="4", snr="0.1", clip_x0="false")
    assert (c.sampler, c.sampling_steps, c.snr, c.clip_x0) == ("ode", 4, 0.1, False)


def test_missing_hyperparameter_is_named():
    values = {**NCSN_PRESETS["tiny"].model, "image_size": 32}
    del values["num_scales"]
    with pytest.raises(SegbenchError, match="lack 'num_scales'"):
        NCSNHyperparameters.from_mapping(values)


def test_info_shows_the_summary(run_cli):
    code, out, _ = run_cli("info", "ncsn-add", "--preset", "tiny", "--image-size", "32")
    assert code == 0
    assert "NCSN: 10 geometric noise levels" in " ".join(out.split()) and "11 network evaluations per mask" in " ".join(out.split())
