"""The run plan: hyperparameters parsed once by their declared type, settings layered in one place,
config.json as the plan's JSON form (read back to the same plan), and records of older runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from segbench import ModelSpec, Preset, SegbenchError
from segbench.engine.device import run_device
from segbench.plan import hyperparameters as hp
from segbench.plan.build import build_plan, plan_model, replan_model
from segbench.plan.request import RunRequest
from segbench.plan.run_plan import RunPlan, as_json, first_difference
from segbench.results import RunRecord
from segbench.training_settings import SettingError, TrainingSettings

CPU = run_device("cpu", "auto")


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("25", int, 25), ("2.00", int, 2), ("1e3", int, 1000), ("0.5", float, 0.5), ("3", float, 3.0),
    ("false", bool, False), ("On", bool, True), ("ddpm", str, "ddpm"),
    ("16,8", tuple[int, ...], (16, 8)), ("(1, 2)", tuple[int, ...], (1, 2)), ("[4]", tuple[int, ...], (4,)),
    ("", tuple[int, ...], ()), ("none", int | None, None), ("7", int | None, 7),
    ("(256, 128)", Any, (256, 128)), ("128", Any, 128), ("resnet", Any, "resnet"),
])
def test_parse_by_declared_type(text, kind, value):
    parsed = hp.parse(text, kind)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(("text", "kind"), [("2.5", int), ("x", int), ("maybe", bool), ("1,x", tuple[int, ...]),
                                             ("nan?", float)])
def test_parse_refuses_what_the_type_cannot_hold(text, kind):
    with pytest.raises(ValueError):
        hp.parse(text, kind)


def test_coerce_reads_json_back_as_the_declared_type():
    assert hp.coerce([1, 2, 2], tuple[int, ...]) == (1, 2, 2)
    assert hp.coerce(None, tuple[int, ...] | None) is None and hp.coerce(3, float) == 3.0
    assert hp.coerce([256, 128], Any) == (256, 128)
    for value, kind in ((1, bool), (True, int), ("1", int), (2.5, int)):
        with pytest.raises(ValueError):
            hp.coerce(value, kind)


def test_describe_names_the_type_in_words():
    assert hp.describe(tuple[int, ...] | None) == "a comma-separated list of integers, or none"
    assert (hp.describe(bool), hp.describe(int), hp.describe(float)) == ("true or false", "an integer", "a number")


def test_training_budget_layers_clear_the_other_budget():
    preset = {"steps": 300, "batch_size": 16}
    assert TrainingSettings.layered(preset).steps == 300
    by_epochs = TrainingSettings.layered(preset, {"epochs": 3})
    assert (by_epochs.epochs, by_epochs.steps, by_epochs.batch_size) == (3, None, 16)
    assert TrainingSettings.layered({"epochs": 5}, {"steps": 7}).epochs is None
    with pytest.raises(SettingError, match="not both"):
        TrainingSettings.layered({"epochs": 5, "steps": 7})
    with pytest.raises(SettingError, match="exactly one"):
        TrainingSettings(epochs=None, steps=None)


def test_budget_in_steps_and_in_epochs():
    settings = TrainingSettings(epochs=None, steps=300, batch_size=16)
    assert settings.batches_per_epoch(480) == 30 and settings.epochs_run(480) == 10
    assert settings.batches_per_epoch(236) == 15 and settings.epochs_run(236) == 20
    assert TrainingSettings(epochs=10, batch_size=16).total_steps(21715) == 13580


def _plan(registry, *sets: str, **options: Any) -> RunPlan:
    return build_plan(RunRequest("lung", ["toy-cnn"], dataset="toy", sets=list(sets), **options), registry, CPU)


def test_plan_layers_preset_then_cli_then_set(registry):
    plan = _plan(registry, "toy-cnn.width=16", "toy-cnn.lr=0.5", epochs=2, lr=0.1)
    model = plan.model("toy-cnn")
    assert model.hyperparameters == {"width": 16, "noise": 0.5}
    assert (model.training.epochs, model.training.lr, model.training.batch_size) == (2, 0.5, 4)
    steps = _plan(registry, steps=9).model("toy-cnn").training
    assert (steps.epochs, steps.steps) == (None, 9)


@pytest.mark.parametrize(("options", "sets", "message"), [
    ({"epochs": 0}, (), "--epochs must be an integer >= 1, got 0"),
    ({"lr": float("nan")}, (), "--lr must be a positive finite number, got nan"),
    ({}, ("toy-cnn.lr=-1",), "--set toy-cnn.lr=-1: lr must be a positive finite number, got -1.0"),
    ({}, ("toy-cnn.ema_decay=1",), "--set toy-cnn.ema_decay=1: ema_decay must be in [0, 1)"),
    ({}, ("toy-cnn.epochs=2", "toy-cnn.steps=3"), "set epochs or steps, not both"),
    ({"epochs": 2, "steps": 3}, (), "--epochs and --steps are two ways"),
    ({}, ("toy-cnn.width=2.5",), "--set toy-cnn.width='2.5': expected a value like 8 (an integer)"),
])
def test_bad_settings_name_where_they_came_from(registry, options, sets, message):
    with pytest.raises(SegbenchError) as error:
        _plan(registry, *sets, **options)
    assert message in str(error.value)


def test_schema_checks_run_when_the_plan_is_made(registry):
    """A bad combination fails before any data is loaded or network built."""
    spec = registry.model("diff-add")
    with pytest.raises(SegbenchError, match="sampling_steps=0 must be a positive integer"):
        plan_model(spec, "diff-add", "tiny", "lung", 32, sets={"sampling_steps": "0"})
    with pytest.raises(SegbenchError, match="cannot be halved"):
        plan_model(spec, "diff-add", "tiny", "lung", 30)


def test_a_model_cannot_declare_a_training_setting():
    @dataclass(frozen=True)
    class Clashing:
        lr: float

    spec = ModelSpec("clash", lambda v: None, "cnn", {"small": Preset({"lr": 1.0})}, "clashes", schema=Clashing)
    with pytest.raises(SegbenchError, match="declares hyperparameter 'lr', which is a training setting"):
        plan_model(spec, "clash", "small", "lung", 32)


def test_config_json_reads_back_to_the_same_plan_and_typed_values(registry):
    request = RunRequest("lung", ["diff-add", "unet", "smp:FPN:resnet18"], dataset="toy", preset="small",
                         sets=["diff-add.sampling_steps=4"])
    plan = build_plan(request, registry, CPU)
    again = RunPlan.from_json(as_json(plan.to_json()))
    assert again.shaping() == plan.shaping()
    assert again.model("diff-add").hyperparameters["channel_mult"] == [1, 2, 2]  # JSON, until typed again
    for model in plan.models:
        typed = replan_model(registry.model(model.name), again.model(model.name), 64, {})
        assert typed == model  # the same values and types (tuples), training and variant
    assert again.model("smp:FPN:resnet18").variant == "FPN:resnet18"


def test_replan_applies_sets_to_what_the_run_recorded(registry):
    plan = build_plan(RunRequest("lung", ["diff-add"], dataset="toy", preset="tiny"), registry, CPU)
    stored = RunPlan.from_json(as_json(plan.to_json())).model("diff-add")
    changed = replan_model(registry.model("diff-add"), stored, 32, {"sampler": "dpmpp2m", "sampling_steps": "3"})
    assert (changed.hyperparameters["sampler"], changed.hyperparameters["sampling_steps"]) == ("dpmpp2m", 3)
    assert changed.training == plan.model("diff-add").training


def test_first_difference_names_the_key_path():
    old = {"seed": 0, "hyperparameters": {"unet": {"decoder_channels": [32, 16]}}}
    assert first_difference(old, as_json({"seed": 0, "hyperparameters": {"unet": {"decoder_channels": (32, 16)}}}),
                            "") is None
    assert first_difference(old, {"seed": 0, "hyperparameters": {"unet": {"decoder_channels": [32]}}}, "") == \
        "hyperparameters.unet.decoder_channels: [32, 16] -> [32]"


def test_a_config_json_of_an_older_segbench_is_read_into_the_same_types():
    legacy = {"task": "lung", "dataset": "cxr-phantom", "models": ["unet", "smp:FPN:resnet18"], "seed": 3,
              "preset": "small", "device": "cuda (NVIDIA H200)", "threshold": 0.5, "ensemble": 2, "image_size": 64,
              "eval_batch_size": 256, "train_samples": 480, "plugins": {"unet": "unets"},
              "hyperparameters": {"unet": {"decoder_channels": [8], "epochs": 10, "batch_size": 16, "lr": 0.001},
                                  "smp:FPN:resnet18": {"variant": "FPN:resnet18", "epochs": 2}}}
    record = RunRecord.from_json(legacy)
    plan = record.plan
    assert (plan.seed, plan.device, record.device_name, plan.precision) == (3, "cuda", "cuda (NVIDIA H200)", None)
    unet = plan.model("unet")
    assert unet.hyperparameters == {"decoder_channels": [8]} and unet.plugin == "unets"
    assert (unet.training.epochs, unet.training.batch_size, unet.training.explode_factor) == (10, 16, 1000.0)
    assert plan.model("smp:FPN:resnet18").variant == "FPN:resnet18"
    assert (plan.evaluation.ensemble, plan.evaluation.batch_size, record.train_samples) == (2, 256, 480)
