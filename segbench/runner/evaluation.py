"""One trained model evaluated: its predictions of the evaluated images, scored and committed, with what
a mask costs (network evaluations, FLOPs, masks per second)."""

from __future__ import annotations

from dataclasses import replace

import torch

from segbench.engine.evaluation import SplitPredictions, predict_split
from segbench.engine.random_state import seed_everything
from segbench.engine.stopping import REQUEST as STOP_REQUEST
from segbench.errors import SegbenchError
from segbench.plan.run_plan import PAPER_FUSION, ModelPlan
from segbench.protocol import bootstrap_seed, score
from segbench.results import ModelRecord
from segbench.results.committed import CommittedBatches
from segbench.results.store import partial_dir
from segbench.runner.context import RunContext, network_evaluations, notify, position
from segbench.seeds import derive_seed


def evaluate_model(model: ModelPlan, network: torch.nn.Module, context: RunContext, trained: ModelRecord) -> ModelRecord:
    """Predict the evaluated images with the trained network, score and commit them; `trained` is the
    models.json entry so far (size and training), returned with the evaluation's status, speed and cost (and
    under --fusion paper, the rule the model's ensemble was fused by)."""
    name, evaluation = model.name, context.plan.evaluation
    paper_fusion = context.registry.model(name).fusion
    seed_everything(derive_seed("model", context.plan.seed, name))
    try:
        with context.progress.task(f"{name} predict {position(context, name)}",
                                   total=len(context.test_data) * evaluation.ensemble) as bar:
            predictions = predict_split(
                network, context.test_data, evaluation, run_seed=context.plan.seed, runtime=context.runtime,
                model_name=name, on_batch=lambda done, total: bar.step(done),
                committed=CommittedBatches(context.store.file(partial_dir(name))), should_stop=STOP_REQUEST.__bool__,
                count_flops=True, paper_fusion=paper_fusion,
            )
    except SegbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's bug must not lose the others' results
        return plugin_failure(model, exc, context, trained.parameters)
    if context.runtime.dist.main:
        _write_results(name, predictions, context)
    masks = len(context.test_data) * evaluation.ensemble
    shape = predictions.batch_size if predictions.batch_size != evaluation.batch_size else None
    evaluations = network_evaluations(context, model)
    return replace(trained, status="done", predict_seconds=round(predictions.seconds, 3), eval_batch_size_used=shape,
                   masks_per_second=round(masks / predictions.seconds, 3) if predictions.seconds > 0 else None,
                   network_evaluations=evaluations, flops_per_mask=_rounded(predictions.flops_per_mask),
                   fusion=paper_fusion if evaluation.fusion == PAPER_FUSION else None)


def _rounded(flops: float | None) -> float | None:
    """FLOPs to 4 significant digits (the count depends on the network only; rounding keeps models.json short)."""
    return None if flops is None else float(f"{flops:.4g}")


def plugin_failure(model: ModelPlan, exc: Exception, context: RunContext, parameters: int | None) -> ModelRecord:
    """A model whose plugin raised: logged and recorded as failed; the run goes on."""
    error = f"plugin {model.plugin!r} raised {type(exc).__name__}: {exc}"
    context.progress.log(f"[red]model {model.name} failed[/]: {error}; the run goes on")
    return ModelRecord(error=error, parameters=parameters)


def _write_results(name: str, predictions: SplitPredictions, context: RunContext) -> None:
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
