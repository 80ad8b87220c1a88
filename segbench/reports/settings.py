"""The settings block of a report: run-wide settings, and per model its preset, key hyperparameters and cost."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from segbench.data.augmentation import describe
from segbench.plan.run_plan import FUSIONS, PAPER_FUSION, SELECTION_SCORINGS, DataPlan, ModelPlan
from segbench.results import ModelRecord, RunRecord, RunResults
from segbench.results.record import StageRecord
from segbench.training_settings import TrainingSettings

# What each result cost: parameters trained and frozen, the images it learned from (with and without masks),
# its training (per stage: optimiser steps x batch, seconds; FLOPs), what one mask costs, and speed.
MODEL_COLUMNS = ("Model", "Preset", "Parameters trained / frozen (M)", "Labelled images", "Validation masks",
                 "Images without masks", "Training: steps x batch, s", "Training TFLOP",
                 "Network evaluations per mask x ensemble", "GFLOP per mask", "Masks/s", "Status")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _setting(results: RunResults, value: Callable[[RunRecord], str]) -> str:
    """One setting across merged runs: its value, or each value with the models it applies to."""
    records = {m: results.record_of(m) for m in results.model_names} or {"": results.record}
    by_value: dict[str, list[str]] = {}
    for model, record in records.items():
        by_value.setdefault(value(record), []).append(model)
    if len(by_value) == 1:
        return next(iter(by_value))
    return "; ".join(f"{v} ({', '.join(models)})" for v, models in by_value.items())


KERNEL_LABELS = {"aten_cpu_capability": "ATen", "onednn": "oneDNN", "blas": "BLAS", "cpu_threads": "threads",
                 "cuda": "CUDA", "cudnn": "cuDNN"}


def kernels_text(record: RunRecord) -> str:
    """The kernels that computed a run, in one line: "AMD EPYC, ATen AVX512, oneDNN 3.12.0, BLAS mkl 2024.2,
    threads 2" (and any pin set, e.g. "ATEN_CPU_CAPABILITY=avx2")."""
    if not record.kernels:
        return "not recorded"
    parts = [record.kernels.get("cpu", "")]
    for key, value in record.kernels.items():
        if key in KERNEL_LABELS:
            parts.append(f"{KERNEL_LABELS[key]} {value}")
        elif key != "cpu":
            parts.append(f"{key.upper()}={value}")
    return ", ".join(filter(None, parts))


def dataset_label(results: RunResults) -> str:
    """The dataset's name, with the dataset's own note when its data are generated; for models evaluated on
    other data than they were trained on, "trained on A, evaluated on B (ROOT), test split"."""
    record = results.record
    note = f" ({record.dataset_synthetic})" if record.dataset_synthetic else ""
    if record.trained_on is None:
        return record.plan.data.dataset + note
    images = "test split" if record.plan.evaluation.split == "test" else "every image"
    return f"trained on {_data_text(record.trained_on)}, evaluated on {_data_text(record.plan.data)}{note}, {images}"


def _data_text(data: DataPlan) -> str:
    return data.dataset + (f" ({data.root})" if data.root else "")


def header_items(results: RunResults, empty_rules: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The settings a reader needs to interpret the numbers, as (label, value); `empty_rules`: per metric
    that states one, its rule for empty masks (ReportOptions["empty_rules"])."""
    plan = results.record.plan
    items = [
        ("Task", plan.data.task),
        ("Dataset", dataset_label(results)),
        ("Preset", _setting(results, lambda r: f"{r.plan.preset} (requested: {r.plan.preset_requested})")),
        ("Seed", _setting(results, lambda r: _text(r.plan.seed))),
        ("Training images", _setting(results, lambda r: _text(r.train_samples))),
        ("Label budget", _setting(results, _label_budget)),
        ("Labels seed", _setting(results, _labels_seed)),
        ("Evaluation images", _setting(results, lambda r: _text(r.eval_samples_used))),
        ("Image size", _setting(results, lambda r: f"{r.plan.data.image_size}x{r.plan.data.image_size}")),
        ("Ensemble size", _setting(results, lambda r: _ensemble(results, r))),
        ("Threshold", _setting(results, lambda r: _text(r.plan.evaluation.threshold))),
        ("Augmentation", _setting(results, lambda r: describe(r.plan.augment, r.plan.augment_flips))),
        ("Checkpoint selection", _selection(results)),
        ("Empty-mask policy", _setting(results, lambda r: r.empty_mask_policy)),
        *_rule_items(empty_rules or {}),
        ("Device", _setting(results, lambda r: r.device_name)),
        ("Versions", _setting(results, lambda r: ", ".join(f"{k} {v}" for k, v in r.versions.items()))),
        ("Kernels", _setting(results, kernels_text)),
    ]
    if plan.precision is not None:  # runs before --precision existed ran fp32 on the CPU, bf16 on CUDA
        items.insert(-1, ("Precision", _setting(
            results, lambda r: f"{r.plan.precision} (requested: {r.plan.precision_requested})"
            if r.plan.precision is not None else "not recorded")))
    if any(results.record_of(m).plan.compile for m in results.model_names) or plan.compile:
        items.append(("torch.compile", _compile_setting(results)))
    capped = {**_recorded(results, "ema_decay_used"), **_capped_stages(results)}
    if capped:
        items.append(("EMA decay", ", ".join(f"{m}: {decay:.4g}" for m, decay in capped.items())
                      + " (the preset's, capped so that at most 1 % of the initial weights remain after training)"))
    split = _recorded(results, "accumulation_parts")
    if split:
        items.append(("Gradient accumulation", ", ".join(
            f"{m}: each training batch in {parts} micro-batches (GPU memory)" for m, parts in split.items())))
    if any(results.record_of(m).plan.processes > 1 for m in results.model_names):
        items.append(("Processes", _setting(results, _processes)))
    trained_in = {results.record_of(m).trained_in for m in results.model_names} - {""}
    if trained_in:
        items.append(("Trained in", ", ".join(sorted(trained_in)) + " (these models were evaluated again, not retrained)"))
    if results.timings_omitted:
        items.append(("Timings", "left out (--no-timings), so the report is reproducible byte for byte"))
    runs = list(dict.fromkeys(str(results.run_dir(m)) for m in results.model_names))
    if len(runs) > 1:
        items.append(("Runs", ", ".join(runs)))
    return items


def _label_budget(record: RunRecord) -> str:
    """How many training images kept their masks: "16 of 480 images", or "all (480 images)"."""
    labels, images = record.plan.data.labels, record.train_samples
    if labels is None:
        return f"all ({images} images)" if images else "all"
    return f"{labels} of {images} images" if images else str(labels)


def _labels_seed(record: RunRecord) -> str:
    """The seed that chose the labelled images; with every image labelled it chose nothing."""
    seed = str(record.plan.data.labels_seed)
    return seed if record.plan.data.labels is not None else f"{seed} (unused: every training image is labelled)"


def _selection_rule(record: RunRecord) -> str:
    """Which weights a run's stages on the labelled images kept."""
    plan = record.plan
    if plan.select == "last":
        return "last (each stage's final weights)"
    every = f"every {plan.select_every} steps" if plan.select_every else f"{SELECTION_SCORINGS} times per stage"
    return ("best validation Dice (each stage on the labelled images keeps its weights of best pooled Dice, "
            "2 TP / (2 TP + FP + FN) over every pixel, on validation masks: at most the label budget of them, drawn as the labelled images are and not among "
            f"them; scored {every} and after its last step)")


def _selection(results: RunResults) -> str:
    """The selection rule, and under `--select best` per model (or MODEL/STAGE) the step it kept, its
    validation Dice, on how many masks and what the scoring cost."""
    kept = []
    for name in results.model_names:
        info = results.models.get(name)
        if info is None or not info.done or results.record_of(name).plan.select == "last":
            continue
        selected = [stage for stage in info.stages if stage.selection is not None]
        if not selected:
            kept.append(f"{name}: its last weights (no stage trains on the labelled images)")
        for stage in selected:
            s = stage.selection
            where = name if len(info.stages) == 1 else f"{name}/{stage.name}"
            n = s.network_evaluations
            cost = f", {n} network evaluation{'' if n == 1 else 's'} per mask" if n else ""
            kept.append(f"{where}: step {s.step} of {stage.steps}, validation Dice {s.dice:.4f} on "
                        f"{s.validation_masks} masks ({s.scorings} scorings{cost})")
    rule = _setting(results, _selection_rule)
    return f"{rule}; kept: {'; '.join(kept)}" if kept else rule


def _rule_items(empty_rules: Mapping[str, str]) -> list[tuple[str, str]]:
    """One item listing each metric's own empty-mask rule, metrics with the same rule together."""
    by_rule: dict[str, list[str]] = {}
    for metric, rule in empty_rules.items():
        by_rule.setdefault(rule, []).append(metric)
    text = "; ".join(f"{', '.join(metrics)}: {rule}" for rule, metrics in by_rule.items())
    return [("Empty masks, metrics with their own rule", text)] if text else []


def _recorded(results: RunResults, key: str) -> dict[str, Any]:
    """Per model, its models.json value for `key`, where it has one."""
    values = {m: getattr(results.models.get(m), key, None) for m in results.model_names}
    return {m: v for m, v in values.items() if v is not None}


def _capped_stages(results: RunResults) -> dict[str, float]:
    """Per "MODEL/STAGE" of a staged model, the EMA decay the stage ran with where its setting was capped."""
    return {f"{m}/{stage.name}": stage.ema_decay_used for m in results.model_names
            for stage in (getattr(results.models.get(m), "stages", None) or []) if stage.ema_decay_used is not None}


def _ensemble(results: RunResults, record: RunRecord) -> str:
    """The ensemble size, and for K > 1 how the K masks were fused (`segbench.fusion`); under --fusion paper,
    the rule each model was fused by, as models.json records it (only under paper; a failed model has none)."""
    evaluation = record.plan.evaluation
    if evaluation.ensemble == 1:
        return "1"
    if evaluation.fusion != PAPER_FUSION:
        return f"{evaluation.ensemble}, fused by {FUSIONS[evaluation.fusion]}"
    rules = "; ".join(f"{m} {FUSIONS[rule]}" for m, rule in _recorded(results, "fusion").items())
    return f"{evaluation.ensemble}, fused by each model's paper's rule: {rules}"


def _processes(record: RunRecord) -> str:
    """How many processes shared a run, and what that changes against one process."""
    plan = record.plan
    if plan.processes == 1:
        return "1"
    norm = ("BatchNorm statistics over the global batch (--sync-batchnorm)" if plan.sync_batchnorm
            else "BatchNorm statistics per process (--sync-batchnorm shares them)")
    return (f"{plan.processes} (torch.distributed): each step trains on the one-process run's global batch, "
            "gradients averaged by all-reduce, whose summation order makes training losses equal to one "
            f"process's to rounding, not to the byte; {norm}; evaluation sharded by sample, its results "
            "identical to one process's on the same device type")


def _compile_setting(results: RunResults) -> str:
    """"on"/"off" per run, and how long compiling took per model where recorded."""
    value = _setting(results, lambda r: "on" if r.plan.compile else "off")
    seconds = _recorded(results, "compile_seconds")
    if seconds:
        value += ("; compiling took " + ", ".join(f"{s:.1f} s ({m})" for m, s in seconds.items())
                  + ", included in the training time and masks/s")
    return value


def _count(n: int | None) -> str:
    """A parameter count in millions, the column's one unit: 24.43, 0.37, or two significant digits
    below 0.1 M (0.0096)."""
    if not n:
        return "–"
    return f"{n / 1e6:.2f}" if n >= 1e5 else f"{n / 1e6:.2g}"


def model_rows(results: RunResults) -> list[tuple[str, ...]]:
    """Per model, the MODEL_COLUMNS as text: the cost of its result. Runs made before stages were recorded
    show their one stage from the plan (all training images labelled)."""
    rows = []
    for name in results.model_names:
        info = results.models[name]
        record = results.record_of(name)
        ensemble = record.plan.evaluation.ensemble
        evaluations = f"{info.network_evaluations} x {ensemble}" if info.network_evaluations else f"– x {ensemble}"
        rows.append((
            name,
            record.plan.preset or "–",
            _parameters(info),
            _text(info.labelled_images if info.stages else record.train_samples) or "–",
            _text(info.validation_masks) or "0",
            _text(info.unlabelled_images) if info.stages else "0",
            _training(info, record, name),
            _training_flops(info),
            evaluations,
            f"{info.flops_per_mask / 1e9:.3g}" if info.flops_per_mask else "–",
            f"{info.masks_per_second:.2f}" if info.masks_per_second else "–",
            "done" if info.done else f"failed: {info.error or ''}",
        ))
    return rows


def _parameters(info: ModelRecord) -> str:
    """"0.37 / 0" : trained and frozen parameters in millions (all trained where stages were not recorded)."""
    if not info.parameters:
        return "–"
    trained = info.parameters_trained if info.parameters_trained is not None else info.parameters
    return f"{_count(trained)} / {_count(info.parameters - trained) if trained < info.parameters else '0'}"


def _training(info: ModelRecord, record: RunRecord, name: str) -> str:
    """Per stage "steps x batch, seconds" ("reused" for a stage reused from the store, "fit on N images"
    for one without an optimiser); the stage's name where there are several."""
    if not info.stages:
        training = record.plan.model(name).training if name in record.plan.model_names else None
        steps = info.steps
        if steps is None and training is not None and record.train_samples:  # runs that did not record steps
            steps = training.total_steps(record.train_samples)
        return _stage_cost(steps, getattr(training, "batch_size", None), info.train_seconds, "")
    parts = []
    for stage in info.stages:
        if stage.batch_size is None:
            cost = f"fit on {stage.images} image{'' if stage.images == 1 else 's'}"
        else:
            cost = _stage_cost(stage.steps, stage.batch_size, stage.seconds, stage.reused_from)
        parts.append(cost if len(info.stages) == 1 else f"{stage.name}: {cost}")
    return "; ".join(parts)


def _training_flops(info: ModelRecord) -> str:
    """Training FLOPs in TFLOP (steps x one step's forward and backward): the model's, and where it has
    several stages each stage's ("–" for one fitted without an optimiser); "–" where they were not counted."""
    flops = [stage.training_flops for stage in info.stages]
    if not flops or None in flops:
        return "–"
    total = _tflop(sum(flops))
    if len(flops) == 1:
        return total
    return f"{total} (" + "; ".join(f"{stage.name}: {_tflop(stage.training_flops) if stage.training_flops else '–'}"
                                    for stage in info.stages) + ")"


def _tflop(flops: int) -> str:
    """FLOPs in TFLOP, the column's one unit: 3 significant digits, whole numbers from 1,000 on."""
    tera = flops / 1e12
    return f"{tera:,.0f}" if tera >= 1000 else f"{tera:.3g}"


def _stage_cost(steps: int | None, batch: int | None, seconds: float | None, reused_from: str) -> str:
    text = f"{_text(steps) or '–'} x {_text(batch) or '–'}"
    if reused_from:
        return f"{text}, reused"
    return f"{text}, {seconds:.1f} s" if seconds is not None else text


def hyperparameter_items(results: RunResults) -> list[tuple[str, str]]:
    """Per model, every resolved hyperparameter as "key=value, ...", then what trained it: "training:
    steps=3, ..." for a model in one stage; for one in several, each stage's settings ("ddpm: steps=1200,
    ...; calibration: fitted once, no optimiser"), in the order the stages ran."""
    items = []
    for name in results.model_names:
        plan = results.record_of(name).plan
        if name not in plan.model_names:
            continue
        model = plan.model(name)
        training = (f"training: {_settings_text(model.training)}" if model.training is not None
                    else _stage_settings(model, results.models[name].stages))
        text = ", ".join(f"{k}={v}" for k, v in model.hyperparameters.items())
        items.append((name, (f"{text}; " if text else "") + training))
    return items


def _stage_settings(model: ModelPlan, stages: list[StageRecord]) -> str:
    """Each stage's training settings, or "fitted once" for a stage without an optimiser (models.json records
    no batch size for it; the plan holds no settings for it): the stages that ran, in their order, then any
    the plan holds that did not (a model that failed before them)."""
    recorded = {stage.name: stage for stage in stages}
    parts = []
    for stage in dict.fromkeys([*recorded, *model.stages]):
        fitted = recorded[stage].batch_size is None if stage in recorded else stage not in model.stages
        parts.append(f"{stage}: " + ("fitted once, no optimiser" if fitted else _settings_text(model.stages[stage])))
    return "; ".join(parts)


def _settings_text(settings: TrainingSettings) -> str:
    """"steps=3, batch_size=2, lr=0.002, ...": the settings that are set."""
    return ", ".join(f"{k}={v}" for k, v in settings.to_json().items() if v is not None)
