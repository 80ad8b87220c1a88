"""Building the run plan: the request and the registry give every setting, resolved and checked once.

Torch-free (the caller resolves the device), so the CLI answers a mistyped command through
`check_arguments` before torch loads.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from segbench.data.kaggle import located
from segbench.errors import HyperparameterError, SegbenchError, unknown
from segbench.plan import hyperparameters as hp
from segbench.plan.request import RunRequest, check_request, check_root
from segbench.plan.run_plan import EVALUATED_SPLITS, THRESHOLD, DataPlan, EvaluationPlan, ModelPlan, RunDevice, RunPlan
from segbench.plan.sets import ModelSets, SetKey, parse_sets
from segbench.plugins import Registry
from segbench.presets import resolve_preset
from segbench.specs import SINGLE_STAGE, ModelSpec
from segbench.training_settings import SettingError, TrainingSettings

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
        check_set_keys(spec, name, model_kinds(spec, spec.preset(preset, request.task).model), values)


def plan_models(request: RunRequest, registry: Registry, preset: str,
                sets: Mapping[str, ModelSets]) -> tuple[ModelPlan, ...]:
    """Every requested model's plan at `preset`, with the request's training options and `--set` values."""
    cli = {key: getattr(request, key) for key in CLI_TRAINING if getattr(request, key) is not None}
    return tuple(plan_model(registry.model(name), name, preset, request.task, request.image_size, cli,
                            sets.get(name, {})) for name in request.models)


def build_plan(request: RunRequest, registry: Registry, device: RunDevice) -> RunPlan:
    """The plan of `request` on `device` (resolved by the caller: `segbench.engine.device.run_device`);
    anything the user can fix is a SegbenchError naming it."""
    check_request(request, registry)
    preset = resolve_preset(request.preset, device.type)
    models = plan_models(request, registry, preset, parse_sets(request.sets, request.models))
    root, downloaded_from = (located(request.data_root) if registry.dataset(request.dataset).needs_root
                             else (request.data_root, None))
    return RunPlan(
        seed=request.seed, preset=preset, preset_requested=request.preset, device=device.name,
        precision=device.precision, precision_requested=request.precision, compile=request.compile,
        checkpoint_every=request.checkpoint_every,
        data=DataPlan(request.dataset, request.task, root, request.image_size, request.mask_threshold,
                      request.folds, request.fold, request.labels, request.labels_seed, downloaded_from),
        evaluation=EvaluationPlan(request.eval_samples, request.eval_batch_size or device.eval_batch_cap,
                                  request.ensemble, THRESHOLD, fusion=request.fusion),
        models=models, track=tuple(dict.fromkeys(request.track)), sync_batchnorm=request.sync_batchnorm,
        select=request.select, select_every=request.select_every, augment=request.augment,
        augment_flips=registry.dataset(request.dataset).flips if request.augment != "none" else (),
    )


def model_kinds(spec: ModelSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The declared type of each hyperparameter of `spec` (its schema's, else its preset values')."""
    kinds = hp.schema_kinds(spec.schema) if spec.schema is not None else hp.inferred_kinds(values)
    clash = sorted(set(kinds) & set(TRAINING_KINDS))
    if clash:
        raise SegbenchError(f"model {spec.name!r} (plugin {spec.plugin!r}) declares hyperparameter {clash[0]!r}, "
                            "which is a training setting of the engine; rename it")
    return kinds


# The training layers below `--set` of a model (stage None) or of one of its trained stages.
BaseLayers = Callable[[str | None], list[Mapping[str, Any]]]


def plan_model(spec: ModelSpec, name: str, preset: str, task: str | None, image_size: int,
               cli: Mapping[str, Any] | None = None, sets: ModelSets | Mapping[str, str] | None = None) -> ModelPlan:
    """One model's plan: its preset (and preset/task layer); for each trained stage the preset's training,
    the preset's layer of that stage, then the CLI's training options; then `--set MODEL.KEY`, then
    `--set MODEL.STAGE.KEY`. `sets` may be given as {"KEY" or "STAGE.KEY": text}."""
    chosen = spec.preset(preset, task)
    kinds = model_kinds(spec, chosen.model)
    missing = [key for key in kinds if key not in chosen.model]
    if missing:
        raise SegbenchError(f"model {name!r} (plugin {spec.plugin!r}): preset {preset!r} has no value for "
                            f"hyperparameter {missing[0]!r}")
    values = _typed(spec, name, chosen.model, kinds, f"preset {preset!r}")
    sources = {key: f"hyperparameter {name}.{key} of preset {preset}" for key in chosen.training}
    sources.update({key: option for key, option in CLI_TRAINING.items() if key in (cli or {})})

    def layers(stage: str | None) -> list[Mapping[str, Any]]:
        return [chosen.training, *([chosen.stages.get(stage, {})] if stage else []), cli or {}]

    return _with_sets(spec, name, kinds, values, layers, sources, _keyed(sets or {}), image_size)


def replan_model(spec: ModelSpec, plan: ModelPlan, image_size: int, sets: ModelSets | Mapping[str, str]) -> ModelPlan:
    """A model's plan as a run recorded it (JSON values typed again), with `--set` overrides applied: how
    a finished run's model is evaluated another way."""
    kinds = model_kinds(spec, plan.hyperparameters)
    values = _typed(spec, plan.name, plan.hyperparameters, kinds, "the run's config.json")

    def layers(stage: str | None) -> list[Mapping[str, Any]]:
        return [plan.stage_training(stage or "train").to_json()]

    return _with_sets(spec, plan.name, kinds, values, layers, {}, _keyed(sets), image_size)


def evaluated_data(trained: DataPlan, split: str, registry: Registry, dataset: str | None = None,
                   root: str | None = None) -> DataPlan:
    """What a run's models (trained on `trained`) are evaluated on: `trained` itself (the run's test split),
    or `dataset` (default: the trained one) under `root` (default: the trained one's for that dataset), its
    test split or with `split` "all" every image; the root is recorded absolute (a `kaggle:` handle: the folder
    it downloads into, and the handle). Refused in one line where the dataset does not serve the trained task,
    lacks its root, or `all` would score the training images."""
    if split not in EVALUATED_SPLITS:
        raise unknown("--split", split, EVALUATED_SPLITS)
    name = dataset or trained.dataset
    spec = registry.dataset(name)
    if trained.task not in spec.tasks:
        raise SegbenchError(f"dataset {name!r} does not serve task {trained.task!r}, which the run's models were "
                            f"trained for (it serves: {', '.join(spec.tasks)}); evaluate them on a dataset that does")
    root = trained.root if root is None and name == trained.dataset else root
    check_root(spec, root)
    root, downloaded_from = located(root) if spec.needs_root else (root, None)
    if name == trained.dataset and (not spec.needs_root or _same_folder(root, trained.root)):
        if split == "test":
            return trained
        raise SegbenchError(f"--split all on {name}, the data the run's models were trained on, would score their "
                            "training images; give the --dataset or --data-root of other data")
    return replace(trained, dataset=name, root=str(Path(root).expanduser().resolve()) if root else None,
                   downloaded_from=downloaded_from, folds=None, fold=None)


def _same_folder(one: str | None, other: str | None) -> bool:
    return one is not None and other is not None and Path(one).expanduser().resolve() == Path(other).expanduser().resolve()


def refuse_training_sets(name: str, sets: ModelSets, command: str) -> None:
    """`--set` for a trained model (`segbench evaluate`, `segbench predict`) may change how it samples, not
    a training setting: that is one clear error naming the key."""
    training = [key for key in sets if key.setting in TRAINING_KINDS]
    if training:
        raise SegbenchError(f"--set {name}.{training[0]}: a training setting; {command} reuses the trained weights, "
                            "so only how the model samples can change (run again to train differently)")


def refuse_stage_sets(spec: ModelSpec, name: str, sets: ModelSets, command: str) -> None:
    """`--set` for a trained model may not change a hyperparameter that one of its stages' results depends on:
    `command` reuses those results. A stage names them by its `hyperparameters` type; a fit stage that names
    none (a calibration, fitted on the model's outputs) depends on every one. One clear error naming the key."""
    for stage in spec.stages:
        depends = ({f.name for f in fields(stage.hyperparameters)} if stage.hyperparameters is not None
                   else None if stage.fit else set())
        for key in sets:
            if not key.stage and key.setting not in TRAINING_KINDS and (depends is None or key.setting in depends):
                made = "fitted" if stage.fit else "trained"
                raise SegbenchError(f"--set {name}.{key}: the run's stage {stage.name!r} was {made} with the run's "
                                    f"value, and {command} reuses it; run again to change it")


def _keyed(sets: ModelSets | Mapping[str, str]) -> dict[SetKey, str]:
    return {key if isinstance(key, SetKey) else SetKey.of(key): text for key, text in sets.items()}


def _typed(spec: ModelSpec, name: str, given: Mapping[str, Any], kinds: Mapping[str, Any], where: str) -> dict[str, Any]:
    try:
        return {key: hp.coerce(given[key], kind) for key, kind in kinds.items() if key in given}
    except ValueError as exc:
        raise SegbenchError(f"model {name!r} (plugin {spec.plugin!r}): {where}: {exc}") from None


def _with_sets(spec: ModelSpec, name: str, kinds: Mapping[str, Any], values: dict[str, Any], layers: BaseLayers,
               sources: dict[str, str], sets: ModelSets, image_size: int) -> ModelPlan:
    """Apply `--set` (model hyperparameters, training settings and a stage's training settings, each parsed
    once by its declared type), then check the training settings of the model or of each of its trained
    stages, and the model's schema."""
    check_set_keys(spec, name, kinds, sets)
    trained = trained_stages(spec)
    set_training: dict[str, Any] = {}
    set_stages: dict[str, dict[str, Any]] = {}
    for key, text in sets.items():
        hyperparameter = not key.stage and key.setting in kinds
        kind = kinds[key.setting] if hyperparameter else TRAINING_KINDS[key.setting]
        try:
            value = hp.parse(text, kind)
        except ValueError:
            stage = key.stage or (trained[0] if trained else None)
            example = (values[key.setting] if hyperparameter else
                       TrainingSettings.layered(*layers(stage)).to_json()[key.setting])
            raise SegbenchError(f"--set {name}.{key}={text!r}: expected a value like {example!r} "
                                f"({hp.describe(kind)})") from None
        if hyperparameter:
            values[key.setting] = value
        else:
            (set_stages.setdefault(key.stage, {}) if key.stage else set_training)[key.setting] = value
            sources[str(key)] = f"--set {name}.{key}={text}"
    if trained is None:
        training, stages = _settings(name, [*layers(None), set_training], sources), {}
    else:
        training, stages = None, {stage: _settings(name, [*layers(stage), set_training, set_stages.get(stage, {})],
                                                   sources, stage) for stage in trained}
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


def trained_stages(spec: ModelSpec) -> tuple[str, ...] | None:
    """The stages of a model in several stages that train with an optimiser (not those fitted once), in
    order; None for a model in one stage, whose plan has one `training`."""
    if spec.stages == SINGLE_STAGE:
        return None
    return tuple(stage.name for stage in spec.stages if not stage.fit)


def check_set_keys(spec: ModelSpec, name: str, kinds: Mapping[str, Any], sets: ModelSets) -> None:
    """Every `--set` key of model `name` is one of its hyperparameters (`kinds`), a training setting, or
    for a model in several stages STAGE.SETTING of a stage that trains with an optimiser."""
    stages, trained = stage_names(spec), trained_stages(spec) or ()
    for key in sets:
        if not key.stage and (key.setting in kinds or key.setting in TRAINING_KINDS):
            continue
        if key.stage and len(stages) > 1 and key.stage in stages and key.setting in TRAINING_KINDS:
            if key.stage in trained:
                continue
            raise SegbenchError(f"--set {name}.{key}: stage {key.stage!r} of {name} is fitted once, without an "
                                f"optimiser, so it has no training settings; stages that train: {', '.join(trained)}")
        if key.stage and len(stages) > 1 and key.stage not in stages:
            raise SegbenchError(f"--set {name}.{key}: {name} has no stage {key.stage!r}; its stages: {', '.join(stages)}")
        valid = ", ".join(sorted({*kinds, *TRAINING_KINDS}))
        staged = f" (or STAGE.SETTING for its stages {', '.join(trained)})" if len(stages) > 1 else ""
        raise SegbenchError(f"--set {name}.{key}: {name} has no hyperparameter {str(key)!r}; valid: {valid}{staged}")


def _setting_problem(name: str, exc: SettingError, source: str, key: str) -> str:
    """The message for a training setting out of range (`key`, with its stage), naming where the value
    came from."""
    if source in CLI_TRAINING.values():
        return f"{source} {exc}"
    if source.startswith("--set"):
        return f"{source}: {exc.key} {exc}"
    return f"hyperparameter {name}.{key} {exc}; change it with --set {name}.{key}=VALUE"


def _validate(spec: ModelSpec, name: str, values: dict[str, Any], image_size: int) -> None:
    """Build the spec's schema from the values: its checks raise SegbenchError on a bad combination, named
    here with the model (and, for a HyperparameterError or a message that starts with a hyperparameter's
    name, the `--set` that changes it)."""
    run_fields = {key: image_size for key in hp.RUN_FIELDS if key in {f.name for f in fields(spec.schema)}}
    try:
        spec.schema(**values, **run_fields)
    except HyperparameterError as exc:
        raise SegbenchError(f"model {name!r}: {exc}; change it with --set {name}.{exc.key}={exc.fix or 'VALUE'}") from None
    except SegbenchError as exc:
        key = next((key for key in values if re.match(rf"{re.escape(key)}\b", str(exc))), None)
        fix = f"; change it with --set {name}.{key}=VALUE" if key else ""
        raise SegbenchError(f"model {name!r}: {exc}{fix}") from None
    except Exception as exc:  # noqa: BLE001 - a plugin's schema bug is reported with its name
        raise SegbenchError(f"model {name!r} (plugin {spec.plugin!r}): its hyperparameters could not be checked: "
                            f"{type(exc).__name__}: {exc}") from exc
