"""One model trained through its stages: each stage's view of the run's data, its progress bar and the
plugins' step and epoch hooks, checkpoints under the run directory, and stages reused from the store."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

import torch

from segbench.data.augmentation import resolve
from segbench.data.views import TrainingView, labelled_view, stage_view
from segbench.engine.selection import ValidationSelection
from segbench.engine.stages import StagedTraining, StageHooks, StageRun, StageStore, train_stages
from segbench.engine.stopping import REQUEST as STOP_REQUEST
from segbench.engine.training import Objective, TrainingStep
from segbench.plan.run_plan import ModelPlan
from segbench.results import ModelRecord
from segbench.results.record import StageRecord
from segbench.results.store import stage_checkpoint_dir
from segbench.runner.context import RunContext, network_evaluations, notify, position
from segbench.specs import Stage


def train_model(model: ModelPlan, network: torch.nn.Module, context: RunContext) -> ModelRecord:
    """Train `network` through its stages; returns what models.json records of its training and cost."""
    plan, spec = context.plan, context.registry.model(model.name)
    stages, dataset = spec.stages, context.registry.dataset(plan.data.dataset)

    def view(stage: Stage) -> TrainingView:
        return stage_view(stage, context.training, plan.data.labels, plan.data.labels_seed, dataset.healthy,
                          plan.data.task)

    # --select best: at most the label budget of validation masks, drawn as the labelled images are
    selection = (ValidationSelection(labelled_view(context.training["val"], plan.data.labels, plan.data.labels_seed),
                                     plan.select_every, plan.evaluation.threshold) if plan.select == "best" else None)
    evaluations = network_evaluations(context, model) if selection is not None else None

    with contextlib.ExitStack() as bars:
        job = StagedTraining(
            model=model.name, plugin=model.plugin, stages=stages, settings=model.stage_training,
            hyperparameters=model.factory_input(plan.data.image_size), view=view, run_seed=plan.seed,
            runtime=context.runtime, prediction_batch=plan.evaluation.batch_size, resume=context.resume,
            checkpoint_every=plan.checkpoint_every,
            checkpoints=lambda stage: context.store.file(stage_checkpoint_dir(model.name, stages, stage)),
            hooks=_hooks(model.name, stages, context, bars), store=StageStore(), origin=str(context.store.path),
            selection=selection, augment=resolve(plan.augment, plan.augment_flips))
        records = [_stage_record(run, model, evaluations) for run in train_stages(network, job)]
    return _record(model, network, stages, records, context)


def hook_name(model: str, stages: tuple[Stage, ...], stage: Stage) -> str:
    """The model name the lifecycle hooks get for a stage: the model's for a model in one stage, else
    "MODEL/STAGE", so trackers keep each stage's losses apart."""
    return model if len(stages) == 1 else f"{model}/{stage.name}"


def _hooks(name: str, stages: tuple[Stage, ...], context: RunContext, bars: contextlib.ExitStack) -> StageHooks:
    """Per stage a progress bar (and, on rank 0, the on_train_step hook where a plugin implements it, looked
    up once so a run without one pays nothing per step); the on_epoch_end hook after each epoch; a line when
    it waits for a stage another run is making."""
    step_hook = context.runtime.dist.main and context.registry.implements("on_train_step")

    def start(stage: Stage, total: int) -> Callable[[TrainingStep], None]:
        label = "train" if len(stages) == 1 else stage.name
        bar = bars.enter_context(context.progress.task(f"{name} {label} {position(context, name)}", total=total))
        hooked = hook_name(name, stages, stage)

        def report(step: TrainingStep) -> None:
            bar.step(step.done, loss=step.loss)
            if step_hook:
                context.registry.notify("on_train_step", model_name=hooked, step=step)

        return report

    def epoch(stage: Stage, index: int, loss: float) -> None:
        notify(context, "on_epoch_end", model_name=hook_name(name, stages, stage), epoch=index + 1,
               metrics={"loss": loss})

    def wait(stage: Stage, holder: str) -> None:
        context.progress.log(f"{name}: stage {stage.name} is being made by {holder} (another run); waiting to "
                             "reuse it")

    return StageHooks(start, epoch, STOP_REQUEST.__bool__, wait)


def _stage_record(run: StageRun, model: ModelPlan, network_evaluations: int | None) -> StageRecord:
    """models.json's entry of a stage that ran (or was reused: its seconds are 0), with the EMA decay it ran
    with where the engine capped its setting to the stage's length, what its checkpoint selection kept
    (with the network evaluations per scored mask), and its training FLOPs."""
    stage = run.stage
    decay = None
    if not stage.fit and model.training is None:
        settings = model.stage_training(stage.name)
        used = settings.ema_decay_used(run.images)
        decay = used if used != settings.ema_decay else None
    return StageRecord(stage.name, stage.view, stage.split, run.images, run.masks, run.steps, run.epochs,
                       run.batch_size, list(run.losses), round(run.seconds, 3), run.parameters_trained,
                       reused_from=run.reused_from, accumulation_parts=run.accumulation_parts, ema_decay_used=decay,
                       selection=None if run.selected is None else replace(run.selected,
                                                                           network_evaluations=network_evaluations),
                       step_flops=run.step_flops, training_flops=_training_flops(run))


def _training_flops(run: StageRun) -> int | None:
    """A stage's training FLOPs: steps x the FLOPs of one step; 0 for a fit (no optimiser step), None where
    the step was not counted."""
    if run.stage.fit:
        return 0
    return None if run.step_flops is None else run.steps * run.step_flops


def _record(model: ModelPlan, network: torch.nn.Module, stages: tuple[Stage, ...], records: list[StageRecord],
            context: RunContext) -> ModelRecord:
    """The models.json entry of a trained model: its stages, and over them the totals a report shows."""
    trained = {id(p): p.numel() for stage in stages if not stage.fit
               for p in Objective(stage.loss, stage.trains).trainable(network).parameters()}
    last = records[-1]
    single = model.training is not None
    decay = model.training.ema_decay_used(last.images) if single else None
    parts = max(r.accumulation_parts for r in records)
    if parts > 1:
        context.progress.log(f"{model.name}: training batches did not fit GPU memory; gradients were accumulated "
                             f"over {parts} micro-batches (the same effective batch)")
    for record in records:
        if record.reused_from:
            context.progress.log(f"{model.name}: stage {record.name} reused from {record.reused_from}")
    return ModelRecord(
        parameters=sum(p.numel() for p in network.parameters()), parameters_trained=sum(trained.values()),
        epochs=last.epochs if single else None, steps=sum(r.steps for r in records),
        losses=list(last.losses) if single else [], train_seconds=round(sum(r.seconds for r in records), 3),
        ema_decay_used=decay if single and decay != model.training.ema_decay else None,
        accumulation_parts=parts if parts > 1 else None, stages=records,
        validation_masks=(sum(r.masks for r in records if r.split == "val")
                          + max((r.selection.validation_masks for r in records if r.selection), default=0)) or None)
