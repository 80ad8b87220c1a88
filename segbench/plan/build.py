"""Building the run plan: the request and the registry give every setting, resolved and checked once.

Torch-free at import (the device is resolved inside `build_plan`), so the CLI answers a mistyped
command through `check_arguments` before torch loads.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from segbench.errors import SegbenchError
from segbench.plan import hyperparameters as hp
from segbench.plan.request import RunRequest, check_request
from segbench.plan.run_plan import DataPlan, EvaluationPlan, ModelPlan, RunPlan
from segbench.plan.training import SettingError, TrainingSettings
from segbench.plugins import Registry
from segbench.presets import resolve_preset
from segbench.specs import SINGLE_STAGE, ModelSpec

TRAINING_KINDS = typing.get_type_hints(TrainingSettings)
CLI_TRAINING = {"epochs": "--epochs", "steps": "--steps", "batch_size": "--batch-size", "lr": "--lr"}


def check_arguments(request: RunRequest, registry: Registry) -> None:
    """The checks of `build_plan` that need no device: names, counts, `--set`, and with a preset named (not
    auto, which depends on the device) every model's hyperparameters."""
    check_request(request, registry)
    sets = parse_sets(request.sets, request.models)
    preset = resolve_preset(request.preset, "cpu")  # an unknown preset is an error on any device
    if request.preset != "auto":
        plan_models(request, registry, preset, sets)
        return
    for name, values in sets.items():  # auto: the keys (the same in every preset) before the values
        spec = registry.model(name)
        check_set_keys(name, model_kinds(spec, spec.preset(preset, request.task).model), values, stage_names(spec))


def plan_models(request: RunRequest, registry: Registry, preset: str,
                sets: Mapping[str, Mapping[str, str]]) -> tuple[ModelPlan, ...]:
    """Every requested model's plan at `preset`, with the request's training options and `--set` values."""
    cli = {key: getattr(request, key) for key in CLI_TRAINING if getattr(request, key) is not None}
    return tuple(plan_model(registry.model(name), name, preset, request.task, request.image_size, cli,
                            sets.get(name, {})) for name in request.models)


def build_plan(request: RunRequest, registry: Registry) -> RunPlan:
    """The plan of `request`; anything the user can fix is a SegbenchError naming it."""
    from segbench.engine.device import eval_batch_cap, resolve_device, resolve_precision
    from segbench.protocol import THRESHOLD

    check_request(request, registry)
    device = resolve_device(request.device)
    precision = resolve_precision(request.precision, device)
    preset = resolve_preset(request.preset, device.type)
    models = plan_models(request, registry, preset, parse_sets(request.sets, request.models))
    return RunPlan(
        seed=request.seed, preset=preset, preset_requested=request.preset, device=str(device), precision=precision,
        precision_requested=request.precision, compile=request.compile, checkpoint_every=request.checkpoint_every,
        data=DataPlan(request.dataset, request.task, request.data_root, request.image_size, request.mask_threshold,
                      request.folds, request.fold, request.labels, request.labels_seed),
        evaluation=EvaluationPlan(request.eval_samples, request.eval_batch_size or eval_batch_cap(device),
                                  request.ensemble, THRESHOLD),
        models=models, track=tuple(dict.fromkeys(request.track)), sync_batchnorm=request.sync_batchnorm,
    )


def parse_sets(items: Sequence[str], model_names: Sequence[str]) -> dict[str, dict[str, str]]:
    """`["diff-add.sampling_steps=25", "ddpm-features.ddpm.steps=9"]` ->
    {"diff-add": {"sampling_steps": "25"}, "ddpm-features": {"ddpm.steps": "9"}} (a stage's training
    setting keeps the stage's name in its key)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        model, dot, key = target.rpartition(".")
        if not sep or not dot or not model or not key:
            raise SegbenchError(f"--set {item!r} is not of the form MODEL.KEY=VALUE (e.g. diff-add.sampling_steps=25)")
        owner, _, stage = model.rpartition(".")
        if model not in model_names and owner in model_names and stage:
            model, key = owner, f"{stage}.{key}"
        if model not in model_names:
            raise SegbenchError(f"--set {item!r} names model {model!r}, which is not in --models ({', '.join(model_names)})")
        out.setdefault(model, {})[key] = value
    return out


def model_kinds(spec: ModelSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The declared type of each hyperparameter of `spec` (its schema's, else its preset values')."""
    kinds = hp.schema_kinds(spec.schema) if spec.schema is not None else hp.inferred_kinds(values)
    clash = sorted(set(kinds) & set(TRAINING_KINDS))
    if clash:
        raise SegbenchError(f"model {spec.name!r} (plugin {spec.plugin!r}) declares hyperparameter {clash[0]!r}, "
                            "which is a training setting of the engine; rename it")
    return kinds


def plan_model(spec: ModelSpec, name: str, preset: str, task: str | None, image_size: int,
               cli: Mapping[str, Any] | None = None, sets: Mapping[str, str] | None = None) -> ModelPlan:
    """One model's plan: its preset (and preset/task layer), then the CLI's training options, then `--set`."""
    chosen = spec.preset(preset, task)
    kinds = model_kinds(spec, chosen.model)
    missing = [key for key in kinds if key not in chosen.model]
    if missing:
        raise SegbenchError(f"model {name!r} (plugin {spec.plugin!r}): preset {preset!r} has no value for "
                            f"hyperparameter {missing[0]!r}")
    values = _typed(spec, name, chosen.model, kinds, f"preset {preset!r}")
    sources = {key: f"hyperparameter {name}.{key} of preset {preset}" for key in chosen.training}
    sources.update({key: option for key, option in CLI_TRAINING.items() if key in (cli or {})})
    return _with_sets(spec, name, kinds, values, [chosen.training, cli or {}], sources, sets or {}, image_size,
                      chosen.stages)


def replan_model(spec: ModelSpec, plan: ModelPlan, image_size: int, sets: Mapping[str, str]) -> ModelPlan:
    """A model's plan as a run recorded it (JSON values typed again), with `--set` overrides applied: how
    a finished run's model is evaluated another way."""
    kinds = model_kinds(spec, plan.hyperparameters)
    values = _typed(spec, plan.name, plan.hyperparameters, kinds, "the run's config.json")
    return _with_sets(spec, plan.name, kinds, values, [plan.training.to_json()], {}, sets, image_size,
                      {stage: settings.to_json() for stage, settings in plan.stages.items()})


def refuse_training_sets(name: str, sets: Mapping[str, str], command: str) -> None:
    """`--set` for a trained model (`segbench evaluate`, `segbench predict`) may change how it samples, not
    a training setting: that is one clear error naming the key."""
    training = [key for key in sets if key.rpartition(".")[2] in TRAINING_KINDS]
    if training:
        raise SegbenchError(f"--set {name}.{training[0]}: a training setting; {command} reuses the trained weights, "
                            "so only how the model samples can change (run again to train differently)")


def _typed(spec: ModelSpec, name: str, given: Mapping[str, Any], kinds: Mapping[str, Any], where: str) -> dict[str, Any]:
    try:
        return {key: hp.coerce(given[key], kind) for key, kind in kinds.items() if key in given}
    except ValueError as exc:
        raise SegbenchError(f"model {name!r} (plugin {spec.plugin!r}): {where}: {exc}") from None


def _with_sets(spec: ModelSpec, name: str, kinds: Mapping[str, Any], values: dict[str, Any],
               training_layers: list[Mapping[str, Any]], sources: dict[str, str], sets: Mapping[str, str],
               image_size: int, stage_layers: Mapping[str, Mapping[str, Any]] | None = None) -> ModelPlan:
    """Apply `--set` (model hyperparameters, training settings and a stage's training settings, each parsed
    once by its declared type), then check the training settings of the model and of each of its stages,
    and the model's schema. A stage's settings: the model's, its preset's stage layer, then its `--set`."""
    check_set_keys(name, kinds, sets, stage_names(spec))
    set_training: dict[str, Any] = {}
    set_stages: dict[str, dict[str, Any]] = {}
    for key, text in sets.items():
        stage, _, setting = key.rpartition(".")
        kind = kinds.get(key, TRAINING_KINDS.get(setting))
        try:
            value = hp.parse(text, kind)
        except ValueError:
            example = values.get(key, getattr(TrainingSettings(), setting, None))
            raise SegbenchError(f"--set {name}.{key}={text!r}: expected a value like {example!r} "
                                f"({hp.describe(kind)})") from None
        if key in kinds:
            values[key] = value
        else:
            (set_stages.setdefault(stage, {}) if stage else set_training)[setting] = value
            sources[key] = f"--set {name}.{key}={text}"
    training = _settings(name, [*training_layers, set_training], sources)
    stages = {stage: _settings(name, [*training_layers, (stage_layers or {}).get(stage, {}), set_training,
                                      set_stages.get(stage, {})], sources, stage)
              for stage in stage_names(spec)} if spec.stages != SINGLE_STAGE else {}
    if spec.schema is not None:
        _validate(spec, name, values, image_size)
    variant = name.split(":", 1)[1] if spec.prefix else None
    return ModelPlan(name, spec.plugin, spec.family, values, training, variant, stages)


def _settings(name: str, layers: list[Mapping[str, Any]], sources: dict[str, str], stage: str = "") -> TrainingSettings:
    try:
        return TrainingSettings.layered(*layers)
    except SettingError as exc:
        key = f"{stage}.{exc.key}" if stage else exc.key
        raise SegbenchError(_setting_problem(name, exc, sources.get(key, sources.get(exc.key, "")), key)) from None


def stage_names(spec: ModelSpec) -> tuple[str, ...]:
    """The names of `spec`'s stages, in order."""
    return tuple(stage.name for stage in spec.stages)


def check_set_keys(name: str, kinds: Mapping[str, Any], sets: Mapping[str, str], stages: Sequence[str] = ()) -> None:
    """Every `--set` key of model `name` is one of its hyperparameters (`kinds`), a training setting, or
    for a model in several stages STAGE.SETTING."""
    for key in sets:
        stage, _, setting = key.rpartition(".")
        if key in kinds or (not stage and key in TRAINING_KINDS):
            continue
        if stage and len(stages) > 1 and stage in stages and setting in TRAINING_KINDS:
            continue
        if stage and len(stages) > 1 and stage not in stages:
            raise SegbenchError(f"--set {name}.{key}: {name} has no stage {stage!r}; its stages: {', '.join(stages)}")
        valid = ", ".join(sorted({*kinds, *TRAINING_KINDS}))
        staged = f" (or STAGE.SETTING for its stages {', '.join(stages)})" if len(stages) > 1 else ""
        raise SegbenchError(f"--set {name}.{key}: {name} has no hyperparameter {key!r}; valid: {valid}{staged}")


def _setting_problem(name: str, exc: SettingError, source: str, key: str) -> str:
    """The message for a training setting out of range (`key`, with its stage), naming where the value
    came from."""
    if source in CLI_TRAINING.values():
        return f"{source} {exc}"
    if source.startswith("--set"):
        return f"{source}: {exc.key} {exc}"
    return f"hyperparameter {name}.{key} {exc}; change it with --set {name}.{key}=VALUE"


def _validate(spec: ModelSpec, name: str, values: dict[str, Any], image_size: int) -> None:
    """Build the spec's schema from the values: its checks raise SegbenchError on a bad combination."""
    run_fields = {key: image_size for key in hp.RUN_FIELDS if key in {f.name for f in fields(spec.schema)}}
    try:
        spec.schema(**values, **run_fields)
    except SegbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's schema bug is reported with its name
        raise SegbenchError(f"model {name!r} (plugin {spec.plugin!r}): its hyperparameters could not be checked: "
                            f"{type(exc).__name__}: {exc}") from exc
