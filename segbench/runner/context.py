"""What every model of a run shares while it is trained and evaluated, and the loop over the models."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from segbench.data.prepare import SplitData
from segbench.engine.device import Runtime
from segbench.engine.distributed import on_main
from segbench.plan.run_plan import ModelPlan, RunPlan
from segbench.plugins import Registry
from segbench.progress import Progress
from segbench.results import ModelRecord, RunStore
from segbench.results.directory import clear_partial
from segbench.specs import MetricSpec


@dataclass(frozen=True)
class RunContext:
    """What every model of a run shares while it is trained and evaluated: `training` holds the splits a
    stage may train on ("train", and "val" where a stage asks for it or `--select best` scores on it); empty
    when trained models are only evaluated (`segbench evaluate`)."""

    plan: RunPlan
    runtime: Runtime
    store: RunStore
    training: Mapping[str, SplitData]
    test_data: SplitData
    metrics: dict[str, MetricSpec]
    registry: Registry
    progress: Progress
    resume: bool


def position(context: RunContext, name: str) -> str:
    """"(2 of 4)": where model `name` stands in the run's models."""
    names = [m.name for m in context.plan.models]
    return f"({names.index(name) + 1} of {len(names)})"


def network_evaluations(context: RunContext, model: ModelPlan) -> int | None:
    """Network forward passes `model` spends on one predicted mask, where its spec declares them."""
    spec = context.registry.model(model.name)
    return (spec.network_evaluations(model.factory_input(context.plan.data.image_size))
            if spec.network_evaluations is not None else None)


def notify(context: RunContext, hook: str, **arguments) -> None:
    """Call a lifecycle hook of the plugins, on rank 0 only."""
    if context.runtime.dist.main:
        context.registry.notify(hook, **arguments)


def for_each_model(context: RunContext, work: Callable[[ModelPlan], ModelRecord]) -> None:
    """`work` on every model of the plan that is not done yet, each result committed as it comes (by rank
    0: models.json; summary.csv rows for a failed model)."""
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


def _commit_model(store: RunStore, name: str, status: dict[str, ModelRecord], metrics: dict[str, MetricSpec]) -> None:
    """models.json with `name`'s entry (summary.csv rows too when it failed); its committed batches go only
    once that is written, so a kill before reuses them."""
    if not status[name].done:
        store.mark_failed(name, status[name].error or "", list(metrics))
    store.write_models(status)
    if status[name].done:
        clear_partial(store, name)
