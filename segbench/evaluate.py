"""`segbench evaluate RUN_DIR`: the trained models of a finished run, evaluated another way (sampler
settings, ensemble size and fusion, threshold, subset) or on other data (another dataset's test split or every image of
it, at the run's image size), without training again, into an ordinary run directory."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from segbench.engine.device import eval_batch_cap, resolve_device
from segbench.engine.distributed import Distributed
from segbench.errors import SegbenchError
from segbench.plan.build import evaluated_data, refuse_stage_sets, refuse_training_sets, replan_model
from segbench.plan.request import check_counts, check_fusion
from segbench.plan.run_plan import EvaluationPlan, ModelPlan, RunPlan
from segbench.plan.sets import ModelSets, parse_sets
from segbench.plugins import Registry
from segbench.progress import Progress
from segbench.results import ModelRecord, RunRecord, read_models, read_record
from segbench.results.trained import load_weights
from segbench.runner import (
    Prepared,
    RunContext,
    RunReport,
    build_network,
    evaluate_model,
    execute,
    in_run_directory,
    load_data,
)


@dataclass(frozen=True)
class EvaluateRequest:
    """What `segbench evaluate` was asked for; None keeps the run's own setting. `dataset`, `data_root` and
    `split` ("test" or "all") name other data to evaluate on (`segbench.plan.build.evaluated_data`)."""

    run_dir: str
    models: list[str] | None = None  # None: every model the run finished
    sets: list[str] = field(default_factory=list)  # MODEL.KEY=VALUE, sampling hyperparameters only
    ensemble: int | None = None
    fusion: str | None = None
    threshold: float | None = None
    eval_samples: int | None = None  # None: the run's on its own data, every image on other data
    eval_batch_size: int | None = None
    dataset: str | None = None
    data_root: str | None = None
    split: str = "test"
    device: str = "auto"
    out: str | None = None
    resume: bool = False
    dist_backend: str = "auto"
    dist_timeout: float = 600.0


def evaluate(request: EvaluateRequest, registry: Registry, progress: Progress, report: RunReport) -> Path:
    """Evaluate the run's trained models as asked, then `report(run_dir, registry)`; returns the new run directory.
    With the run's own settings the results are byte-identical to the run's."""
    return in_run_directory(lambda held: _evaluate(request, registry, progress, report, held))


def _evaluate(request: EvaluateRequest, registry: Registry, progress: Progress, report: RunReport,
              held: contextlib.ExitStack) -> Path:
    source_dir = Path(request.run_dir)
    source = read_record(source_dir)
    trained = read_models(source_dir)

    def prepare(plan: RunPlan, dist: Distributed, progress: Progress) -> Prepared:
        networks = {m.name: _network(registry, m, plan, source_dir) for m in plan.models}
        _, test_data = load_data(registry, plan, progress, training=())
        record = replace(source, plan=plan, eval_samples_used=len(test_data), trained_in=str(source_dir.resolve()))
        if plan.data != source.plan.data:  # other data: the record says what the models were trained on
            record = replace(record, trained_on=source.plan.data,
                             dataset_synthetic=registry.dataset(plan.data.dataset).synthetic)
        return Prepared(networks, {}, test_data, record, lifecycle=False)

    def evaluated(model: ModelPlan, network: torch.nn.Module, context: RunContext) -> ModelRecord:
        # the run's size and training, without its evaluation
        training = replace(trained[model.name], status="failed", error=None, compile_seconds=None,
                           predict_seconds=None, masks_per_second=None, eval_batch_size_used=None)
        return evaluate_model(model, network, context, training)

    return execute(evaluation_plan(request, source, trained, registry), request.out, request.resume,
                   (request.dist_backend, request.dist_timeout), held, registry, progress, prepare, evaluated, report)


def evaluation_plan(request: EvaluateRequest, source: RunRecord, trained: dict[str, ModelRecord],
                    registry: Registry) -> RunPlan:
    """The run's plan with the requested changes: only how models sample and how, and on what data, they are
    evaluated (on other data, of every image unless --eval-samples says otherwise)."""
    plan = source.plan
    done = [m for m in plan.model_names if m in trained and trained[m].done]
    names = request.models or done
    for name in names:
        if name not in done:
            raise SegbenchError(f"--models {name}: the run {request.run_dir} has no finished model {name!r}; "
                                f"finished: {', '.join(done) or 'none'}")
    sets = parse_sets(request.sets, names)
    models = tuple(_replanned(registry, plan.model(name), plan, sets.get(name, {})) for name in names)
    check_counts(("--ensemble", request.ensemble), ("--eval-samples", request.eval_samples),
                 ("--eval-batch-size", request.eval_batch_size))
    if request.threshold is not None and not 0 < request.threshold <= 1:
        raise SegbenchError(f"--threshold must be in (0, 1], got {request.threshold}")
    data = evaluated_data(plan.data, request.split, registry, request.dataset, request.data_root)
    inherited = plan.evaluation.samples if data == plan.data else None
    device = resolve_device(request.device)
    evaluation = EvaluationPlan(
        samples=inherited if request.eval_samples is None else request.eval_samples,
        batch_size=request.eval_batch_size or (plan.evaluation.batch_size if device.type == torch.device(plan.device).type
                                               else eval_batch_cap(device)),  # the run's, on its kind of device
        ensemble=plan.evaluation.ensemble if request.ensemble is None else request.ensemble,
        threshold=plan.evaluation.threshold if request.threshold is None else request.threshold,
        split=request.split,
        fusion=request.fusion or plan.evaluation.fusion,
    )
    check_fusion(evaluation.fusion, evaluation.ensemble, [registry.model(name) for name in names])
    return replace(plan, device=str(device), data=data, models=models, evaluation=evaluation, track=())  # evaluate tracks nothing


def _replanned(registry: Registry, model: ModelPlan, plan: RunPlan, sets: ModelSets) -> ModelPlan:
    spec = registry.model(model.name)
    changed = replan_model(spec, model, plan.data.image_size, sets)
    refuse_training_sets(model.name, sets, "evaluate")
    refuse_stage_sets(spec, model.name, sets, "evaluate")
    return changed


def _network(registry: Registry, model: ModelPlan, plan: RunPlan, run_dir: Path) -> torch.nn.Module:
    """The model's network with the run's trained (EMA) weights."""
    network = build_network(registry, model, plan)
    load_weights(network, run_dir, model.name, registry.model(model.name).stages)
    return network
