"""`segbench run`: plan the run, then train, evaluate and score every model into the run directory.

Orchestration only: the plan is built in `segbench.plan.build`, the loops live in `segbench.engine`,
scoring in `segbench.protocol`, the run directory in `segbench.results`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from segbench import environment
from segbench.data import SplitData, load_split
from segbench.data.folds import fold_splits
from segbench.engine.compiling import compile_children, compile_seconds
from segbench.engine.device import Runtime
from segbench.engine.distributed import SINGLE, Distributed, leave_together, on_main, start, stop
from segbench.engine.evaluation import predict_split
from segbench.engine.random_state import seed_everything
from segbench.engine.stopping import REQUEST as STOP_REQUEST
from segbench.engine.training import Checkpointing, TrainingDiverged, TrainingStep, train
from segbench.errors import SegbenchError
from segbench.io import WriteError, atomic_write_text
from segbench.metrics import EMPTY_MASK_POLICY
from segbench.plan.build import build_plan
from segbench.plan.request import RunRequest
from segbench.plan.run_plan import ModelPlan, RunPlan
from segbench.plugins import Registry
from segbench.progress import Bar, Progress
from segbench.protocol import bootstrap_seed, eval_subset, score
from segbench.reports.compose import analysis_options
from segbench.results import ModelRecord, RunRecord, RunStore, load_run
from segbench.results.committed import CommittedBatches
from segbench.results.directory import check_resume, clear_partial, open_run_directory
from segbench.results.store import checkpoint_dir, partial_dir
from segbench.seeds import derive_seed
from segbench.specs import DatasetSpec, MetricSpec

__all__ = ["RunRequest", "run"]


@dataclass(frozen=True)
class RunContext:
    """What every model of a run shares while it is trained and evaluated."""

    plan: RunPlan
    runtime: Runtime
    store: RunStore
    train_data: SplitData | None  # None when trained models are only evaluated (`segbench evaluate`)
    test_data: SplitData
    metrics: dict[str, MetricSpec]
    registry: Registry
    progress: Progress
    resume: bool


def run(request: RunRequest, registry: Registry, progress: Progress) -> Path:
    """Execute a run; returns its directory. Models that fail are recorded and the others go on.

    The run directory is locked while the run uses it. Everything is committed as it is made
    (checkpoints, prediction batches, each model's results), so after a kill or a failed write
    the same command with --resume finishes the run with the results an uninterrupted one gives.
    """
    return in_run_directory(lambda held: _run(request, registry, progress, held))


def in_run_directory(work: Callable[[contextlib.ExitStack], Path]) -> Path:
    """Do `work`, which holds its run directory's lock in the ExitStack it gets; a failed write ends it
    with one line saying that what was written is kept and how to finish."""
    with contextlib.ExitStack() as held:
        try:
            return work(held)
        except WriteError as exc:
            raise WriteError(f"{exc}; what was written before is kept: free space (or make the folder "
                             "writable), then rerun the same command with --resume") from exc


def _run(request: RunRequest, registry: Registry, progress: Progress, held: contextlib.ExitStack) -> Path:
    plan = build_plan(request, registry)
    dist, device = start(torch.device(plan.device), request.dist_backend, request.dist_timeout)
    try:
        plan = replace(plan, device=str(device), processes=dist.world)
        check_processes(plan, dist)
        progress = progress if dist.main else progress.silenced()
        networks = {m.name: build_network(registry, m, plan, dist) for m in plan.models}  # a factory's error first
        store, resume = on_main(lambda: open_run_directory(request.out, plan.data.task, request.resume, held,
                                                           progress.log), dist)
        train_data, test_data = load_data(registry, plan, progress)
        dataset = registry.dataset(plan.data.dataset)
        record = RunRecord(plan, train_samples=len(train_data), eval_samples_used=len(test_data),
                           empty_mask_policy=EMPTY_MASK_POLICY, dataset_synthetic=dataset.synthetic,
                           **environment.provenance(device))
        on_main(lambda: start_record(store, record, resume), dist)
        metrics = {name: registry.metric(name) for name in registry.names("metrics")}
        context = RunContext(plan, Runtime(device, plan.precision, dist), store, train_data, test_data, metrics,
                             registry, progress, resume)
        notify(context, "on_run_start", run_dir=str(store.path), record=record)
        for_each_model(context, lambda model: run_model(model, networks[model.name], context))
        notify(context, "on_run_end", run_dir=str(store.path))
        leave_together(dist)
        return store.path
    finally:
        stop(dist)


def start_record(store: RunStore, record: RunRecord, resume: bool) -> None:
    """config.json of a new run, or of a resumed one after checking that its settings did not change."""
    if resume:
        check_resume(store, record)
    store.write_record(record)


def check_processes(plan: RunPlan, dist: Distributed) -> None:
    """With several processes, every training batch splits evenly between them."""
    for model in plan.models:
        if dist.enabled and model.training.batch_size % dist.world:
            raise SegbenchError(f"{model.name}: its training batch of {model.training.batch_size} does not split "
                                f"between {dist.world} processes; use a --batch-size (or --set "
                                f"{model.name}.batch_size=N) that {dist.world} divides, or fewer processes")


def position(context: RunContext, name: str) -> str:
    """"(2 of 4)": where model `name` stands in the run's models."""
    names = [m.name for m in context.plan.models]
    return f"({names.index(name) + 1} of {len(names)})"


def notify(context: RunContext, hook: str, **arguments) -> None:
    """Call a lifecycle hook of the plugins, on rank 0 only."""
    if context.runtime.dist.main:
        context.registry.notify(hook, **arguments)


def for_each_model(context: RunContext, work: Callable[[ModelPlan], ModelRecord]) -> None:
    """`work` on every model of the plan that is not done yet, each result committed as it comes (by rank
    0: models.json; summary.csv rows for a failed model), then the run's report.md."""
    store, dist, models = context.store, context.runtime.dist, context.plan.models
    status = on_main(store.read_models, dist)
    with context.progress.task("models done", total=len(models)) as overall:
        for done, model in enumerate(models, 1):
            if context.resume and model.name in status and status[model.name].done:
                context.progress.log(f"{model.name}: already done, skipped")
            else:
                status[model.name] = work(model)
                if dist.main:
                    _commit_model(store, model.name, status, context.metrics)
            overall.step(done)
    if dist.main:
        results = load_run(store.path)
        report = context.registry.format("md").render(results, analysis_options(context.registry, results)[0])
        atomic_write_text(store.file("report.md"), report)


def _commit_model(store: RunStore, name: str, status: dict[str, ModelRecord], metrics: dict[str, MetricSpec]) -> None:
    """models.json with `name`'s entry (summary.csv rows too when it failed); its committed batches go only
    once that is written, so a kill before reuses them."""
    if not status[name].done:
        store.mark_failed(name, status[name].error or "", list(metrics))
    store.write_models(status)
    if status[name].done:
        clear_partial(store, name)


def load_data(registry: Registry, plan: RunPlan, progress: Progress) -> tuple[SplitData, SplitData]:
    """The training split and the evaluated test images (all, or the plan's seeded subset)."""
    data = plan.data
    spec = registry.dataset(data.dataset)
    progress.log(f"preparing {spec.name} ({data.task}, {data.image_size}x{data.image_size})")
    options = data.options(plan.seed)
    source = spec.factory(options)
    if data.folds is not None:
        train_data, test = fold_splits(spec, source, options, Path(data.folds), data.fold, progress)
    else:
        train_data, test = (load_split(spec, source, options, split, progress) for split in ("train", "test"))
    index = eval_subset(len(test), plan.evaluation.samples, plan.seed)
    for warning in data_warnings(plan, spec, len(test)):
        progress.log(f"[yellow]warning:[/] {warning}")
    return train_data, test if index is None else test.subset(index)


SMALL_TEST = 20  # evaluated images below which a bootstrap CI over images says little


def data_warnings(plan: RunPlan, spec: DatasetSpec, test_images: int) -> list[str]:
    """Options that do nothing here, and a test split too small for its CIs to mean much."""
    warnings = []
    if plan.data.root and not spec.needs_root:
        warnings.append(f"--data-root is ignored: dataset {spec.name!r} does not read files")
    requested = plan.evaluation.samples
    if requested is not None and requested > test_images:
        warnings.append(f"--eval-samples {requested}: the test split has {test_images} images; all are evaluated")
    evaluated = min(requested or test_images, test_images)
    if evaluated < SMALL_TEST:
        warnings.append(f"{evaluated} evaluated images: a 95% CI over so few images says little "
                        f"({SMALL_TEST} or more recommended)")
    return warnings


def build_network(registry: Registry, model: ModelPlan, plan: RunPlan, dist: Distributed = SINGLE) -> torch.nn.Module:
    """The model's network, its initial weights seeded from (run seed, model name); with several processes
    and `plan.sync_batchnorm`, its BatchNorm layers take their statistics over the global batch."""
    spec = registry.model(model.name)
    torch.manual_seed(derive_seed("init", plan.seed, model.name))
    try:
        network = spec.factory(model.factory_input(plan.data.image_size))
    except SegbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported with its name
        raise SegbenchError(f"model {model.name!r} (plugin {spec.plugin!r}) failed to build: "
                            f"{type(exc).__name__}: {exc}") from exc
    if plan.sync_batchnorm and dist.enabled:
        network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
    if plan.compile:
        compile_children(network)
    return network


def run_model(model: ModelPlan, network: torch.nn.Module, context: RunContext) -> ModelRecord:
    """Train, predict and score one model; returns its models.json entry. A diverging model or a plugin's
    bug fails this model only (recorded, the run goes on); a SegbenchError stops the run."""
    parameters = sum(p.numel() for p in network.parameters())
    compiled_before = compile_seconds() if context.plan.compile else None
    try:
        trained = _train(model, network, context)
    except TrainingDiverged as exc:
        context.progress.log(f"[red]model {model.name} failed[/]: training diverged: {exc}; its last good "
                             f"checkpoint {checkpoint_dir(model.name)}/last.pt is kept, the run goes on")
        return ModelRecord(error=f"training diverged: {exc}", parameters=parameters)
    except SegbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's bug must not lose the others' results
        return _plugin_failure(model, exc, context, parameters)
    record = evaluate_model(model, network, context, ModelRecord(parameters=parameters, **trained))
    if record.done and compiled_before is not None and (compiled_after := compile_seconds()) is not None:
        record = replace(record, compile_seconds=round(compiled_after - compiled_before, 3))  # inside train/predict
    return record


def evaluate_model(model: ModelPlan, network: torch.nn.Module, context: RunContext, trained: ModelRecord) -> ModelRecord:
    """Predict the evaluated images with the trained network, score and commit them; `trained` is the
    models.json entry so far (size and training), returned with the evaluation's status and speed."""
    name, evaluation = model.name, context.plan.evaluation
    seed_everything(derive_seed("model", context.plan.seed, name))
    try:
        with context.progress.task(f"{name} predict {position(context, name)}",
                                   total=len(context.test_data) * evaluation.ensemble) as bar:
            predictions = predict_split(
                network, context.test_data, evaluation, run_seed=context.plan.seed, runtime=context.runtime,
                model_name=name, on_batch=lambda done, total: bar.step(done),
                committed=CommittedBatches(context.store.file(partial_dir(name))), should_stop=STOP_REQUEST.__bool__,
            )
    except SegbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's bug must not lose the others' results
        return _plugin_failure(model, exc, context, trained.parameters)
    if context.runtime.dist.main:
        _write_results(name, predictions, context)
    masks = len(context.test_data) * evaluation.ensemble
    smaller = predictions.batch_size if predictions.batch_size != evaluation.batch_size else None
    return replace(trained, status="done", predict_seconds=round(predictions.seconds, 3), eval_batch_size_used=smaller,
                   masks_per_second=round(masks / predictions.seconds, 3) if predictions.seconds > 0 else None)


def _plugin_failure(model: ModelPlan, exc: Exception, context: RunContext, parameters: int | None) -> ModelRecord:
    error = f"plugin {model.plugin!r} raised {type(exc).__name__}: {exc}"
    context.progress.log(f"[red]model {model.name} failed[/]: {error}; the run goes on")
    return ModelRecord(error=error, parameters=parameters)


def _train(model: ModelPlan, network: torch.nn.Module, context: RunContext) -> dict:
    """Train with the model's settings; returns what models.json records of its training."""
    settings, samples = model.training, len(context.train_data)
    checkpointing = Checkpointing(context.store.file(checkpoint_dir(model.name)), context.resume,
                                  context.plan.checkpoint_every)
    with context.progress.task(f"{model.name} train {position(context, model.name)}",
                               total=settings.total_steps(samples)) as bar:
        state = train(
            network, context.train_data, settings, seed=derive_seed("model", context.plan.seed, model.name),
            runtime=context.runtime, checkpointing=checkpointing, should_stop=STOP_REQUEST.__bool__,
            on_step=_step_reporter(model.name, bar, context),
            on_epoch=lambda epoch, loss: notify(
                context, "on_epoch_end", model_name=model.name, epoch=epoch + 1, metrics={"loss": loss}),
        )
    trained = {"epochs": state.epoch, "steps": settings.total_steps(samples), "losses": list(state.losses),
               "train_seconds": round(state.seconds, 3)}
    if (decay := settings.ema_decay_used(samples)) != settings.ema_decay:
        trained["ema_decay_used"] = decay
    if state.parts > 1:
        trained["accumulation_parts"] = state.parts
        context.progress.log(f"{model.name}: training batches of {settings.batch_size} did not fit GPU memory; "
                             f"gradients were accumulated over {state.parts} micro-batches (the same effective batch)")
    return trained


def _step_reporter(name: str, bar: Bar, context: RunContext) -> Callable[[TrainingStep], None]:
    """What each training step reports: the bar, and (rank 0) the on_train_step hook when a plugin
    implements it (looked up once per model, so a run without one pays nothing per step)."""
    if not (context.runtime.dist.main and context.registry.implements("on_train_step")):
        return lambda step: bar.step(step.done, loss=step.loss)

    def report(step: TrainingStep) -> None:
        bar.step(step.done, loss=step.loss)
        context.registry.notify("on_train_step", model_name=name, step=step)

    return report


def _write_results(name: str, predictions, context: RunContext) -> None:
    """Score the predictions and commit them, the evaluated reference and the model's rows."""
    test, evaluation = context.test_data, context.plan.evaluation
    _, masks = test.tensors()
    scores = score(name, test.ids, predictions.probabilities, masks, evaluation.threshold, context.metrics,
                   bootstrap_seed(context.plan.seed), test.metadata)
    uncertainty = None if predictions.uncertainty is None else predictions.uncertainty[:, 0].numpy()
    context.store.write_predictions(name, test.ids, predictions.probabilities[:, 0].numpy(), uncertainty,
                                    evaluation.threshold)
    context.store.write_reference(test.ids, test.images, test.masks)
    context.store.write_model_results(name, scores.per_image, scores.summary)
    notify(context, "on_evaluation_end", model_name=name, summary=scores.by_metric)
