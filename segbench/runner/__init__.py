"""`segbench run`: plan the run, then train, evaluate and score every model into the run directory.

Orchestration only: the plan is built in `segbench.plan.build`, the loops live in `segbench.engine`,
scoring in `segbench.protocol`, the run directory in `segbench.results`. In this package: what the models
of a run share and the loop over them (context), one model's training through its stages (training) and
its evaluation (evaluation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from segbench import environment
from segbench.data.prepare import SplitData, load_split
from segbench.data.folds import fold_splits
from segbench.data.labels import check_budget, labelled_ids
from segbench.data.prepare import load_all
from segbench.data.views import stage_view
from segbench.engine.compiling import compile_children, compile_seconds
from segbench.engine.device import Runtime, run_device
from segbench.engine.distributed import SINGLE, Distributed, leave_together, on_main, start, stop
from segbench.engine.training import TrainingDiverged
from segbench.errors import SegbenchError
from segbench.io import WriteError
from segbench.metrics import EMPTY_MASK_POLICY
from segbench.plan.build import build_plan
from segbench.plan.request import RunRequest
from segbench.plan.run_plan import ModelPlan, RunPlan
from segbench.plugins import Registry
from segbench.progress import Progress
from segbench.protocol import eval_subset
from segbench.results import ModelRecord, RunRecord, RunStore
from segbench.results.directory import check_resume, open_run_directory
from segbench.results.store import stage_checkpoint_dir
from segbench.runner.context import RunContext, for_each_model, notify
from segbench.runner.evaluation import evaluate_model, plugin_failure
from segbench.runner.synthesis import synthesize
from segbench.runner.training import train_model
from segbench.seeds import derive_seed
from segbench.specs import DatasetSpec

__all__ = ["Prepared", "RunContext", "RunReport", "RunRequest", "build_network", "evaluate_model", "execute", "in_run_directory",
           "load_data", "run", "start_record"]


# Writes a finished run directory's report, as the calling command renders it (report.md): (run_dir, registry).
RunReport = Callable[[Path, Registry], None]


def run(request: RunRequest, registry: Registry, progress: Progress, report: RunReport) -> Path:
    """Execute a run; returns its directory. Models that fail are recorded and the others go on; then
    `report(run_dir, registry)` (before the plugins hear on_run_end, so trackers can keep it).

    The run directory is locked while the run uses it. Everything is committed as it is made
    (checkpoints, prediction batches, each model's results), so after a kill or a failed write
    the same command with --resume finishes the run with the results an uninterrupted one gives.
    """
    return in_run_directory(lambda held: _run(request, registry, progress, report, held))


def in_run_directory(work: Callable[[contextlib.ExitStack], Path]) -> Path:
    """Do `work`, which holds its run directory's lock in the ExitStack it gets; a failed write ends it
    with one line saying that what was written is kept and how to finish."""
    with contextlib.ExitStack() as held:
        try:
            return work(held)
        except WriteError as exc:
            raise WriteError(f"{exc}; what was written before is kept: free space (or make the folder "
                             "writable), then rerun the same command with --resume") from exc


@dataclass(frozen=True)
class Prepared:
    """What a run or an evaluation has ready before its directory is touched: every model's network, the
    data (training splits by name, the evaluated test images), the record (without provenance), the
    labelled ids to save (None: all labels) and whether the plugins' lifecycle hooks hear of it."""

    networks: dict[str, torch.nn.Module]
    training: dict[str, SplitData]
    test_data: SplitData
    record: RunRecord
    labelled: dict[str, list[str]] | None = None
    lifecycle: bool = True


def execute(plan: RunPlan, out: str | None, resume: bool, dist_options: tuple[str, float], held: contextlib.ExitStack,
            registry: Registry, progress: Progress, prepare: Callable[[RunPlan, Distributed, Progress], Prepared],
            work: Callable[[ModelPlan, torch.nn.Module, RunContext], ModelRecord], report: RunReport) -> Path:
    """The skeleton `segbench run` and `segbench evaluate` share: start the processes, `prepare` (every check
    that can refuse, before `--out` is touched), open and lock the run directory, write config.json (and
    labelled.csv), `work` on every model not done yet, then (rank 0) `report`; returns the run directory."""
    dist, device = start(torch.device(plan.device), *dist_options)
    try:
        plan = replace(plan, device=str(device), processes=dist.world)
        progress = progress if dist.main else progress.silenced()
        ready = prepare(plan, dist, progress)
        store, resume = on_main(lambda: open_run_directory(out, plan.data.task, resume, held, progress.log), dist)
        record = replace(ready.record, **environment.provenance(device))
        on_main(lambda: start_record(store, record, resume), dist)
        if ready.labelled is not None and dist.main:
            store.write_labelled(ready.labelled)
        metrics = {name: registry.metric(name) for name in registry.names("metrics")}
        context = RunContext(plan, Runtime(device, plan.precision, dist), store, ready.training, ready.test_data,
                             metrics, registry, progress, resume)
        if ready.lifecycle:
            notify(context, "on_run_start", run_dir=str(store.path), record=record)
        for_each_model(context, lambda model: work(model, ready.networks[model.name], context))
        on_main(lambda: report(store.path, registry), dist)
        if ready.lifecycle:
            notify(context, "on_run_end", run_dir=str(store.path))
        leave_together(dist)
        return store.path
    finally:
        stop(dist)


def _run(request: RunRequest, registry: Registry, progress: Progress, report: RunReport,
         held: contextlib.ExitStack) -> Path:
    def prepare(plan: RunPlan, dist: Distributed, progress: Progress) -> Prepared:
        check_processes(plan, dist)
        networks = {m.name: build_network(registry, m, plan, dist) for m in plan.models}  # a factory's error first
        training, test_data = load_data(registry, plan, progress, training_splits(registry, plan))
        labelled = check_views(registry, plan, training)  # every refusal the data can give
        record = RunRecord(plan, train_samples=len(training["train"]), eval_samples_used=len(test_data),
                           empty_mask_policy=EMPTY_MASK_POLICY,
                           dataset_synthetic=registry.dataset(plan.data.dataset).synthetic)
        scored = {"val": training["val"]} if plan.select == "best" else {}  # the masks checkpoint selection scores
        ids = (labelled_ids({**labelled, **scored}, plan.data.labels, plan.data.labels_seed)
               if plan.data.labels is not None else None)
        return Prepared(networks, training, test_data, record, ids)

    return execute(build_plan(request, registry, run_device(request.device, request.precision)), request.out, request.resume,
                   (request.dist_backend, request.dist_timeout), held, registry, progress, prepare, run_model, report)


def start_record(store: RunStore, record: RunRecord, resume: bool) -> None:
    """config.json of a new run, or of a resumed one after checking that its settings did not change."""
    if resume:
        check_resume(store, record)
    store.write_record(record)


def check_processes(plan: RunPlan, dist: Distributed) -> None:
    """With several processes, every training batch splits evenly between them."""
    for model in plan.models:
        for stage, settings in model.trained.items():
            if dist.enabled and settings.batch_size % dist.world:
                what = "its training batch" if model.training is not None else f"its stage {stage}'s training batch"
                raise SegbenchError(f"{model.name}: {what} of {settings.batch_size} does not split between "
                                    f"{dist.world} processes; use a --batch-size (or --set {model.name}.batch_size=N) "
                                    f"that {dist.world} divides, or fewer processes")


def check_views(registry: Registry, plan: RunPlan, training: dict[str, SplitData]) -> dict[str, SplitData]:
    """Every model's stages get their view of the training data (a refusal, such as a model of anomalies on a
    task without healthy images, names the model before any model trains), and the label budget fits every
    split a labelled stage reads; returns those splits by name."""
    labelled = {stage.split: training[stage.split] for model in plan.models
                for stage in registry.model(model.name).stages if stage.needs_labels}
    check_budget(plan.data.labels, labelled)
    dataset = registry.dataset(plan.data.dataset)
    for model in plan.models:
        for stage in registry.model(model.name).stages:
            try:
                stage_view(stage, training, plan.data.labels, plan.data.labels_seed, dataset.healthy, plan.data.task)
            except SegbenchError as exc:
                raise SegbenchError(f"model {model.name}: {exc}") from None
    return labelled


def training_splits(registry: Registry, plan: RunPlan) -> tuple[str, ...]:
    """The splits the models' stages train on: "train", and "val" where a stage asks for it or checkpoint
    selection scores on it."""
    splits = {stage.split for model in plan.models for stage in registry.model(model.name).stages}
    return ("train", "val") if "val" in splits or plan.select == "best" else ("train",)


def load_data(registry: Registry, plan: RunPlan, progress: Progress, training: tuple[str, ...] = ("train",),
              ) -> tuple[dict[str, SplitData], SplitData]:
    """The `training` splits by name and the evaluated images (the test split, or with the plan's split "all"
    every image of the dataset; all, or the plan's seeded subset)."""
    data = plan.data
    spec = registry.dataset(data.dataset)
    progress.log(f"preparing {spec.name} ({data.task}, {data.image_size}x{data.image_size})")
    options = data.options(plan.seed)
    source = spec.factory(options)
    if data.folds is not None:
        if "val" in training:
            raise SegbenchError("a model of this run trains a stage on the validation split, which --folds does not "
                                "keep (its folds pool every split); run it without --folds")
        train_data, test = fold_splits(spec, source, options, Path(data.folds), data.fold, progress)
        splits = {"train": train_data}
    else:
        splits = {split: load_split(spec, source, options, split, progress) for split in training}
        test = (load_all(spec, source, options, progress) if plan.evaluation.split == "all"
                else load_split(spec, source, options, "test", progress))
    index = eval_subset(len(test), plan.evaluation.samples, plan.seed)
    for warning in data_warnings(plan, spec, len(test)):
        progress.log(f"[yellow]warning:[/] {warning}")
    return splits, test if index is None else test.subset(index)


SMALL_TEST = 20  # evaluated images below which a bootstrap CI over images says little


def data_warnings(plan: RunPlan, spec: DatasetSpec, test_images: int) -> list[str]:
    """Options that do nothing here, and a test split too small for its CIs to mean much."""
    warnings = []
    if plan.data.root and not spec.needs_root:
        warnings.append(f"--data-root is ignored: dataset {spec.name!r} does not read files")
    requested = plan.evaluation.samples
    if requested is not None and requested > test_images:
        where = "the test split" if plan.evaluation.split == "test" else "the dataset"
        warnings.append(f"--eval-samples {requested}: {where} has {test_images} images; all are evaluated")
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
        trained = train_model(model, network, context)
    except TrainingDiverged as exc:
        stages = context.registry.model(model.name).stages
        kept = stage_checkpoint_dir(model.name, stages, next(s for s in stages if s.name == exc.stage))
        context.progress.log(f"[red]model {model.name} failed[/]: training diverged: {exc}; its last good "
                             f"checkpoint {kept}/last.pt is kept, the run goes on")
        return ModelRecord(error=f"training diverged: {exc}", parameters=parameters)
    except SegbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's bug must not lose the others' results
        return plugin_failure(model, exc, context, parameters)
    if (made := synthesize(model, network, context)):
        trained = replace(trained, synthetic=made)
    record = evaluate_model(model, network, context, trained)
    if record.done and compiled_before is not None and (compiled_after := compile_seconds()) is not None:
        record = replace(record, compile_seconds=round(compiled_after - compiled_before, 3))  # inside train/predict
    return record
